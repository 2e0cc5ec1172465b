package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.add;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MemberChange;
import io.choir.proto.MemberRole;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * FormerMemberCoreTest: a replica removed from the membership while it was cut off (so it never
 * applied the change) learns of it once it is reachable again, and retires (DESIGN.md "Membership",
 * "A replica removed while it was cut off"). Sends to all reach only the sender's members here, as with
 * the unicast transport: the removed replica hears nothing of the new epoch unless a member tells it.
 */
class FormerMemberCoreTest {
  private long requestIds = 1000;

  private static CoreCluster cluster(int n) {
    CoreCluster c = new CoreCluster(n, id -> CoreKit.config(id, 3));
    c.toAllReachesMembersOnly = true;
    c.serveStateTransfers = true;
    c.tickAll(1);
    return c;
  }

  private Response change(CoreCluster c, int at, MemberChange.Builder change) {
    long id = ++requestIds;
    int before = c.replies.size();
    c.step(at, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id).setMemberChange(change).build()));
    c.step(at, new Event.Tick());
    c.run(20 * MS, MS);
    return c.replies.subList(before, c.replies.size()).stream().filter(r -> r.getRequestId() == id)
        .findFirst().orElse(null);
  }

  private static MemberChange.Builder replace(int learner, int replaced) {
    return MemberChange.newBuilder().setKind(MemberChange.Kind.REPLACE).setId(learner).setReplacedId(replaced);
  }

  private void writes(CoreCluster c, int at, int count) {
    for (int i = 0; i < count; i++) {
      c.write(at, 0, ++requestIds, "k" + requestIds);
    }
    c.run(20 * MS, MS);
  }

  /** Runs until replica id retires, or for at most limit: whether it did. */
  private static boolean runUntilRetired(CoreCluster c, int id, long limit) {
    long end = c.now + limit;
    while (c.now < end && c.cores[id].memberRole() != MemberRole.RETIRED) {
      c.run(10 * MS, MS);
    }
    return c.cores[id].memberRole() == MemberRole.RETIRED;
  }

  @Test
  void shouldRetireABackupReplacedWhileItWasCutOffOnceItSpeaksAgain() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    writes(c, 1, 3);
    c.dropFrom = 3;
    Response replaced = change(c, 1, replace(4, 3));
    assertEquals(Status.OK, replaced.getStatus(), replaced.toString());
    writes(c, 1, 3);
    assertEquals(List.of(1, 2, 4), c.cores[1].membership().voterIds());
    assertEquals(MemberRole.VOTER, c.cores[3].memberRole(), "cut off, it never applied the change");
    c.run(3 * T, 10 * MS); // it loses its primary and asks its old members for a view change

    c.dropFrom = 0;
    assertTrue(runUntilRetired(c, 3, 20 * T), "replica 3 retires: " + c.cores[3]);

    assertEquals(c.cores[1].membership().epoch(), c.cores[3].membership().epoch());
    assertTrue(c.cores[1].counters().toldFormerMembers + c.cores[2].counters().toldFormerMembers
        + c.cores[4].counters().toldFormerMembers > 0);
    assertEquals(List.of(1, 2, 4), c.cores[1].membership().voterIds(), "the members are as they were");
    writes(c, c.primary(), 3);
    assertEquals(c.cores[1].commitOp(), c.cores[4].commitOp());
  }

  @Test
  void shouldRetireAPrimaryReplacedWhileItWasCutOffAndHadGoneQuiet() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    writes(c, 1, 3);
    c.dropFrom = 1;
    c.run(6 * T, 10 * MS); // 2 and 3 elect a primary; 1, alone, goes quiet for want of a quorum
    int primary = 0;
    for (int id = 2; id <= 3; id++) {
      primary = c.cores[id].isPrimary() ? id : primary;
    }
    assertNotEquals(0, primary, "a new primary among 2 and 3");
    Response replaced = change(c, primary, replace(4, 1));
    assertEquals(Status.OK, replaced.getStatus(), replaced.toString());
    assertTrue(c.cores[1].isPrimary(), "the old primary still takes itself for one");
    long sentBefore = c.cores[1].counters().heartbeatsSent;

    c.dropFrom = 0;
    assertTrue(runUntilRetired(c, 1, 20 * T), "replica 1 retires: " + c.cores[1]);

    assertEquals(sentBefore, c.cores[1].counters().heartbeatsSent, "it was quiet: the new primary spoke first");
    assertEquals(c.cores[primary].membership().epoch(), c.cores[1].membership().epoch());
    assertTrue(!c.cores[1].isPrimary());
  }
}
