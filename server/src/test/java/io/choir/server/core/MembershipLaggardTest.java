package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.add;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MemberChange;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipLaggardTest: a member of a new epoch that is still in the old one, and says nothing there,
 * is brought over although the new epoch's primary has gone quiet for want of it (DESIGN.md
 * "Membership", laggards). The single-voter simulation's seed 64 hung so: replica 2, a learner of
 * epoch 1, was cut off while replica 1, the only voter, promoted it; the EpochChange committed on 1
 * alone, 1 switched to epoch 2 (voters 1 and 2) and went quiet by CheckQuorum an election timeout
 * later; once the cut healed, the learner, whose log has no gap and whose primary is silent, had
 * nothing to send, and the quiet primary sent nothing either. The second test is the same hole where
 * the old primary cannot help: the learner's primary in the old epoch is retired and silent, so only the
 * new epoch's quiet primary can tell it.
 */
class MembershipLaggardTest {
  private long requestIds = 1000;

  /** Replica 1 the single bootstrap voter, 2 a joiner added as a learner and caught up. */
  private CoreCluster singleVoterWithLearner() {
    CoreCluster c = new CoreCluster(2, id -> CoreKit.config(id, 1));
    c.tickAll(1);
    writes(c, 3);
    assertEquals(Status.OK, change(c, add(2)).getStatus());
    writes(c, 3);
    assertEquals(c.cores[1].commitOp(), c.cores[2].appliedOp(), "the learner caught up");
    return c;
  }

  @Test
  void shouldBringAPromotedLearnerThatMissedTheSwitchOverAfterThePrimaryWentQuiet() {
    CoreCluster c = singleVoterWithLearner();
    c.serveStateTransfers = true;
    // The learner is cut off just before its promotion: the EpochChange commits on replica 1 alone.
    c.dropFrom = 2;
    Response promoted = change(c, MemberChange.newBuilder().setKind(MemberChange.Kind.PROMOTE).setId(2));
    assertEquals(Status.OK, promoted.getStatus(), promoted.toString());
    assertEquals(List.of(1, 2), c.cores[1].membership().voterIds());
    assertEquals(1, c.cores[2].membership().epoch(), "2 missed the EpochChange");
    // Cut for longer than the election timeout: the new epoch's primary goes quiet (CheckQuorum).
    c.run(3 * T, 10 * MS);
    long quietSince = c.cores[1].counters().heartbeatsSent;
    c.run(T, 10 * MS);
    assertEquals(quietSince, c.cores[1].counters().heartbeatsSent, "replica 1 is quiet");

    c.dropFrom = 0;
    c.run(10 * T, 10 * MS);

    assertEquals(2, c.cores[2].membership().epoch(), "the learner was left in epoch 1: " + c.cores[2]);
    assertEquals(c.cores[1].view(), c.cores[2].view());
    assertTrue(c.cores[1].counters().unheardMemberNotices > 0, "the quiet primary told the learner");
    assertEquals(1, c.cores[2].counters().stateTransfers, "it lacks the EpochChange: a state transfer");
    long before = c.cores[1].commitOp();
    writes(c, 1);
    assertTrue(c.cores[1].commitOp() > before, "the new epoch commits: " + c.cores[1]);
    assertEquals(c.cores[1].commitOp(), c.cores[2].commitOp());
  }

  @Test
  void shouldBringAReplacingLearnerOverWhenItsOldPrimaryIsGoneAndTheNewOneWentQuiet() {
    // Voters 1..3 and learner 4, which replaces 1 while it is cut off: epoch 2 has voters 2, 3 and 4.
    CoreCluster c = new CoreCluster(4, id -> CoreKit.config(id, 3));
    c.tickAll(1);
    writes(c, 3);
    assertEquals(Status.OK, change(c, add(4)).getStatus());
    writes(c, 3);
    c.serveStateTransfers = true;
    c.dropFrom = 4;
    Response replaced = change(c, MemberChange.newBuilder().setKind(MemberChange.Kind.REPLACE).setId(4).setReplacedId(1));
    assertEquals(Status.OK, replaced.getStatus(), replaced.toString());
    int primary = c.primary();
    assertTrue(primary == 2 || primary == 3, "a voter of epoch 2 leads it: " + primary);
    int other = 5 - primary;
    assertEquals(1, c.cores[4].membership().epoch(), "4 missed the EpochChange");
    // Then the retired 1 (the learner's primary in epoch 1) and the other voter fall silent for good:
    // only the new primary, quiet for want of a quorum, is left to tell the learner of epoch 2.
    c.dropSent = (from, s) -> from == 1 || from == other;
    c.run(3 * T, 10 * MS);

    c.dropFrom = 0;
    c.run(10 * T, 10 * MS);

    assertEquals(2, c.cores[4].membership().epoch(), "the learner was left in epoch 1: " + c.cores[4]);
    long before = c.cores[primary].commitOp();
    writes(c, primary, 1);
    assertTrue(c.cores[primary].commitOp() > before, "epoch 2 commits with 4: " + c.cores[primary]);
  }

  /** A member change asked of replica 1 (the primary of epoch 1), once it is applied. */
  private Response change(CoreCluster c, MemberChange.Builder change) {
    long id = ++requestIds;
    c.step(1, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id).setMemberChange(change).build()));
    c.step(1, new Event.Tick());
    c.run(20 * MS, MS);
    return c.replies.stream().filter(r -> r.getRequestId() == id).findFirst().orElseThrow();
  }

  private void writes(CoreCluster c, int count) {
    writes(c, 1, count);
  }

  private void writes(CoreCluster c, int at, int count) {
    for (int i = 0; i < count; i++) {
      c.write(at, 0, ++requestIds, "k" + requestIds);
    }
    c.run(20 * MS, MS);
  }
}
