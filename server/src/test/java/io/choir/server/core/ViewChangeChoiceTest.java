package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.choir.proto.DoViewChange;
import org.junit.jupiter.api.Test;

/** ViewChange's choice of log (VR Revisited 4.2 step 3): the largest (last normal view, op). */
class ViewChangeChoiceTest {
  private static DoViewChange dvc(long lastNormalView, long lastOp, long commit) {
    return DoViewChange.newBuilder().setLastNormalView(lastNormalView).setLastOp(lastOp).setCommit(commit).build();
  }

  @Test
  void shouldChooseTheLargestLastNormalViewThenOpAndItsOwnOnATie() {
    ViewChange vc = new ViewChange();
    vc.begin(0, 100);
    vc.doViewChange(2, dvc(3, 9, 4));
    assertNull(vc.choose(1, 2), "its own DO_VIEW_CHANGE is not in yet");
    vc.doViewChange(1, dvc(3, 9, 5));
    ViewChange.Choice c = vc.choose(1, 2);
    assertEquals(1, c.best(), "a tie goes to its own log");
    assertEquals(5, c.maxCommit());
    vc.doViewChange(3, dvc(4, 2, 2));
    assertEquals(3, vc.choose(1, 2).best(), "a later last normal view wins over a longer log");
    vc.chose(c);
    assertNull(vc.choose(1, 2), "chosen once");
  }
}
