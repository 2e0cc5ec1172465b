package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.add;
import static io.choir.server.core.CoreKit.kind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MemberChange;
import io.choir.proto.MemberRole;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipRecoveryTest: the recovery protocol (VR Revisited 4.3, a restart with buffered durability)
 * across membership changes (DESIGN.md "Membership"): only the voters of the recovering replica's epoch
 * count as its answers; a replica whose epoch ended while it was down is brought over by a state
 * transfer at once and rejoins catching up; a retired replica and a joiner not yet added skip recovery.
 */
class MembershipRecoveryTest {
  private long requestIds = 1000;

  private static CoreCluster cluster(int n) {
    CoreCluster c = new CoreCluster(n, id -> CoreKit.config(id, 3));
    c.serveStateTransfers = true;
    c.tickAll(1);
    return c;
  }

  private Response change(CoreCluster c, int at, MemberChange.Builder change) {
    long id = ++requestIds;
    c.step(at, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id).setMemberChange(change).build()));
    c.step(at, new Event.Tick());
    c.run(20 * MS, MS);
    return c.replies.stream().filter(r -> r.getRequestId() == id).findFirst().orElse(null);
  }

  private void writes(CoreCluster c, int at, int count) {
    for (int i = 0; i < count; i++) {
      c.write(at, 0, ++requestIds, "k" + requestIds);
    }
    c.run(20 * MS, MS);
  }

  @Test
  void shouldCountOnlyTheVotersAnswersToARecovery() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    writes(c, 1, 3);

    c.restart(3, true);
    c.dropSent = (from, s) -> from == 2; // only the primary (1) and the learner (4) answer
    c.run(3 * HB, MS);

    assertEquals(ReplicaCore.Mode.RECOVERING, c.cores[3].mode(), "a learner's answer does not stand in for a voter's");
    c.dropSent = (from, s) -> false;
    c.run(3 * HB, MS);
    assertEquals(ReplicaCore.Mode.NORMAL, c.cores[3].mode());
    assertEquals(c.cores[1].appliedOp(), c.cores[3].appliedOp());
    assertFalse(c.cores[3].mustCatchUp(), "caught up again");
  }

  @Test
  void shouldRecoverInAnEpochOfTwoVotersByTheOtherOnesAnswer() {
    CoreCluster c = cluster(3);
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, kind(MemberChange.Kind.REMOVE, 3)).getStatus());
    writes(c, 1, 3);

    c.restart(2, true); // of 2 voters: the primary's answer is all there is (f+1 would be 2 others)
    c.run(3 * HB, MS);

    assertEquals(ReplicaCore.Mode.NORMAL, c.cores[2].mode(), "recovered");
    writes(c, 1, 3);
    assertEquals(c.cores[1].commitOp(), c.cores[2].appliedOp());
    assertFalse(c.cores[2].mustCatchUp());
  }

  @Test
  void shouldRecoverInAnEpochOfFourVotersByTwoAnswers() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, kind(MemberChange.Kind.PROMOTE, 4)).getStatus());
    writes(c, 1, 3);

    c.restart(3, true);
    c.dropSent = (from, s) -> from == 2; // 1 (the primary) and 4 answer: with 3 itself, a quorum's worth
    c.run(3 * HB, MS);

    assertEquals(ReplicaCore.Mode.NORMAL, c.cores[3].mode(), "two answers of the three other voters suffice");
  }

  @Test
  void shouldBringARecoveringReplicaWhoseEpochEndedWhileItWasDownOverByAStateTransferAndCatchUp() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    c.dropFrom = 3; // down: it misses the learner's add and promotion
    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, kind(MemberChange.Kind.PROMOTE, 4)).getStatus());
    writes(c, 1, 3);
    assertEquals(2, c.cores[1].membership().epoch());

    c.restart(3, true); // its state is of epoch 1
    c.dropFrom = 0;
    boolean[] passed = {false};
    // One heartbeat of epoch 2 reaches it, then nothing more (so what it does on its own shows).
    c.dropSent = (from, s) -> {
      if (from == 1 && s.type() == MessageType.HEARTBEAT && !passed[0]) {
        passed[0] = true;
        return false;
      }
      return true;
    };
    long deadline = c.now + 2 * HB;
    while (!passed[0] && c.now < deadline) {
      c.run(MS, MS);
    }
    assertTrue(passed[0]);

    assertEquals(2, c.cores[3].membership().epoch(), "a state transfer at once, not after two election timeouts");
    assertEquals(ReplicaCore.Mode.NORMAL, c.cores[3].mode());
    assertEquals(MemberRole.VOTER, c.cores[3].memberRole());
    assertTrue(c.cores[3].mustCatchUp(), "it may have lost what it acknowledged: no vote, no ack until caught up");
    c.dropSent = (from, s) -> false;
    c.run(3 * HB, MS);
    assertFalse(c.cores[3].mustCatchUp());
    assertEquals(c.cores[1].appliedOp(), c.cores[3].appliedOp());
    assertEquals("backup", c.cores[3].role());
  }

  @Test
  void shouldNotRecoverAtARetiredReplicaThatNoVoterWouldAnswer() {
    CoreCluster c = cluster(3);
    writes(c, 1, 3);
    assertEquals(Status.OK, change(c, 1, kind(MemberChange.Kind.REMOVE, 3)).getStatus());
    assertEquals(MemberRole.RETIRED, c.cores[3].memberRole());

    c.restart(3, true);
    c.run(2 * T, 10 * MS);

    assertEquals(ReplicaCore.Mode.NORMAL, c.cores[3].mode(), "not stuck recovering");
    assertEquals(MemberRole.RETIRED, c.cores[3].memberRole());
    assertFalse(c.cores[3].isPrimary());
    writes(c, 1, 2);
    assertEquals(List.of(1, 2), c.cores[1].membership().voterIds());
  }

  @Test
  void shouldLetAJoinerRestartedBeforeItWasAddedFollowTheLogAndBePromoted() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    c.restart(4, true); // a joiner (no member of epoch 1) restarted with buffered durability

    assertEquals(ReplicaCore.Mode.NORMAL, c.cores[4].mode(), "no voter answers a non-member's RECOVERY");
    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    writes(c, 1, 3);
    assertEquals(c.cores[1].appliedOp(), c.cores[4].appliedOp(), "the learner follows the log");
    Response promoted = change(c, 1, kind(MemberChange.Kind.PROMOTE, 4));
    assertEquals(Status.OK, promoted.getStatus(), promoted.toString());
    assertEquals(List.of(1, 2, 3, 4), c.cores[1].membership().voterIds());
  }
}
