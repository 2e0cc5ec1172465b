package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.config;
import static io.choir.server.core.CoreKit.sendsOf;
import static io.choir.server.core.CoreKit.state;
import static io.choir.server.core.CoreKit.step;
import static io.choir.server.core.CoreKit.tick;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.MemberChange;
import io.choir.proto.MessageType;
import io.choir.proto.PreViewChange;
import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.StartViewChange;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Lease reads (DESIGN.md "Lease reads (issue 14)") on three cores stepped by hand (CoreCluster): a
 * linearizable read inside the primary's lease runs without a heartbeat round, outside it (or in
 * read_index mode) it waits for one; the backups' side of the lease (no newer view while they keep to
 * their primary, none just after a start); and the lease's end when the primary leaves its view.
 */
class LeaseReadCoreTest {
  private static final long LEASE = CoreConfig.leaseDurationNs(T, 50_000);
  private long nextRequest = 1000;

  private static CoreCluster working(CoreConfig.ReadMode mode) {
    CoreCluster c = new CoreCluster(3, id -> CoreKit.builder(id, 3).readMode(mode).build());
    c.tickAll(0);
    for (int i = 1; i <= 5; i++) {
      c.write(1, 1, i, "k" + i);
    }
    c.run(T + 100 * MS, 10 * MS); // past the quiet start of every replica
    assertEquals(5, c.cores[1].appliedOp(), "set-up");
    return c;
  }

  /**
   * Writes at the primary every 4 ms for duration: their PREPAREs stand in for heartbeats (no round
   * goes out by itself), and their PREPARE_OKs keep CheckQuorum satisfied.
   */
  private void writeFor(CoreCluster c, long duration) {
    long end = c.now + duration;
    while (c.now < end) {
      c.tickAll(c.now + 4 * MS);
      c.write(1, 1, nextRequest++, "w");
    }
  }

  /** Replicas 1..3 voters and replica 4 added as a learner, every core stepped until that is applied. */
  private CoreCluster votersAndLearner4() {
    CoreCluster c = new CoreCluster(4, id -> CoreKit.config(id, 3));
    c.tickAll(1);
    c.step(1, memberChange(CoreKit.add(4)));
    c.step(1, new Event.Tick());
    c.run(100 * MS, 10 * MS);
    return c;
  }

  private Event.ClientRequest memberChange(MemberChange.Builder change) {
    return new Event.ClientRequest(nextRequest, Request.newBuilder().setRequestId(nextRequest++)
        .setMemberChange(change).build());
  }

  private Request read() {
    long id = nextRequest++;
    return Request.newBuilder().setRequestId(id).setConsistency(ReadConsistency.LINEARIZABLE)
        .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("k1"))).build();
  }

  @Test
  void shouldRunALinearizableReadInsideTheLeaseWithoutARound() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    Counters k = c.cores[1].counters();
    long rounds = k.readRounds;
    long heartbeats = k.heartbeatsSent;
    Effects out = step(c.cores[1], new Event.ClientRequest(7, read()), c.now);
    assertEquals(1, out.reads().size(), "no round: it runs in the step it arrived in");
    assertTrue(out.sends().isEmpty(), "nothing sent for it");
    tick(c.cores[1], c.now);
    assertEquals(rounds, k.readRounds, "no read round followed (the lease is fresh: no renewal)");
    assertEquals(heartbeats, k.heartbeatsSent);
    assertEquals(1, k.leaseReads);
    assertEquals(0, k.readIndexReads);
  }

  @Test
  void shouldTakeARoundOnceTheLeaseRanOutAndRunTheReadOnlyWhenItIsAnswered() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    Counters k = c.cores[1].counters();
    long rounds = k.heartbeatsSent;
    writeFor(c, LEASE + 10 * MS); // PREPAREs only: the lease of the last round runs out
    assertEquals(rounds, k.heartbeatsSent, "set-up: no heartbeat round under writes");
    c.step(1, new Event.ClientRequest(7, read()));
    assertTrue(c.reads.isEmpty(), "outside the lease the read waits for a round");
    assertEquals(0, k.leaseReads);
    assertEquals(1, k.readIndexReads);
    c.step(1, new Event.Tick()); // the round goes out and is answered
    assertEquals(1, c.reads.size(), "the round's answer releases it");
    c.step(1, new Event.ClientRequest(8, read()));
    assertEquals(2, c.reads.size(), "and renewed the lease: the next read needs none");
    assertEquals(1, k.leaseReads);
  }

  @Test
  void shouldAskForARenewalRoundWhenALeaseReadFindsLessThanHalfALeaseLeft() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    Counters k = c.cores[1].counters();
    writeFor(c, LEASE / 2 + 60 * MS);
    long rounds = k.readRounds;
    Effects out = step(c.cores[1], new Event.ClientRequest(7, read()), c.now);
    assertEquals(1, out.reads().size(), "still inside the lease");
    assertEquals(1, k.leaseReads);
    Effects t = tick(c.cores[1], c.now);
    assertEquals(rounds + 1, k.readRounds, "a round to renew the lease");
    assertEquals(1, sendsOf(t, MessageType.HEARTBEAT).size());
  }

  @Test
  void shouldTakeARoundForEveryReadInReadIndexMode() {
    CoreCluster c = working(CoreConfig.ReadMode.READ_INDEX);
    Counters k = c.cores[1].counters();
    Effects out = step(c.cores[1], new Event.ClientRequest(7, read()), c.now);
    assertTrue(out.reads().isEmpty(), "read_index: it waits for a round sent after it arrived");
    assertEquals(0, k.leaseReads);
    assertEquals(1, k.readIndexReads);
  }

  @Test
  void shouldStopLeaseReadsTheMomentThePrimaryLeavesItsView() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    // Replica 3 is alone in view 1 and asks for view 2: its pre-vote moves the primary up (it leaves
    // view 0; VR 4.2), which ends its lease although the round was answered a moment ago.
    c.dropFrom = 3;
    step(c.cores[1], new Event.Peer(3, 1, MessageType.PRE_VIEW_CHANGE,
        PreViewChange.newBuilder().setView(2).build()), c.now);
    assertEquals(1, c.cores[1].view());
    Effects out = step(c.cores[1], new Event.ClientRequest(7, read()), c.now);
    assertTrue(out.reads().isEmpty());
    assertEquals(Status.UNAVAILABLE, out.replies().get(0).responses().get(0).getStatus(), "in a view change");
    assertEquals(0, c.cores[1].counters().leaseReads);
  }

  @Test
  void shouldNotFollowANewerViewsPreVoteWhileItHearsItsPrimary() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    Event.Peer newer = new Event.Peer(3, 1, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(2).build());
    Effects out = step(c.cores[2], newer, c.now);
    assertEquals(0, c.cores[2].view(), "replica 2 answered the primary's rounds: it keeps to it");
    assertEquals(1, c.cores[2].counters().droppedNewerViewWhileSticky);
    assertTrue(sendsOf(out, MessageType.START_VIEW_CHANGE).isEmpty());
    assertTrue(sendsOf(out, MessageType.PRE_VIEW_CHANGE_OK).isEmpty());
    // Once its primary has been silent for the election timeout, it follows the newer view up.
    long silentFrom = c.now;
    c.dropFrom = 1;
    c.dropSent = (from, s) -> from == 2 && s.type() == MessageType.PRE_VIEW_CHANGE; // its own asks go nowhere
    while (c.now < silentFrom + T) {
      c.tickAll(c.now + 10 * MS);
    }
    assertEquals(0, c.cores[2].view());
    step(c.cores[2], newer, c.now);
    assertEquals(1, c.cores[2].view(), "silent primary: replica 2 follows the newer view up");
  }

  @Test
  void shouldJoinNoNewerViewForAnElectionTimeoutAfterARestart() {
    // Restarted in view 1 before its log was complete there (last normal view 0): it rejoins as in a
    // view change, and before its restart it may have answered a round of a primary that holds a lease.
    ReplicaCore r = new ReplicaCore(config(3, 3), state(1, 0, true, List.of()));
    tick(r, 0);
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, r.mode());
    // From replica 1, not from 2 (view 1's primary: its START_VIEW_CHANGE would say it left view 1 and
    // its lease with it, so that one is followed at once).
    Event.Peer svc = new Event.Peer(1, 2, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance());
    Event.Peer preVote = new Event.Peer(1, 2, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(3).build());
    Effects early = step(r, svc, T - MS);
    step(r, preVote, T - MS);
    assertEquals(1, r.view(), "within T of its start it follows no newer view");
    assertTrue(sendsOf(early, MessageType.START_VIEW_CHANGE).isEmpty());
    assertTrue(r.counters().droppedSticky + r.counters().droppedNewerViewWhileSticky >= 2);
    Effects later = step(r, svc, T);
    assertEquals(2, r.view(), "after T it joins the view change");
    assertEquals(1, sendsOf(later, MessageType.START_VIEW_CHANGE).size());
  }

  @Test
  void shouldGrantNoPreVoteForAnElectionTimeoutAfterARestart() {
    // A backup restarted in a normal view: it counts its primary as heard at its start, so it grants
    // nothing for T (its randomized election timeout is at least T, too).
    ReplicaCore r = new ReplicaCore(config(2, 3), state(0, 0, true, List.of()));
    tick(r, 0);
    Event.Peer ask = new Event.Peer(3, 0, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(1).build());
    assertTrue(sendsOf(step(r, ask, T - MS), MessageType.PRE_VIEW_CHANGE_OK).isEmpty());
    assertEquals(1, sendsOf(step(r, ask, T), MessageType.PRE_VIEW_CHANGE_OK).size(), "silent for T: it grants");
  }

  @Test
  void shouldServeLeaseReadsWithoutAQuorumOnlyWithTheStaleLeaseBreakage() {
    for (CoreConfig.Breakage b : List.of(CoreConfig.Breakage.NONE, CoreConfig.Breakage.STALE_LEASE)) {
      CoreCluster c = new CoreCluster(3, id -> CoreKit.builder(id, 3).breakage(b).build());
      c.tickAll(0);
      c.write(1, 1, 1, "k1");
      c.run(200 * MS, 10 * MS);
      c.dropFrom = 1; // cut off: the others elect a new primary after T or so
      c.run(T + 100 * MS, 10 * MS);
      Effects out = step(c.cores[1], new Event.ClientRequest(7, read()), c.now);
      if (b == CoreConfig.Breakage.NONE) {
        assertTrue(out.reads().isEmpty(), "no quorum: no read");
        assertEquals(Status.UNAVAILABLE, out.replies().get(0).responses().get(0).getStatus());
      } else {
        assertEquals(1, out.reads().size(), "the deliberate bug: a stale lease read");
      }
    }
  }

  @Test
  void shouldServeNoLeaseReadWhileAnEpochChangeWaitsForItsSwitch() {
    // Replicas 1..3 voters and 4 a learner; the promotion of 4 is an EpochChange, logged by the primary
    // but not committed (every ack is lost). The next epoch's voters are others, so its old rounds give
    // no lease from the moment the entry is in its log.
    CoreCluster c = votersAndLearner4();
    assertEquals(List.of(4), c.cores[1].membership().learners().stream().map(Membership.Member::id).toList(),
        "set-up: 4 is a learner");
    Counters k = c.cores[1].counters();
    c.step(1, new Event.ClientRequest(7, read()));
    assertEquals(1, c.reads.size(), "set-up: a lease read");
    assertEquals(1, k.leaseReads);
    c.drop = s -> s.type() == MessageType.PREPARE_OK || s.type() == MessageType.HEARTBEAT_OK;
    c.step(1, memberChange(CoreKit.kind(MemberChange.Kind.PROMOTE, 4)));
    c.step(1, new Event.Tick());
    assertEquals(1, c.cores[1].membership().epoch(), "the EpochChange waits uncommitted");
    c.step(1, new Event.ClientRequest(8, read()));
    assertEquals(1, c.reads.size(), "no lease read: it waits for a round");
    assertEquals(1, k.leaseReads);
    assertEquals(1, k.readIndexReads);
  }
  @Test
  void shouldPublishALeaseReadWindowOnlyWhileThePrimarysLeaseHolds() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    ReplicaCore p = c.cores[1];
    LeaseReadWindow w = p.leaseReadWindow(c.now);
    assertTrue(w.admits(c.now, p.appliedOp()), "inside the lease: " + w);
    assertEquals(p.commitOp(), w.requiredOp(), "the read index: the commit number");
    assertTrue(w.untilNs() > c.now && w.untilNs() <= c.now + LEASE, "it ends with the lease: " + w);
    assertTrue(!w.admits(c.now, w.requiredOp() - 1), "not from a state behind the read index");
    assertTrue(!w.admits(w.untilNs(), p.appliedOp()), "not at the lease's end");
    assertTrue(w.admitsSequential(p.appliedOp(), p.appliedOp()), "and sequential reads");
    assertEquals(LeaseReadWindow.SEQUENTIAL_ONLY, c.cores[2].leaseReadWindow(c.now),
        "a backup publishes no lease part, only sequential reads");
    assertTrue(c.cores[2].leaseReadWindow(c.now).admitsSequential(5, 5));
    assertTrue(!c.cores[2].leaseReadWindow(c.now).admitsSequential(4, 5), "not before the op the client saw");
    assertEquals(LeaseReadWindow.SEQUENTIAL_ONLY, working(CoreConfig.ReadMode.READ_INDEX).cores[1].leaseReadWindow(c.now),
        "read_index mode publishes no lease part");
    // The lease runs out under writes (no round goes out by itself): no lease part.
    writeFor(c, LEASE + 10 * MS);
    assertEquals(LeaseReadWindow.SEQUENTIAL_ONLY, p.leaseReadWindow(c.now));
  }

  @Test
  void shouldCloseTheWindowInTheStepThatLeavesTheView() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    assertTrue(c.cores[1].leaseReadWindow(c.now).admits(c.now, c.cores[1].appliedOp()), "set-up");
    c.dropFrom = 3;
    step(c.cores[1], new Event.Peer(3, 1, MessageType.PRE_VIEW_CHANGE,
        PreViewChange.newBuilder().setView(2).build()), c.now);
    assertEquals(1, c.cores[1].view(), "set-up: it left view 0");
    assertEquals(LeaseReadWindow.SEQUENTIAL_ONLY, c.cores[1].leaseReadWindow(c.now),
        "the window taken after this step, before its messages leave, admits no linearizable read");
  }

  @Test
  void shouldPublishNoWindowUnderADeliberateBreakageOrWhileAnEpochChangeWaits() {
    CoreCluster broken = new CoreCluster(3, id -> CoreKit.builder(id, 3).breakage(CoreConfig.Breakage.STALE_LEASE).build());
    broken.tickAll(0);
    broken.write(1, 1, 1, "k1");
    broken.run(T + 100 * MS, 10 * MS);
    assertEquals(LeaseReadWindow.NONE, broken.cores[1].leaseReadWindow(broken.now), "nothing, sequential reads included");
    CoreCluster c = votersAndLearner4();
    assertTrue(c.cores[1].leaseReadWindow(c.now).admits(c.now, c.cores[1].appliedOp()), "set-up: a window");
    c.drop = s -> s.type() == MessageType.PREPARE_OK || s.type() == MessageType.HEARTBEAT_OK;
    c.step(1, memberChange(CoreKit.kind(MemberChange.Kind.PROMOTE, 4)));
    assertEquals(LeaseReadWindow.SEQUENTIAL_ONLY, c.cores[1].leaseReadWindow(c.now), "the EpochChange is in its log");
  }

  @Test
  void shouldCountReadsServedUnderTheWindowAndRenewTheLeaseInTime() {
    CoreCluster c = working(CoreConfig.ReadMode.LEASE);
    Counters k = c.cores[1].counters();
    long rounds = k.readRounds;
    long reads = k.reads;
    step(c.cores[1], new Event.LeaseReadsServed(5, 2), c.now);
    tick(c.cores[1], c.now);
    assertEquals(5, k.leaseReads);
    assertEquals(5, k.leaseReadsOnEventLoop);
    assertEquals(2, k.sequentialReadsOnEventLoop, "sequential reads are counted apart");
    assertEquals(reads + 7, k.reads);
    assertEquals(rounds, k.readRounds, "a fresh lease: no renewal");
    writeFor(c, LEASE / 2 + 60 * MS);
    rounds = k.readRounds;
    step(c.cores[1], new Event.LeaseReadsServed(3), c.now);
    Effects t = tick(c.cores[1], c.now);
    assertEquals(rounds + 1, k.readRounds, "less than half a lease left: a round renews it");
    assertEquals(1, sendsOf(t, MessageType.HEARTBEAT).size());
    assertEquals(8, k.leaseReadsOnEventLoop);
  }
}
