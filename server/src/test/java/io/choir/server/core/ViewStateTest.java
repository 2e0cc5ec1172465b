package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.core.ReplicaCore.Mode;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * ViewState's contract (VR Revisited 4.2 figure 2, 4.3): where a replica starts from what storage
 * recovered, and the view-change count. Replica 2 of three is the primary of view 1 (primaryOf).
 */
class ViewStateTest {
  private static RecoveredState recovered(long view, long lastNormalView, boolean restarted, boolean recovering,
      boolean mustCatchUp) {
    return new RecoveredState(view, lastNormalView, restarted, recovering, mustCatchUp, 0, 0, 1, List.of());
  }

  private static ViewState state(int id, RecoveredState recovered) {
    CoreConfig config = CoreKit.config(id, 3);
    return new ViewState(new Members(id, config.bootstrapMembership()), recovered);
  }

  @Test
  void shouldStartFreshReplicaNormalInViewZeroWithItsLastNormalViewDurable() {
    ViewState s = state(2, RecoveredState.empty());
    assertEquals(Mode.NORMAL, s.mode());
    assertEquals(0, s.view());
    assertFalse(s.restartLimbo());
    assertTrue(s.lnvDurable());
    assertEquals(0, s.viewChanges());
    assertEquals(OptionalLong.empty(), s.lastViewChangeNs());
  }

  @Test
  void shouldRejoinAsInViewChangeAndTakeNoPartWhenRestartedBeforeItsLogWasCompleteInItsView() {
    int backup = backupOf(1);
    ViewState s = state(backup, recovered(1, 0, true, false, false));
    assertEquals(Mode.VIEW_CHANGE, s.mode());
    assertTrue(s.restartLimbo());
    assertEquals(0, s.lastNormalView());
  }

  @Test
  void shouldNeverResumeItsViewWhenThePrimaryRestarts() {
    int primary = CoreKit.config(1, 3).primaryOf(1);
    ViewState s = state(primary, recovered(1, 1, true, false, false));
    assertEquals(Mode.VIEW_CHANGE, s.mode());
    assertTrue(s.restartLimbo());
    assertFalse(s.isPrimary());
  }

  @Test
  void shouldRecoverWithALastNormalViewBelowEveryOtherUnderBufferedDurability() {
    ViewState s = state(1, recovered(3, 3, true, true, false));
    assertEquals(Mode.RECOVERING, s.mode());
    assertEquals(0, s.lastNormalView());
    assertFalse(s.lnvDurable()); // storage still says 3: its acks wait until the new one is recorded
  }

  @Test
  void shouldFollowAViewChangeWithoutTakingPartWhileItMustCatchUp() {
    int backup = backupOf(1);
    ViewState s = state(backup, recovered(1, 1, true, false, true));
    assertEquals(Mode.NORMAL, s.mode());
    assertFalse(s.restartLimbo());
    assertEquals(0, s.lastNormalView());
    s.enterViewChange(2);
    assertEquals(Mode.VIEW_CHANGE, s.mode());
    assertTrue(s.restartLimbo());
    s.adopt(2);
    assertFalse(s.restartLimbo());
    assertTrue(s.mustCatchUp());
    s.logComplete();
    assertFalse(s.mustCatchUp());
    assertEquals(2, s.lastNormalView());
    assertFalse(s.lnvDurable());
    s.lastNormalViewDurable(2);
    assertTrue(s.lnvDurable());
  }

  @Test
  void shouldCountEachViewChangeOnceAndNotARejoinOfTheSameView() {
    ViewState s = state(1, RecoveredState.empty());
    s.countViewChange(5);
    assertEquals(0, s.viewChanges()); // still view 0: nothing completed
    s.enterViewChange(1);
    s.adopt(1);
    s.countViewChange(7);
    s.countViewChange(9);
    assertEquals(1, s.viewChanges());
    assertEquals(OptionalLong.of(7), s.lastViewChangeNs());
  }

  private static int backupOf(long view) {
    CoreConfig c = CoreKit.config(1, 3);
    for (int id = 1; id <= 3; id++) {
      if (c.primaryOf(view) != id) {
        return id;
      }
    }
    throw new AssertionError();
  }
}
