package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.config;
import static io.choir.server.core.CoreKit.deliver;
import static io.choir.server.core.CoreKit.first;
import static io.choir.server.core.CoreKit.fresh;
import static io.choir.server.core.CoreKit.only;
import static io.choir.server.core.CoreKit.put;
import static io.choir.server.core.CoreKit.sendsOf;
import static io.choir.server.core.CoreKit.state;
import static io.choir.server.core.CoreKit.step;
import static io.choir.server.core.CoreKit.tick;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.DoViewChange;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.StartViewChange;
import io.choir.proto.Status;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * PreVote (Raft thesis 9.6), leader stickiness (Raft thesis 4.2.3) and CheckQuorum in front of the VR
 * Revisited 4.2 view change, stepped by hand on three (and five) cores: a replica that alone cannot
 * hear its primary never raises its view, so it never deposes a healthy primary when it comes back
 * (issue 9, 2d).
 */
class PreVoteCoreTest {
  private static Event.Peer preVote(int from, long senderView, long proposed) {
    return new Event.Peer(from, senderView, MessageType.PRE_VIEW_CHANGE,
        PreViewChange.newBuilder().setView(proposed).build());
  }

  private static Event.Peer grant(int from, long senderView, long proposed) {
    return new Event.Peer(from, senderView, MessageType.PRE_VIEW_CHANGE_OK,
        PreViewChangeOk.newBuilder().setView(proposed).build());
  }

  private static Event.Peer heartbeat(int from, long view) {
    return new Event.Peer(from, view, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(0).setCommit(0).setLowWatermark(1).build());
  }

  private static Event.Peer startViewChange(int from, long view) {
    return new Event.Peer(from, view, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance());
  }

  @Test
  void shouldAskForAPreVoteAndKeepItsViewWhenItsPrimaryIsSilent_Raft96() {
    ReplicaCore b = fresh(2, 3);
    tick(b, 0);
    assertTrue(sendsOf(tick(b, T - MS), MessageType.PRE_VIEW_CHANGE).isEmpty(),
        "the election timeout is at least T");
    Effects e = tick(b, 2 * T);
    Effects.Send ask = only(e, MessageType.PRE_VIEW_CHANGE);
    assertEquals(Effects.MULTICAST, ask.to());
    assertEquals(0, ask.view(), "asked from its current view");
    assertEquals(1, ((PreViewChange) ask.body()).getView(), "for view + 1");
    assertEquals(0, b.view(), "asking changes nothing");
    assertEquals(ReplicaCore.Mode.NORMAL, b.mode());
    assertTrue(e.viewToPersist().isEmpty());
    assertTrue(sendsOf(e, MessageType.START_VIEW_CHANGE).isEmpty(), "no view change without support");
    assertTrue(e.nextTickNs() > 2 * T && e.nextTickNs() <= 2 * T + 2 * HB, "the resend is scheduled ahead");
    assertTrue(sendsOf(tick(b, 2 * T + HB), MessageType.PRE_VIEW_CHANGE).isEmpty(), "resent every 2 heartbeats");
    assertEquals(1, sendsOf(tick(b, 2 * T + 2 * HB), MessageType.PRE_VIEW_CHANGE).size());
    assertEquals(1, b.counters().preVotesStarted);
    assertEquals(0, b.view());
  }

  @Test
  void shouldNotGrantAPreVoteWhileItHeardItsPrimaryWithinTheElectionTimeout_Raft96() {
    ReplicaCore c = fresh(3, 3);
    tick(c, 0);
    step(c, heartbeat(1, 0), 2 * T);
    Effects e = step(c, preVote(2, 0, 1), 3 * T - MS);
    assertTrue(sendsOf(e, MessageType.PRE_VIEW_CHANGE_OK).isEmpty(), "its primary spoke less than T ago");
    assertEquals(0, c.counters().preVotesGranted);
    Effects later = step(c, preVote(2, 0, 1), 3 * T);
    assertEquals(2, only(later, MessageType.PRE_VIEW_CHANGE_OK).to(), "silent for T: it supports the asker");
  }

  @Test
  void shouldNeverGrantAPreVoteAsThePrimaryEvenWhenItHearsNobody_Raft96() {
    ReplicaCore a = fresh(1, 3);
    tick(a, 0);
    tick(a, 2 * T);
    Effects e = step(a, preVote(2, 0, 1), 2 * T + MS);
    assertTrue(sendsOf(e, MessageType.PRE_VIEW_CHANGE_OK).isEmpty());
    assertTrue(sendsOf(step(a, preVote(3, 0, 1), 2 * T + 2 * MS), MessageType.PRE_VIEW_CHANGE_OK).isEmpty());
    assertTrue(a.isPrimary());
    assertEquals(0, a.view());
  }

  @Test
  void shouldGrantAPreVoteWhenItsPrimaryIsSilentTooAndChangeNothing_Raft96() {
    ReplicaCore c = fresh(3, 3);
    tick(c, 0);
    Effects e = step(c, preVote(2, 0, 1), 2 * T);
    Effects.Send ok = only(e, MessageType.PRE_VIEW_CHANGE_OK);
    assertEquals(2, ok.to(), "answered to the asker only");
    assertEquals(1, ((PreViewChangeOk) ok.body()).getView());
    assertEquals(0, c.view(), "a grant is not a vote: the granter stays in its view");
    assertEquals(ReplicaCore.Mode.NORMAL, c.mode());
    assertTrue(e.viewToPersist().isEmpty());
    assertEquals(1, c.counters().preVotesGranted);
  }

  @Test
  void shouldGrantAPreVoteInAViewChangeButNotForAViewItHasReached_Raft96() {
    ReplicaCore c = fresh(3, 3);
    tick(c, 0);
    step(c, startViewChange(2, 1), 2 * T);
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, c.mode());
    assertEquals(1, c.view());
    Effects early = step(c, preVote(2, 1, 2), 2 * T + 10 * MS);
    assertTrue(sendsOf(early, MessageType.PRE_VIEW_CHANGE_OK).isEmpty(),
        "its own view change has not stalled yet (it may be making progress): no grant");
    Effects next = step(c, preVote(2, 1, 2), 4 * T + 10 * MS);
    assertEquals(2, ((PreViewChangeOk) only(next, MessageType.PRE_VIEW_CHANGE_OK).body()).getView(),
        "a replica whose own view change stalled supports moving on");
    Effects behind = step(c, preVote(1, 0, 1), 4 * T + 20 * MS);
    assertTrue(sendsOf(behind, MessageType.PRE_VIEW_CHANGE_OK).isEmpty(), "view 1 is no news to a replica in it");
  }

  /** With five replicas f = 2: two distinct grants, and only for the view asked, move the asker. */
  @Test
  void shouldMoveToTheNextViewWithFGrantsAndPersistTheViewBeforeStartViewChange_VR42_Raft96() {
    ReplicaCore b = fresh(2, 5);
    tick(b, 0);
    only(tick(b, 2 * T), MessageType.PRE_VIEW_CHANGE);
    assertTrue(step(b, grant(3, 0, 1), 2 * T + MS).sends().isEmpty(), "1 of f = 2 grants");
    assertTrue(step(b, grant(3, 0, 1), 2 * T + 2 * MS).sends().isEmpty(), "a replica counts once");
    assertTrue(step(b, grant(5, 0, 7), 2 * T + 3 * MS).sends().isEmpty(), "a grant for another view counts not");
    assertEquals(0, b.view());
    Effects e = step(b, grant(4, 0, 1), 2 * T + 4 * MS);
    assertEquals(1, b.view());
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, b.mode());
    // Effects' contract: the view is recorded (synced) before any message of the step is sent, so the
    // START_VIEW_CHANGE below never goes out for a view this replica could forget in a crash.
    assertTrue(e.viewToPersist().isPresent());
    assertEquals(OptionalLong.of(1), e.viewToPersist());
    Effects.Send svc = only(e, MessageType.START_VIEW_CHANGE);
    assertEquals(Effects.MULTICAST, svc.to());
    assertEquals(1, svc.view());
    assertEquals(1, b.counters().viewChangesStarted);
  }

  /**
   * Issue 9, 2d: a backup cut off for many election timeouts only asks (pre-votes) and keeps its view,
   * so when it hears its primary again nothing changes anywhere. On the code before the pre-vote it
   * raised its view at every timeout (the assertion on c.view() fails at about 2T there) and its
   * START_VIEW_CHANGE deposed the healthy primary after the heal.
   */
  @Test
  void shouldKeepItsViewWhileCutOffForSeveralElectionTimeoutsAndChangeNothingWhenItHeals_issue9_2d() {
    ReplicaCore[] r = {null, fresh(1, 3), fresh(2, 3), fresh(3, 3)};
    for (int id = 1; id <= 3; id++) {
      tick(r[id], 0);
    }
    long healAt = 10 * T;
    long now = HB;
    for (; now < healAt; now += HB) {
      // Replicas 1 and 2 talk; replica 3 only ticks, and everything it sends is lost.
      Effects a = tick(r[1], now);
      for (Effects.Send hb : sendsOf(a, MessageType.HEARTBEAT)) {
        Effects b = deliver(hb, 1, r[2], 2, now);
        for (Effects.Send ok : sendsOf(b, MessageType.HEARTBEAT_OK)) {
          deliver(ok, 2, r[1], 1, now);
        }
      }
      tick(r[2], now);
      Effects c = tick(r[3], now);
      assertTrue(sendsOf(c, MessageType.START_VIEW_CHANGE).isEmpty(), "no START_VIEW_CHANGE at " + now / MS + " ms");
      assertEquals(0, r[3].view(), "a cut-off backup never raises its view on its own (at " + now / MS + " ms)");
      assertTrue(c.nextTickNs() > now, "its timers never fire in the past");
    }
    assertTrue(r[3].counters().preVotesStarted >= 1, "it did ask");
    // The partition heals: from now on every message is carried, in order.
    Router net = new Router(r);
    for (; now < healAt + 20 * HB; now += HB) {
      for (int id = 3; id >= 1; id--) { // the healed replica first: its pending pre-vote goes out too
        net.send(id, tick(r[id], now));
        net.run(now);
      }
    }
    for (int id = 1; id <= 3; id++) {
      assertEquals(0, r[id].view(), "replica " + id);
      assertEquals(0, r[id].viewChanges(), "replica " + id + " saw no view change");
      assertEquals(0, r[id].counters().viewChangesStarted, "replica " + id + " started none");
      assertEquals(-1, r[id].lastViewChangeNs());
    }
    assertTrue(r[1].isPrimary(), "the healthy primary stays");
    assertEquals("backup", r[3].role());
    assertTrue(net.carried > 0);
  }

  @Test
  void shouldIgnoreAStartViewChangeForANewerViewWhileItHearsItsPrimary_Raft423() {
    ReplicaCore b = fresh(2, 3);
    tick(b, 0);
    step(b, heartbeat(1, 0), 2 * T);
    Effects e = step(b, startViewChange(3, 1), 2 * T + 10 * MS);
    assertTrue(e.sends().isEmpty(), "a replica that hears its primary does not follow a proposal");
    assertTrue(e.viewToPersist().isEmpty());
    assertEquals(0, b.view());
    assertEquals(ReplicaCore.Mode.NORMAL, b.mode());
    assertEquals(1, b.counters().droppedSticky);
    Effects d = step(b, new Event.Peer(3, 1, MessageType.DO_VIEW_CHANGE,
        DoViewChange.newBuilder().setLastNormalView(0).setLastOp(0).setCommit(0).build()), 2 * T + 20 * MS);
    assertTrue(d.sends().isEmpty(), "nor a DO_VIEW_CHANGE for a view it would lead");
    assertEquals(2, b.counters().droppedSticky);
    assertEquals(0, b.view());
  }

  @Test
  void shouldIgnoreAStartViewChangeForANewerViewAsAPrimaryThatHearsAMajority_Raft423() {
    ReplicaCore a = fresh(1, 3);
    tick(a, 0);
    step(a, new Event.Peer(2, 0, MessageType.HEARTBEAT_OK, HeartbeatOk.getDefaultInstance()), T);
    Effects e = step(a, startViewChange(3, 1), T + 10 * MS);
    assertTrue(e.sends().isEmpty() && e.replies().isEmpty());
    assertTrue(a.isPrimary());
    assertEquals(0, a.view());
    assertEquals(1, a.counters().droppedSticky);
  }

  @Test
  void shouldFollowAStartViewChangeFromItsOwnPrimaryOrOnceItsPrimaryIsSilent_VR42() {
    ReplicaCore b = fresh(2, 3);
    tick(b, 0);
    step(b, heartbeat(1, 0), 2 * T);
    Effects own = step(b, startViewChange(1, 1), 2 * T + 10 * MS);
    assertEquals(1, b.view(), "its primary itself asks: not a rival");
    assertTrue(own.viewToPersist().isPresent());
    assertEquals(1, sendsOf(own, MessageType.START_VIEW_CHANGE).size());

    ReplicaCore c = fresh(3, 3);
    tick(c, 0);
    step(c, heartbeat(1, 0), 10 * MS);
    assertEquals(0, step(c, startViewChange(2, 1), T + 10 * MS - MS).sends().size(), "heard its primary < T ago");
    Effects follow = step(c, startViewChange(2, 1), T + 10 * MS);
    assertEquals(1, c.view(), "silent for T: it joins the view change (VR 4.2 step 1)");
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, c.mode());
    assertEquals(2, only(follow, MessageType.DO_VIEW_CHANGE).to(), "f = 1 START_VIEW_CHANGE: DO_VIEW_CHANGE to the new primary");
  }

  /**
   * VR 4.2 with PreVote: a view change that stalls (its new primary is gone) moves on to the next view
   * only once f others support it; a replica alone in it asks over and over, keeps its view, and its
   * timers stay ahead of the clock.
   */
  @Test
  void shouldMoveOnFromAStalledViewChangeOnlyThroughAPreVote_VR42_Raft96() {
    ReplicaCore c = fresh(3, 3);
    tick(c, 0);
    Effects follow = step(c, startViewChange(2, 1), 2 * T);
    only(follow, MessageType.DO_VIEW_CHANGE); // lost: replica 2, the new primary, is gone
    long now = 2 * T;
    int preVotes = 0;
    for (now += HB; now < 2 * T + 6 * T; now += HB) {
      Effects e = tick(c, now);
      assertTrue(e.nextTickNs() > now, "no tick in the past at " + now / MS + " ms");
      preVotes += sendsOf(e, MessageType.PRE_VIEW_CHANGE).size();
      for (Effects.Send s : sendsOf(e, MessageType.START_VIEW_CHANGE)) {
        assertEquals(1, s.view(), "it repeats its START_VIEW_CHANGE for view 1, never for a newer view");
      }
      assertEquals(1, c.view());
    }
    assertTrue(preVotes >= 2, "after its view-change timeout it asks for view 2");
    // Replica 1, the old primary, restarts (into a view change: a restarted primary never resumes).
    ReplicaCore a = new ReplicaCore(config(1, 3), state(0, 0, true, List.of()));
    tick(a, now);
    long aStarted = now;
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, a.mode());
    Effects ask;
    do {
      now += HB;
      ask = tick(c, now);
      // For an election timeout after its start it follows nobody up (it may have answered a lease round).
    } while (sendsOf(ask, MessageType.PRE_VIEW_CHANGE).isEmpty() || now < aStarted + T);
    Effects.Send pv = only(ask, MessageType.PRE_VIEW_CHANGE);
    assertEquals(1, pv.view());
    assertEquals(2, ((PreViewChange) pv.body()).getView());
    Effects atA = deliver(pv, 3, a, 1, now);
    assertEquals(1, a.view(), "a pre-vote from a newer view brings the restarted replica up to it");
    // It grants once its own (new) view change to view 1 has stalled too: replica 3 keeps asking.
    while (sendsOf(atA, MessageType.PRE_VIEW_CHANGE_OK).isEmpty()) {
      now += HB;
      tick(a, now);
      Effects again = tick(c, now);
      for (Effects.Send p : sendsOf(again, MessageType.PRE_VIEW_CHANGE)) {
        atA = deliver(p, 3, a, 1, now);
      }
      assertTrue(now < 12 * T, "replica 1 never granted");
    }
    Effects.Send ok = only(atA, MessageType.PRE_VIEW_CHANGE_OK);
    Effects moved = deliver(ok, 1, c, 3, now);
    assertEquals(2, c.view(), "one grant (f = 1): on to view 2");
    assertTrue(moved.viewToPersist().isPresent());
    Effects.Send svc = only(moved, MessageType.START_VIEW_CHANGE);
    Effects dvcFromA = deliver(svc, 3, a, 1, now);
    Effects started = deliver(only(dvcFromA, MessageType.DO_VIEW_CHANGE), 1, c, 3, now);
    first(started, MessageType.START_VIEW);
    assertTrue(c.isPrimary(), "replica 3 leads view 2");
  }

  /**
   * A replica that got into a newer view (a majority granted it) but whose START_VIEW_CHANGE the others
   * never heard stays alone there, while stickiness keeps the others with the old primary. It answers
   * the old primary's heartbeat with a HEARTBEAT_OK of its newer view (at most once a heartbeat
   * interval), and the old primary follows it up, taking the cluster along (VR 4.2: views never go back).
   */
  @Test
  void shouldTellTheOldPrimaryItIsStuckInANewerViewAndTheOldPrimaryFollowsItUp_VR42() {
    ReplicaCore[] r = {null, fresh(1, 3), fresh(2, 3), fresh(3, 3)};
    for (int id = 1; id <= 3; id++) {
      tick(r[id], 0);
    }
    // Nothing reaches replicas 2 and 3 for 2T (the primary's heartbeats are lost).
    long now = 2 * T;
    Effects ask = tick(r[2], now);
    Effects.Send pv = only(ask, MessageType.PRE_VIEW_CHANGE);
    deliver(pv, 2, r[1], 1, now); // the primary hears replica 2 (no grant), so it still has a majority
    Effects granted = deliver(pv, 2, r[3], 3, now);
    Effects moved = deliver(only(granted, MessageType.PRE_VIEW_CHANGE_OK), 3, r[2], 2, now);
    assertEquals(1, r[2].view());
    only(moved, MessageType.START_VIEW_CHANGE); // lost everywhere
    now += MS;
    Effects hb = tick(r[1], now);
    Effects.Send heartbeat = only(hb, MessageType.HEARTBEAT);
    deliver(heartbeat, 1, r[3], 3, now);
    assertEquals(0, r[3].view(), "replica 3 hears its primary again");
    Effects notice = deliver(heartbeat, 1, r[2], 2, now);
    Effects.Send stuck = only(notice, MessageType.HEARTBEAT_OK);
    assertEquals(1, stuck.to());
    assertEquals(1, stuck.view(), "in its newer view");
    assertEquals(1, r[2].counters().unstickNotices);
    assertTrue(sendsOf(deliver(heartbeat, 1, r[2], 2, now + MS), MessageType.HEARTBEAT_OK).isEmpty(),
        "at most one notice per heartbeat interval");
    Effects follows = deliver(stuck, 2, r[1], 1, now);
    assertEquals(1, r[1].view(), "the old primary follows it up");
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, r[1].mode());
    assertTrue(follows.viewToPersist().isPresent());
    Effects.Send svc = only(follows, MessageType.START_VIEW_CHANGE);
    Effects atC = deliver(svc, 1, r[3], 3, now);
    assertEquals(1, r[3].view(), "a START_VIEW_CHANGE from its own primary is followed at once");
    deliver(svc, 1, r[2], 2, now);
    Effects started = deliver(only(atC, MessageType.DO_VIEW_CHANGE), 3, r[2], 2, now);
    Effects.Send sv = first(started, MessageType.START_VIEW);
    deliver(sv, 2, r[1], 1, now);
    deliver(sv, 2, r[3], 3, now);
    assertTrue(r[2].isPrimary());
    for (int id = 1; id <= 3; id++) {
      assertEquals(1, r[id].view(), "replica " + id);
      assertEquals(ReplicaCore.Mode.NORMAL, r[id].mode(), "replica " + id);
    }
  }

  /**
   * CheckQuorum: a primary that has heard from fewer than f backups for T stops heartbeating (so the
   * backups that still hear it, if any, can elect a primary that reaches a majority) and refuses
   * writes; it speaks again as soon as it hears from a backup, e.g. a restarted backup's first
   * HEARTBEAT_OK.
   */
  @Test
  void shouldGoQuietWithoutAQuorumAndSpeakAgainWhenItHearsARestartedBackup_CheckQuorum() {
    ReplicaCore a = fresh(1, 3);
    assertEquals(1, sendsOf(tick(a, 0), MessageType.HEARTBEAT).size());
    for (long now = HB; now < T; now += HB) {
      assertEquals(1, sendsOf(tick(a, now), MessageType.HEARTBEAT).size(), "within T everybody counts as alive");
    }
    for (long now = T + HB; now <= 3 * T; now += HB) {
      Effects quiet = tick(a, now);
      assertTrue(sendsOf(quiet, MessageType.HEARTBEAT).isEmpty(), "quiet at " + now / MS + " ms");
      assertTrue(quiet.nextTickNs() > now, "no timer storm while quiet");
    }
    Effects refused = step(a, new Event.ClientRequest(7, put(1, 1, "k")), 3 * T);
    assertEquals(Status.UNAVAILABLE, refused.replies().get(0).responses().get(0).getStatus());
    assertTrue(a.isPrimary(), "still the primary of its view, only quiet");

    ReplicaCore b = new ReplicaCore(config(2, 3), state(0, 0, true, List.of()));
    Effects hello = tick(b, 3 * T + MS);
    Effects.Send ok = only(hello, MessageType.HEARTBEAT_OK);
    assertEquals(1, ok.to(), "a restarted backup announces itself to its primary");
    deliver(ok, 2, a, 1, 3 * T + MS);
    Effects speaks = tick(a, 3 * T + 2 * MS);
    assertEquals(1, sendsOf(speaks, MessageType.HEARTBEAT).size(), "it heard a backup: 2 of 3 again");
    Effects accepted = step(a, new Event.ClientRequest(7, put(1, 2, "k")), 3 * T + 3 * MS);
    assertTrue(accepted.replies().isEmpty(), "the write is taken");
  }

  /**
   * Carries every message, in send order, between the cores of one test (multicast to all others).
   * Bounded: a test that would loop on messages fails instead.
   */
  static final class Router {
    private record InFlight(int from, Effects.Send send) {}

    private final ReplicaCore[] cores;
    private final Deque<InFlight> queue = new ArrayDeque<>();
    int carried;

    Router(ReplicaCore[] cores) {
      this.cores = cores;
    }

    void send(int from, Effects e) {
      for (Effects.Send s : e.sends()) {
        queue.add(new InFlight(from, s));
      }
    }

    void run(long nowNs) {
      int budget = 10_000;
      while (!queue.isEmpty()) {
        assertTrue(--budget > 0, "message storm");
        InFlight m = queue.poll();
        for (int to = 1; to < cores.length; to++) {
          if (to != m.from() && cores[to] != null && (m.send().to() == Effects.MULTICAST || m.send().to() == to)) {
            carried++;
            send(to, deliver(m.send(), m.from(), cores[to], to, nowNs));
          }
        }
      }
    }
  }
}
