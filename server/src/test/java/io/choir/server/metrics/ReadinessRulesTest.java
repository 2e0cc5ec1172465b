package io.choir.server.metrics;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MemberRole;
import io.choir.proto.ReplicaStatus;
import org.junit.jupiter.api.Test;

/** ReadinessRulesTest: each rule of /ready (ReplicaSnapshot.notReadyReason) on its own. */
class ReadinessRulesTest {
  private static final long TOLERANCE = 100;
  private static final long SILENCE_NS = 500_000_000L;

  private static ReplicaStatus.Builder status(String role) {
    return ReplicaStatus.newBuilder().setRole(role).setView(3).setOp(50).setCommit(50).setApplied(50)
        .setPrimaryId(1).setEpoch(1).setMemberRole(MemberRole.VOTER).putCounters("lag", 0);
  }

  private static String reason(ReplicaStatus.Builder s, boolean mustCatchUp, long silentNs, String refusing) {
    return new ReplicaSnapshot(s.build(), 1, 0, mustCatchUp, true, silentNs, refusing, 0)
        .notReadyReason(TOLERANCE, SILENCE_NS);
  }

  private static void notReady(String reason, String expected) {
    assertTrue(reason != null && reason.contains(expected), "expected a reason with '" + expected + "': " + reason);
  }

  @Test
  void shouldBeReadyInANormalViewCaughtUp() {
    assertNull(reason(status("primary"), false, 0, null));
    assertNull(reason(status("backup"), false, 1_000_000, null));
    assertNull(reason(status("backup").setMemberRole(MemberRole.LEARNER), false, 0, null), "a caught-up learner");
    assertNull(reason(status("backup").setApplied(50 - TOLERANCE).putCounters("lag", TOLERANCE), false, 0, null),
        "within the tolerance");
  }

  @Test
  void shouldNotBeReadyOutsideANormalViewOrCatchingUp() {
    notReady(reason(status("view-change"), false, 0, null), "not in a normal view (view-change");
    notReady(reason(status("recovering"), false, 0, null), "recovering");
    notReady(reason(status("catching-up"), false, 0, null), "catching up");
    notReady(reason(status("backup"), true, 0, null), "catching up");
    notReady(reason(status("backup").setMemberRole(MemberRole.RETIRED), false, 0, null), "not a member");
    notReady(reason(status("primary"), false, 0, "replica is shutting down"), "shutting down");
  }

  @Test
  void shouldNotBeReadyBehindOrWithoutItsPrimary() {
    notReady(reason(status("backup").putCounters("lag", TOLERANCE + 1), false, 0, null), "ops behind");
    notReady(reason(status("primary").setApplied(50 - TOLERANCE - 1), false, 0, null), "ops behind");
    notReady(reason(status("backup"), false, SILENCE_NS + 1, null), "no word from primary 1");
    notReady(reason(status("backup"), false, Long.MAX_VALUE, null), "for ever");
  }
}
