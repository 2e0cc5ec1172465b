package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.config;
import static io.choir.server.core.CoreKit.deliver;
import static io.choir.server.core.CoreKit.entry;
import static io.choir.server.core.CoreKit.first;
import static io.choir.server.core.CoreKit.fresh;
import static io.choir.server.core.CoreKit.only;
import static io.choir.server.core.CoreKit.ops;
import static io.choir.server.core.CoreKit.put;
import static io.choir.server.core.CoreKit.sendsOf;
import static io.choir.server.core.CoreKit.step;
import static io.choir.server.core.CoreKit.tick;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.PreViewChange;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import io.choir.proto.Status;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * Recovery (VR Revisited 4.3) and the catching-up rule of issue 9, 2b: a replica that may have lost
 * entries it acknowledged (buffered durability, or an interrupted state-transfer install) must count as
 * failed, neither voting, nor granting pre-votes, nor acknowledging, until its log is complete again.
 */
class RecoveryCoreTest {
  private static Event.Peer heartbeat(int from, long view, long lastOp, long commit) {
    return new Event.Peer(from, view, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(lastOp).setCommit(commit).setLowWatermark(1).build());
  }

  private static Event.Peer prepare(int from, long view, long commit, Entry... entries) {
    return new Event.Peer(from, view, MessageType.PREPARE, Prepare.newBuilder()
        .setFirstOp(entries[0].getOp()).addAllEntries(List.of(entries)).setCommit(commit).build());
  }

  private static Event.Peer response(int from, long view, long nonce, boolean fromPrimary, long lastOp, long commit) {
    return new Event.Peer(from, view, MessageType.RECOVERY_RESPONSE, RecoveryResponse.newBuilder()
        .setNonce(nonce).setFromPrimary(fromPrimary).setLastOp(lastOp).setCommit(commit).build());
  }

  private static Event.Peer preVote(int from, long senderView, long proposed) {
    return new Event.Peer(from, senderView, MessageType.PRE_VIEW_CHANGE,
        PreViewChange.newBuilder().setView(proposed).build());
  }

  private static RecoveredState recovering(List<Entry> log) {
    return new RecoveredState(0, 0, true, true, false, 0, 0, 1, log);
  }

  /** A replica whose interrupted install was wiped: it ran before, lost its data, must catch up. */
  private static RecoveredState wiped(boolean mustCatchUp) {
    return new RecoveredState(0, 0, true, false, mustCatchUp, 0, 0, 1, List.of());
  }

  @Test
  void shouldAnswerNothingButRecoveryResponsesWhileRecovering_VR43() {
    ReplicaCore r = new ReplicaCore(config(3, 3), recovering(List.of(entry(1, 0, "a"), entry(2, 0, "b"))));
    assertEquals(ReplicaCore.Mode.RECOVERING, r.mode());
    Effects first = tick(r, 0);
    Effects.Send rec = only(first, MessageType.RECOVERY);
    assertEquals(Effects.MULTICAST, rec.to());
    long nonce = ((Recovery) rec.body()).getNonce();
    assertNotEquals(0, nonce);
    assertTrue(sendsOf(tick(r, HB / 2), MessageType.RECOVERY).isEmpty());
    assertEquals(nonce, ((Recovery) only(tick(r, HB), MessageType.RECOVERY).body()).getNonce(),
        "repeated every heartbeat interval with the same nonce");
    List<Event.Peer> ignored = List.of(
        prepare(1, 0, 0, entry(3, 0, "c")),
        heartbeat(1, 0, 3, 2),
        new Event.Peer(2, 1, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()),
        new Event.Peer(2, 1, MessageType.DO_VIEW_CHANGE, DoViewChange.getDefaultInstance()),
        new Event.Peer(2, 1, MessageType.START_VIEW, StartView.newBuilder().setLastOp(3).build()),
        preVote(2, 0, 1),
        new Event.Peer(1, 0, MessageType.NACK, Nack.newBuilder()
            .addRanges(OpRange.newBuilder().setFirst(1).setLast(2)).build()),
        new Event.Peer(2, 0, MessageType.RECOVERY, Recovery.newBuilder().setNonce(5).build()),
        new Event.Peer(1, 0, MessageType.PREPARE_OK, PrepareOk.newBuilder().setOp(2).build()));
    long now = HB + MS;
    for (Event.Peer p : ignored) {
      Effects e = step(r, p, now++);
      assertTrue(e.sends().isEmpty() && e.toPersist().isEmpty() && e.toApply().isEmpty() && e.viewToPersist().isEmpty(),
          "a recovering replica acts on no " + p.type());
      assertEquals(ReplicaCore.Mode.RECOVERING, r.mode());
      assertEquals(0, r.view());
    }
    Effects client = step(r, new Event.ClientRequest(4, put(1, 1, "k")), now);
    assertEquals(Status.UNAVAILABLE, client.replies().get(0).responses().get(0).getStatus());
  }

  /**
   * VR 4.3 with five replicas: f + 1 = 3 answers carrying its nonce, one of them from the primary of the
   * newest view they name. It then rejoins that view as a backup that must catch up: its entries above
   * what it applied are unverified, it acknowledges nothing until its log reaches the primary's, and
   * only then does its last normal view become the view (with the catching-up marker cleared).
   */
  @Test
  void shouldRejoinAsACatchingUpBackupAfterFPlusOneAnswersIncludingThePrimaryOfTheNewestView_VR43() {
    Entry e1 = entry(1, 0, "a");
    Entry e2 = entry(2, 0, "b");
    Entry e3old = entry(3, 0, "abandoned");
    ReplicaCore r = new ReplicaCore(config(5, 5), recovering(List.of(e1, e2, e3old)));
    long nonce = ((Recovery) only(tick(r, 0), MessageType.RECOVERY).body()).getNonce();
    assertTrue(step(r, response(3, 1, nonce + 2, false, 0, 0), MS).sends().isEmpty());
    step(r, response(3, 1, nonce, false, 0, 0), 2 * MS);
    step(r, response(1, 0, nonce, true, 9, 5), 3 * MS);
    assertEquals(ReplicaCore.Mode.RECOVERING, r.mode(), "2 answers (a wrong nonce counts not)");
    Effects three = step(r, response(4, 1, nonce, false, 0, 0), 4 * MS);
    assertEquals(ReplicaCore.Mode.RECOVERING, r.mode(),
        "3 answers, but not from replica 2, the primary of view 1, the newest they name");
    assertTrue(three.viewToPersist().isEmpty());
    Effects rejoin = step(r, response(2, 1, nonce, true, 4, 2), 5 * MS);
    assertEquals(ReplicaCore.Mode.NORMAL, r.mode());
    assertEquals(1, r.view());
    assertTrue(r.mustCatchUp(), "it may have lost what it acknowledged");
    assertEquals("catching-up", r.role());
    assertEquals(OptionalLong.of(1), rejoin.viewToPersist());
    assertTrue(rejoin.lastNormalViewToPersist().isPresent());
    assertEquals(0, rejoin.lastNormalViewToPersist().get().lastNormalView(), "its log ranks below every other one");

    Effects ask = tick(r, 8 * MS);
    assertEquals(List.of(OpRange.newBuilder().setFirst(1).setLast(4).build()),
        ((Nack) only(ask, MessageType.NACK).body()).getRangesList(), "it verifies everything above what it applied");
    Effects part = step(r, prepare(2, 1, 2, e1, e2), 9 * MS);
    assertTrue(part.toPersist().isEmpty(), "ops 1..2 are equal: confirmed");
    assertTrue(part.lastNormalViewToPersist().isEmpty());
    Effects hb = step(r, heartbeat(2, 1, 4, 2), 10 * MS);
    assertEquals(0, ((HeartbeatOk) only(hb, MessageType.HEARTBEAT_OK).body()).getOp(), "no acknowledgement yet");
    Entry e3 = entry(3, 1, "c");
    Entry e4 = entry(4, 1, "d");
    Effects rest = step(r, prepare(2, 1, 2, e3, e4), 11 * MS);
    assertEquals(OptionalLong.of(2), rest.truncationAfter(), "its op 3 of an abandoned view goes");
    assertEquals(List.of(e3, e4), rest.toPersist());
    assertTrue(rest.lastNormalViewToPersist().isPresent(), "complete in view 1");
    assertEquals(1, rest.lastNormalViewToPersist().get().lastNormalView());
    assertTrue(rest.lastNormalViewToPersist().get().caughtUp(), "storage clears the catching-up marker with the last normal view");
    assertFalse(r.mustCatchUp());
    Effects written = step(r, new Event.Persisted(4, rest.logEpoch()), 12 * MS);
    assertTrue(sendsOf(written, MessageType.PREPARE_OK).isEmpty(), "not before its last normal view is on disk");
    Effects ack = step(r, new Event.LastNormalViewPersisted(1), 13 * MS);
    assertEquals(4, ((PrepareOk) only(ack, MessageType.PREPARE_OK).body()).getOp());
  }

  /**
   * Issue 9, 2b: a replica built from a RecoveredState with mustCatchUp (its interrupted install wiped
   * what it had acknowledged) follows the cluster into new views but takes no part in forming them: no
   * START_VIEW_CHANGE, no DO_VIEW_CHANGE, no pre-vote and no grant, and no acknowledgement (PREPARE_OK, or
   * a HEARTBEAT_OK with an op) until its log is complete again; then its Effects carry
   * persistLastNormalView and caughtUp, and it acknowledges and votes like any other.
   */
  @Test
  void shouldNeitherVoteNorGrantNorAcknowledgeUntilItHasCaughtUp_issue9_2b() {
    ReplicaCore m = new ReplicaCore(config(3, 3), wiped(true));
    assertTrue(m.mustCatchUp());
    Effects start = tick(m, 0);
    for (Effects.Send s : sendsOf(start, MessageType.HEARTBEAT_OK)) {
      assertEquals(0, ((HeartbeatOk) s.body()).getOp(), "its announcement acknowledges nothing");
    }
    Effects hb = step(m, heartbeat(1, 0, 5, 3), 10 * MS);
    assertEquals(0, ((HeartbeatOk) only(hb, MessageType.HEARTBEAT_OK).body()).getOp());
    Entry e1 = entry(1, 0, "a");
    Entry e2 = entry(2, 0, "b");
    Entry e3 = entry(3, 0, "c");
    Effects got = step(m, prepare(1, 0, 3, e1, e2, e3), 11 * MS);
    assertEquals(List.of(1L, 2L, 3L), ops(got.toPersist()));
    Effects written = step(m, new Event.Persisted(3), 12 * MS);
    assertTrue(sendsOf(written, MessageType.PREPARE_OK).isEmpty(), "no PREPARE_OK while catching up");
    long silent = 11 * MS + T;
    assertTrue(sendsOf(step(m, preVote(2, 0, 1), silent), MessageType.PRE_VIEW_CHANGE_OK).isEmpty(),
        "no grant, though its primary is silent");
    Effects own = tick(m, 11 * MS + 2 * T);
    assertTrue(sendsOf(own, MessageType.PRE_VIEW_CHANGE).isEmpty(), "no pre-vote of its own");
    Effects follow = step(m, new Event.Peer(2, 1, MessageType.START_VIEW_CHANGE,
        StartViewChange.getDefaultInstance()), 11 * MS + 2 * T);
    assertEquals(1, m.view(), "it follows the cluster into view 1");
    assertTrue(follow.viewToPersist().isPresent());
    assertTrue(follow.sends().isEmpty(), "but sends no START_VIEW_CHANGE and no DO_VIEW_CHANGE");
    long now = 11 * MS + 2 * T;
    for (int i = 1; i <= 60; i++) {
      Effects t = tick(m, now + i * HB);
      assertTrue(t.sends().isEmpty(), "nothing while the view forms without it (tick " + i + ")");
    }
    now += 61 * HB;
    Effects adopt = step(m, new Event.Peer(2, 1, MessageType.START_VIEW,
        StartView.newBuilder().setLastOp(5).setCommit(3).build()), now);
    assertEquals(ReplicaCore.Mode.NORMAL, m.mode());
    assertTrue(adopt.lastNormalViewToPersist().isEmpty());
    Effects ask = tick(m, now + 3 * MS);
    assertEquals(2, only(ask, MessageType.NACK).to());
    Effects complete = step(m, prepare(2, 1, 3, entry(4, 1, "d"), entry(5, 1, "e")), now + 4 * MS);
    assertTrue(complete.lastNormalViewToPersist().isPresent());
    assertEquals(1, complete.lastNormalViewToPersist().get().lastNormalView());
    assertTrue(complete.lastNormalViewToPersist().get().caughtUp());
    assertFalse(m.mustCatchUp());
    step(m, new Event.Persisted(5, complete.logEpoch()), now + 5 * MS);
    Effects ack = step(m, new Event.LastNormalViewPersisted(1), now + 5 * MS);
    assertEquals(5, ((PrepareOk) only(ack, MessageType.PREPARE_OK).body()).getOp(), "caught up: it acknowledges");
    Effects grant = step(m, preVote(1, 1, 2), now + 4 * MS + T);
    assertEquals(1, only(grant, MessageType.PRE_VIEW_CHANGE_OK).to(), "and supports a view change again");
  }

  /**
   * Why 2b matters. Replica 1 (primary of view 0) committed ops 1..3 with replica 2's acknowledgements;
   * replica 3 never got them. Replica 2's state-transfer install is then interrupted and wiped, and
   * replica 1 dies. Honouring mustCatchUp, replicas 2 and 3 cannot form a view (2 does not vote), so
   * nothing is lost: the cluster waits for replica 1. Ignoring it, they form view 1 with an empty log,
   * and ops 1..3, committed and answered, are gone.
   */
  @Test
  void shouldFormNoViewThatLacksACommittedOpWhenAReplicaLostWhatItAcknowledged_issue9_2b() {
    ReplicaCore[] r = {null, null, new ReplicaCore(config(2, 3), wiped(true)), fresh(3, 3)};
    tick(r[2], 0);
    tick(r[3], 0);
    for (long now = 2 * T; now < 8 * T; now += HB) {
      Effects b = tick(r[2], now);
      assertTrue(sendsOf(b, MessageType.PRE_VIEW_CHANGE).isEmpty());
      for (Effects.Send ask : sendsOf(tick(r[3], now), MessageType.PRE_VIEW_CHANGE)) {
        assertTrue(sendsOf(deliver(ask, 3, r[2], 2, now), MessageType.PRE_VIEW_CHANGE_OK).isEmpty());
      }
    }
    assertEquals(0, r[2].view());
    assertEquals(0, r[3].view(), "no view forms without a replica that holds the committed ops");

    // The same history with the marker ignored: replica 2 votes with the log it has now (empty).
    ReplicaCore[] ignored = {null, null, new ReplicaCore(config(2, 3), wiped(false)), fresh(3, 3)};
    tick(ignored[2], 0);
    tick(ignored[3], 0);
    long now = 2 * T;
    Effects ask = tick(ignored[2], now);
    Effects granted = deliver(only(ask, MessageType.PRE_VIEW_CHANGE), 2, ignored[3], 3, now);
    Effects moved = deliver(only(granted, MessageType.PRE_VIEW_CHANGE_OK), 3, ignored[2], 2, now);
    Effects follow = deliver(only(moved, MessageType.START_VIEW_CHANGE), 2, ignored[3], 3, now);
    Effects started = deliver(only(follow, MessageType.DO_VIEW_CHANGE), 3, ignored[2], 2, now);
    first(started, MessageType.START_VIEW);
    assertTrue(ignored[2].isPrimary());
    assertEquals(0, ignored[2].lastOp(), "view 1's log lacks ops 1..3, committed in view 0: what 2b prevents");
  }
}
