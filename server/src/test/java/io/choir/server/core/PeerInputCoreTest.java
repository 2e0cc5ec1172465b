package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.DoViewChange;
import io.choir.proto.Get;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Request;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import java.util.OptionalInt;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Issue 10, item 5: no peer message can stop a replica. Each attack of the list, sent as if
 * from a member (what a stranger can do without the cluster key, or a mutated real datagram), to a
 * working three-replica cluster of real cores ({@link CoreCluster}): the message is dropped and counted
 * with its reason (PeerMessageChecks), no core throws, and the cluster keeps its data and serves. The
 * attacks marked "failed before" threw or corrupted the receiver's state on the code before this change.
 */
class PeerInputCoreTest {
  /** Three replicas, replica 1 primary of view 0, ops 1..10 committed and applied everywhere. */
  private static CoreCluster working() {
    return working(CoreConfig.ReadMode.LEASE);
  }

  private static CoreCluster working(CoreConfig.ReadMode readMode) {
    CoreCluster c = new CoreCluster(3, id -> CoreKit.builder(id, 3).readMode(readMode).build());
    c.tickAll(0);
    for (int i = 1; i <= 10; i++) {
      c.write(1, 1, i, "k" + i);
    }
    c.run(200 * MS, 10 * MS);
    for (int id = 1; id <= 3; id++) {
      assertEquals(10, c.cores[id].appliedOp(), "set-up: " + c.cores[id]);
    }
    return c;
  }

  private static long rejected(ReplicaCore core, String reason) {
    return core.peerRejections().get(reason);
  }

  /** After the attack: a new write commits and applies at every live replica, with equal logs. */
  private static void keepsServing(CoreCluster c, long requestId, int... live) {
    int p = 0;
    for (int id : live) {
      p = c.cores[id].isPrimary() ? id : p;
    }
    assertTrue(p > 0, "a primary among the live: " + c.cores[live[0]]);
    c.write(p, 1, requestId, "after");
    c.run(500 * MS, 10 * MS);
    long applied = c.cores[p].appliedOp();
    assertTrue(applied > 10, "the write applied at the primary " + c.cores[p]);
    for (int id : live) {
      assertEquals(applied, c.cores[id].appliedOp(), "replica " + id + " " + c.cores[id]);
    }
  }

  @Test
  void shouldDropAStartViewChangeOfViewTwoToTheSixtyThreeMinusOneAndStillChangeViewsAfter() {
    // Failed before: both backups moved to view 2^63 - 1, and the next view change (view + 1 wraps
    // to a negative view) threw ArrayIndexOutOfBoundsException in primaryOf on both survivors.
    CoreCluster c = working();
    Event.Peer svc = new Event.Peer(1, Long.MAX_VALUE, MessageType.START_VIEW_CHANGE,
        StartViewChange.getDefaultInstance());
    c.inject(2, svc);
    c.inject(3, svc);
    c.run(500 * MS, 10 * MS);
    int primary = c.primary();
    c.dropFrom = primary; // the primary goes: a view change must follow
    c.run(4 * T, 10 * MS);
    int[] live = IntStream.rangeClosed(1, 3).filter(id -> id != primary).toArray();
    for (int id : live) {
      assertTrue(c.cores[id].view() >= 1 && c.cores[id].view() < 10, "a real view change: " + c.cores[id]);
    }
    assertEquals(1, rejected(c.cores[2], "view_out_of_range"));
    assertEquals(1, rejected(c.cores[3], "view_out_of_range"));
    keepsServing(c, 100, live);
  }

  @Test
  void shouldDropAHeartbeatOfANegativeView() {
    // Failed before: a view of 2^64 - 5 (uint64) is -5 as a long; the stale-view path computed
    // primaryOf(-5) and threw ArrayIndexOutOfBoundsException at once.
    CoreCluster c = working();
    c.inject(2, new Event.Peer(1, -5, MessageType.HEARTBEAT, Heartbeat.getDefaultInstance()));
    assertEquals(1, rejected(c.cores[2], "view_out_of_range"));
    keepsServing(c, 100, 1, 2, 3);
  }

  @Test
  void shouldDropAStartViewOfAnAbsurdViewOrACommitBeyondItsLastOp() {
    // Failed before: replica 3 adopted a view 3 * 2^40 ahead (for good: views never go back) on one
    // datagram, and a START_VIEW whose commit exceeds its last op was acted on.
    CoreCluster c = working();
    long far = 1 + 3L * (1L << 40); // a view whose primary is replica 2
    c.inject(3, new Event.Peer(2, far, MessageType.START_VIEW,
        StartView.newBuilder().setLastOp(1_000_000).setCommit(1_000_000).build()));
    assertEquals(0, c.cores[3].view(), c.cores[3].toString());
    assertEquals(1, rejected(c.cores[3], "view_too_far_ahead"));
    c.inject(3, new Event.Peer(2, 1, MessageType.START_VIEW,
        StartView.newBuilder().setLastOp(3).setCommit(1_000_000).build()));
    assertEquals(0, c.cores[3].view());
    assertEquals(1, rejected(c.cores[3], "commit_beyond_op"));
    keepsServing(c, 100, 1, 2, 3);
  }

  @Test
  void shouldDropAPrepareWhoseOpsAreOutOfRange() {
    // Failed before: an entry at op 2^63 - 1 made the backup believe the primary's log reached it:
    // its lag read 9.2e18 and it NACKed [11, 2^63 - 1] at every backoff for the rest of the view.
    CoreCluster c = working();
    long huge = Long.MAX_VALUE;
    c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(huge)
        .addEntries(CoreKit.entry(huge, 0, "x")).setCommit(huge).build()));
    c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(-1)
        .addEntries(CoreKit.entry(-1, 0, "x")).setCommit(-1).build()));
    // Within range but far beyond what the out-of-order buffer reaches from op 10.
    long beyond = 10 + CoreKit.config(2, 3).maxOutOfOrderEntries + 1;
    c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(beyond)
        .addEntries(CoreKit.entry(beyond, 0, "x")).setCommit(10).build()));
    assertEquals(0, c.cores[2].lag(), c.cores[2].toString());
    assertEquals(2, rejected(c.cores[2], "op_out_of_range"));
    assertEquals(1, rejected(c.cores[2], "op_beyond_window"));
    long nacks = c.cores[2].counters().nacksSent;
    c.run(500 * MS, 10 * MS);
    assertEquals(nacks, c.cores[2].counters().nacksSent, "no NACK for ops nobody has");
    keepsServing(c, 100, 1, 2, 3);
  }

  @Test
  void shouldDropAPrepareThatContradictsTheCommittedPrefix() {
    CoreCluster c = working();
    c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(5)
        .addEntries(CoreKit.entry(5, 0, "forged")).setCommit(10).build()));
    assertEquals(1, rejected(c.cores[2], "contradicts_commit"));
    keepsServing(c, 100, 1, 2, 3);
  }

  @Test
  void shouldNotStopWhenDoViewChangesClaimCommitOneMillion() {
    // The attack: a DO_VIEW_CHANGE with commit 1,000,000 fail-stopped its target, and sent to
    // two replicas took the cluster down. A commit beyond the message's own last op is dropped; one
    // within it is plausible (a member may lie) and costs at most a view change that times out.
    CoreCluster c = working();
    c.inject(2, new Event.Peer(1, 1, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder()
        .setLastNormalView(0).setLastOp(10).setCommit(1_000_000).build()));
    c.inject(3, new Event.Peer(1, 2, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder()
        .setLastNormalView(0).setLastOp(10).setCommit(1_000_000).build()));
    c.inject(2, new Event.Peer(1, 1, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder()
        .setLastNormalView(0).setLastOp(1_000_000).setCommit(1_000_000).build()));
    c.inject(3, new Event.Peer(1, 2, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder()
        .setLastNormalView(0).setLastOp(1_000_000).setCommit(1_000_000).build()));
    c.run(6 * T, 10 * MS);
    for (int id = 1; id <= 3; id++) {
      assertTrue(c.cores[id].commitOp() >= 10 && c.cores[id].commitOp() < 1000, c.cores[id].toString());
    }
    keepsServing(c, 100, 1, 2, 3);
    assertEquals(1, rejected(c.cores[2], "commit_beyond_op"));
    assertEquals(1, rejected(c.cores[3], "commit_beyond_op"));
  }

  @Test
  void shouldRefuseAViewWhoseChosenLogLacksACommittedOpAndFormItFromHonestOnes() {
    // The blind fuzz's "the chosen log lacks committed op": a DO_VIEW_CHANGE of an older last normal
    // view claims commits beyond the log the new primary chooses. The new primary refuses that set
    // (counted), keeps running, and forms the view from the honest DO_VIEW_CHANGEs resent after.
    CoreCluster c = working();
    c.dropFrom = 1;
    c.run(3 * T, 10 * MS); // replicas 2 and 3 start a view change to view 1 (primary 2)
    c.inject(2, new Event.Peer(3, Math.max(1, c.cores[2].view()), MessageType.DO_VIEW_CHANGE,
        DoViewChange.newBuilder().setLastNormalView(0).setLastOp(1_000_000).setCommit(1_000_000).build()));
    c.run(6 * T, 10 * MS);
    keepsServing(c, 100, 2, 3);
  }

  @Test
  void shouldNotReleaseALinearizableReadOnAHeartbeatRoundNeverSent() {
    // Failed before: one HEARTBEAT_OK naming round 2^62 confirmed every read round at once, so a
    // linearizable read ran without the primary having heard from a majority after it arrived. (In
    // read_index mode: with a lease the read needs no round.)
    CoreCluster c = working(CoreConfig.ReadMode.READ_INDEX);
    c.drop = s -> s.type() == MessageType.HEARTBEAT; // the real round is lost
    c.step(1, new Event.ClientRequest(77, Request.newBuilder().setRequestId(77)
        .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("k1"))).build()));
    c.step(1, new Event.Tick());
    assertTrue(c.reads.isEmpty());
    c.inject(1, new Event.Peer(2, 0, MessageType.HEARTBEAT_OK,
        HeartbeatOk.newBuilder().setRound(1L << 62).setOp(10).build()));
    assertTrue(c.reads.isEmpty(), "released on a forged round");
    assertEquals(1, rejected(c.cores[1], "ack_beyond_sent"));
    c.drop = s -> false;
    c.run(200 * MS, 10 * MS);
    assertEquals(1, c.reads.size(), "released by a real round");
  }

  @Test
  void shouldDropMalformedNacksAndAcknowledgementsOfOpsNeverSent() {
    CoreCluster c = working();
    long resent = c.cores[1].counters().retransmits;
    c.inject(1, new Event.Peer(2, 0, MessageType.NACK, Nack.newBuilder()
        .addRanges(OpRange.newBuilder().setFirst(9).setLast(3)).build()));
    c.inject(1, new Event.Peer(2, 0, MessageType.NACK, Nack.newBuilder()
        .addRanges(OpRange.newBuilder().setFirst(0).setLast(-1)).build()));
    c.inject(1, new Event.Peer(2, 0, MessageType.NACK, Nack.getDefaultInstance()));
    assertEquals(3, rejected(c.cores[1], "nack_malformed"));
    c.inject(1, new Event.Peer(2, 0, MessageType.PREPARE_OK,
        PrepareOk.newBuilder().setOp(1_000_000).build()));
    assertEquals(1, rejected(c.cores[1], "ack_beyond_sent"));
    assertEquals(resent, c.cores[1].counters().retransmits);
    assertFalse(c.cores[1].peerRejections().isEmpty());
    keepsServing(c, 100, 1, 2, 3);
  }

  @Test
  void shouldRefuseTheViewRatherThanStopWhenAStateInstallOvertakesTheChosenLog() {
    // Failed before: "view change 1: rebuilt log ends at 70, the chosen one at 60" (IllegalStateException,
    // a fail-stop). Replica 2 fetches a state transfer (op 70) while it forms view 1 from replica 3's
    // DO_VIEW_CHANGE (last op 60, a log that cannot hold what a quorum committed up to 70: a lie, or a
    // state source ahead of every voter); the install lands before the fill ends.
    ReplicaCore r2 = CoreKit.fresh(2, 3);
    CoreKit.tick(r2, 0);
    Effects hb = CoreKit.step(r2, new Event.Peer(1, 0, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(80).setCommit(80).setLowWatermark(75).build()), MS);
    assertEquals(OptionalInt.of(1), hb.stateTransferFrom(), "its gap is below the primary's log: a state transfer");
    CoreKit.step(r2, new Event.Peer(3, 1, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()), 3 * T);
    Effects fetch = CoreKit.step(r2, new Event.Peer(3, 1, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder()
        .setLastNormalView(0).setLastOp(60).setCommit(0).setLogFirstOp(1).build()), 3 * T + MS);
    assertEquals(3, CoreKit.only(fetch, MessageType.NACK).to(), "fetching the chosen log from replica 3");
    CoreKit.step(r2, new Event.StateInstalled(70, 0x70), 3 * T + 2 * MS);
    CoreKit.tick(r2, 3 * T + 3 * CoreKit.HB);
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, r2.mode(), r2.toString());
    assertEquals(1, r2.counters().viewChangesRefused);
    assertEquals(70, r2.appliedOp());
  }
}
