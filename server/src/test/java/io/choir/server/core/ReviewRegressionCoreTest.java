package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.builder;
import static io.choir.server.core.CoreKit.config;
import static io.choir.server.core.CoreKit.deliver;
import static io.choir.server.core.CoreKit.entry;
import static io.choir.server.core.CoreKit.first;
import static io.choir.server.core.CoreKit.fresh;
import static io.choir.server.core.CoreKit.log;
import static io.choir.server.core.CoreKit.only;
import static io.choir.server.core.CoreKit.ops;
import static io.choir.server.core.CoreKit.sendsOf;
import static io.choir.server.core.CoreKit.state;
import static io.choir.server.core.CoreKit.step;
import static io.choir.server.core.CoreKit.tick;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * Holes found by a review of the core after its first issue 9 change, each kept as a regression: every
 * test here failed on that version and passes since the fix. 1 a backup that first hears of a view from
 * a resend called its log complete too early and dropped committed ops (safety; now only an entry made
 * in the current view, a HEARTBEAT or a START_VIEW sets the op its log must reach); 2 a truncation hid
 * an older write's Persisted report (liveness; now the report counts up to every truncation point since
 * its epoch); 3 a late pre-vote grant deposed a primary that was heard again; 4 the fill of the chosen
 * log resent entries still on their way (2e bandwidth; now the new primary asks for the next piece once
 * a whole NACK budget has arrived, and the chosen replica suppresses resends to it for a heartbeat
 * interval); 5 after recovery, NACKs for ops no log has; 6 a view change finished twice in one step; 7
 * rejoining one's own view counted as a view change; 8 one NACK's resends from the log were not bounded
 * by one byte budget.
 */
class ReviewRegressionCoreTest {
  private static Event.Peer prepare(int from, long view, long commit, List<Entry> entries) {
    return new Event.Peer(from, view, MessageType.PREPARE, Prepare.newBuilder()
        .setFirstOp(entries.get(0).getOp()).addAllEntries(entries).setCommit(commit).build());
  }

  /** Five replicas; replicas 2 and 3 hold ops 1..6 of view 0, which replicas 1, 2, 3 acknowledged. */
  private static ReplicaCore[] committedOnOneTwoThree() {
    List<Entry> log = log(6, 10);
    ReplicaCore[] r = new ReplicaCore[6];
    // At most 2 entries per NACK answer, so that the new log is repaired in pieces.
    r[2] = new ReplicaCore(builder(2, 5).maxRetransmitEntriesPerNack(2).build(), state(0, 0, false, log));
    r[3] = new ReplicaCore(builder(3, 5).maxRetransmitEntriesPerNack(2).build(), state(0, 0, false, log));
    r[4] = new ReplicaCore(builder(4, 5).maxRetransmitEntriesPerNack(2).build(), RecoveredState.empty());
    r[5] = new ReplicaCore(builder(5, 5).maxRetransmitEntriesPerNack(2).build(), RecoveredState.empty());
    for (int id = 2; id <= 5; id++) {
      tick(r[id], 0);
    }
    return r;
  }

  /**
   * Replica 1 (primary of view 0) is gone. Replicas 2, 4, 5 form view 1 (2 is its primary, with the
   * log 1..6); replica 3 hears none of it (its START_VIEW is lost). Replicas 4 and 5 NACK the new log,
   * both within the multicast window, so the new primary multicasts ops 1..2: that resend is the first
   * thing replica 3 hears of view 1. Returns replica 3's step of it.
   */
  private static Effects replica3LearnsViewOneFromAResend(ReplicaCore[] r, long now) {
    Effects ask = tick(r[2], now);
    Effects.Send pv = only(ask, MessageType.PRE_VIEW_CHANGE);
    Effects g4 = deliver(pv, 2, r[4], 4, now);
    Effects g5 = deliver(pv, 2, r[5], 5, now);
    deliver(only(g4, MessageType.PRE_VIEW_CHANGE_OK), 4, r[2], 2, now);
    Effects moved = deliver(only(g5, MessageType.PRE_VIEW_CHANGE_OK), 5, r[2], 2, now);
    Effects.Send svc2 = only(moved, MessageType.START_VIEW_CHANGE);
    Effects.Send svc4 = only(deliver(svc2, 2, r[4], 4, now), MessageType.START_VIEW_CHANGE);
    Effects.Send svc5 = only(deliver(svc2, 2, r[5], 5, now), MessageType.START_VIEW_CHANGE);
    Effects.Send dvc5 = only(deliver(svc4, 4, r[5], 5, now), MessageType.DO_VIEW_CHANGE);
    Effects.Send dvc4 = only(deliver(svc5, 5, r[4], 4, now), MessageType.DO_VIEW_CHANGE);
    deliver(dvc4, 4, r[2], 2, now);
    Effects started = deliver(dvc5, 5, r[2], 2, now);
    Effects.Send sv = first(started, MessageType.START_VIEW);
    assertEquals(6, ((StartView) sv.body()).getLastOp());
    deliver(sv, 2, r[4], 4, now);
    deliver(sv, 2, r[5], 5, now);
    now += 3 * MS;
    Effects n4 = tick(r[4], now);
    Effects toFour = deliver(only(n4, MessageType.NACK), 4, r[2], 2, now);
    deliver(only(toFour, MessageType.PREPARE), 2, r[4], 4, now);
    now += MS;
    Effects n5 = tick(r[5], now);
    Effects both = deliver(only(n5, MessageType.NACK), 5, r[2], 2, now);
    Effects.Send resend = only(both, MessageType.PREPARE);
    assertEquals(Effects.MULTICAST, resend.to(), "two replicas asked for ops 1..2: one multicast");
    assertEquals(List.of(1L, 2L), ops(((Prepare) resend.body()).getEntriesList()));
    deliver(resend, 2, r[5], 5, now);
    return deliver(resend, 2, r[3], 3, now);
  }

  /**
   * FINDING 1 (safety). A backup that learns of a new view from a PREPARE takes that PREPARE's last op
   * as the point where its log is complete (onPrepare: completeAtOp = knownLastOp). When that PREPARE
   * is a resend of old ops (a multicast repair for other backups, which NACK the whole new log now that
   * START_VIEW carries no entries), the backup calls its log complete below what the new primary had:
   * it truncates entries it acknowledged in the old view and records view 1 as its last normal view.
   */
  @Test
  void shouldNotCallItsLogCompleteBelowTheNewPrimarysLogWhenAResendIsItsFirstWordOfTheView_VR42() {
    ReplicaCore[] r = committedOnOneTwoThree();
    Effects e = replica3LearnsViewOneFromAResend(r, 2 * T);
    assertEquals(1, r[3].view());
    // ops 3..6 stay (replica 3 acknowledged them; they are in view 1's log), and its last
    // normal view stays 0 until its log reaches op 6, what the primary of view 1 had.
    assertEquals(OptionalLong.empty(), e.truncationAfter(), "replica 3 must not drop ops it acknowledged (it truncated after "
        + e.truncationAfter() + ")");
    assertEquals(6, r[3].lastOp());
    assertEquals(0, r[3].lastNormalView(), "its log is not complete in view 1 below op 6");
  }

  /**
   * FINDING 1, end to end: after the above, replica 2 dies too (two failures of five). Replicas 3, 4, 5
   * form view 2; replica 3's DO_VIEW_CHANGE (last normal view 1, op 2) outranks the others (last normal
   * view 0), and ops 3..6, committed in view 0 by replicas 1, 2 and 3 and answered to their clients,
   * are not in view 2's log.
   */
  @Test
  void shouldKeepEveryCommittedOpWhenABackupLearnedOfAViewFromAResendAndThePrimaryDies_VR42() {
    ReplicaCore[] r = committedOnOneTwoThree();
    long now = 2 * T;
    replica3LearnsViewOneFromAResend(r, now);
    now += 4 * MS + 2 * T; // replica 2 is gone
    Effects ask = tick(r[3], now);
    Effects.Send pv = only(ask, MessageType.PRE_VIEW_CHANGE);
    Effects g4 = deliver(pv, 3, r[4], 4, now);
    Effects g5 = deliver(pv, 3, r[5], 5, now);
    deliver(only(g4, MessageType.PRE_VIEW_CHANGE_OK), 4, r[3], 3, now);
    Effects moved = deliver(only(g5, MessageType.PRE_VIEW_CHANGE_OK), 5, r[3], 3, now);
    assertEquals(2, r[3].view());
    Effects.Send svc3 = only(moved, MessageType.START_VIEW_CHANGE);
    Effects.Send svc4 = only(deliver(svc3, 3, r[4], 4, now), MessageType.START_VIEW_CHANGE);
    Effects.Send svc5 = only(deliver(svc3, 3, r[5], 5, now), MessageType.START_VIEW_CHANGE);
    Effects.Send dvc5 = only(deliver(svc4, 4, r[5], 5, now), MessageType.DO_VIEW_CHANGE);
    Effects.Send dvc4 = only(deliver(svc5, 5, r[4], 4, now), MessageType.DO_VIEW_CHANGE);
    Effects first = deliver(dvc4, 4, r[3], 3, now);
    Effects second = deliver(dvc5, 5, r[3], 3, now);
    List<Effects.Send> started = new ArrayList<>(sendsOf(first, MessageType.START_VIEW));
    started.addAll(sendsOf(second, MessageType.START_VIEW));
    assertTrue(!started.isEmpty(), "view 2 forms");
    assertTrue(r[3].isPrimary());
    // every committed op survives a view change with f = 2 failures.
    assertTrue(r[3].lastOp() >= 6, "view 2's log ends at op " + r[3].lastOp() + ": committed ops 3..6 are lost");
  }

  /**
   * FINDING 2 (liveness). A backup's log write of ops 1..3 (epoch 0) is under way when it adopts view 1
   * and completes at op 2, truncating op 3 (epoch 1). The log lane wrote ops 1..3 before it truncated,
   * but its report, Persisted(3, epoch 0), is of the old epoch and ignored, and a truncation alone is
   * never reported. So the backup's persisted op stays 0 though ops 1..2 are on disk: it neither
   * acknowledges nor applies them until some later write of epoch 1 is reported; in an idle cluster
   * (a client retrying an op of the re-prepared suffix) that never happens.
   */
  @Test
  void shouldCountEntriesBelowATruncationAsPersistedWhenTheirOlderWriteIsReported() {
    ReplicaCore c = fresh(3, 3);
    tick(c, 0);
    List<Entry> log = log(3, 10);
    Effects logging = step(c, prepare(1, 0, 0, log), MS);
    assertEquals(List.of(1L, 2L, 3L), ops(logging.toPersist()));
    Effects adopt = step(c, new Event.Peer(2, 1, MessageType.START_VIEW,
        StartView.newBuilder().setLastOp(2).setCommit(0).build()), 2 * MS);
    assertEquals(1, c.view());
    Effects ask = tick(c, 5 * MS);
    only(ask, MessageType.NACK);
    Effects complete = step(c, prepare(2, 1, 0, log.subList(0, 2)), 6 * MS);
    assertEquals(OptionalLong.of(2), complete.truncationAfter(), "op 3 is not in view 1's log");
    assertTrue(complete.lastNormalViewToPersist().isPresent());
    step(c, new Event.Persisted(3, 0), 7 * MS); // the write of 1..3, done before the truncation ran
    step(c, new Event.LastNormalViewPersisted(1), 7 * MS);
    Effects hb = step(c, new Event.Peer(2, 1, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(2).setCommit(2).setLowWatermark(1).build()), 8 * MS);
    // ops 1..2 are durable here: acknowledged and, once committed, applied.
    assertEquals(2, ((HeartbeatOk) only(hb, MessageType.HEARTBEAT_OK).body()).getOp(),
        "persisted op " + c.persistedOp() + " after the old-epoch report");
    assertEquals(List.of(1L, 2L), ops(hb.toApply()));
    assertTrue(adopt.viewToPersist().isPresent());
  }

  /**
   * FINDING 3 (liveness, minor). A backup asks for a pre-vote; before the grant comes it hears its
   * primary again (the primary was paused just over T). The late grant still moves it to view 1; the
   * others, who hear the primary, ignore its START_VIEW_CHANGE (stickiness), so it is stuck there until
   * its unstick notice makes the old primary follow it up: a view change nobody needed (Raft's PreVote
   * drops a pre-candidacy when the leader is heard).
   */
  @Test
  void shouldIgnoreALateGrantOnceItHearsItsPrimaryAgain_Raft96() {
    ReplicaCore[] r = {null, fresh(1, 3), fresh(2, 3), fresh(3, 3)};
    for (int id = 1; id <= 3; id++) {
      tick(r[id], 0);
    }
    long now = 2 * T;
    Effects.Send pv = only(tick(r[2], now), MessageType.PRE_VIEW_CHANGE);
    deliver(pv, 2, r[1], 1, now); // the primary, back from its pause, hears replica 2 (no grant)
    Effects.Send grant = only(deliver(pv, 2, r[3], 3, now), MessageType.PRE_VIEW_CHANGE_OK);
    Effects hb = tick(r[1], now + MS);
    deliver(only(hb, MessageType.HEARTBEAT), 1, r[2], 2, now + MS);
    Effects late = deliver(grant, 3, r[2], 2, now + 2 * MS);
    // it hears its primary, so the pre-vote is over.
    assertEquals(0, r[2].view(), "a late grant deposed a primary that replica 2 hears");
    assertTrue(sendsOf(late, MessageType.START_VIEW_CHANGE).isEmpty());
  }

  /**
   * FINDING 4 (bandwidth, 2e). The new primary asks for the next piece of the chosen log as soon as
   * the first entry of the last piece arrives (5 ms after its NACK): the chosen replica then resends the
   * entries of that piece still on their way (its resend suppression is 5 ms too). Over a link that
   * carries one 100 KB entry per 10 ms, a fill of 12 entries sends about three times as many. EXPECTED:
   * without loss each entry travels about once (at most one piece more).
   */
  @Test
  void shouldNotResendFillEntriesThatAreStillOnTheirWay_issue9_2e() {
    List<Entry> log = log(12, 100_000);
    CoreConfig c2 = builder(2, 3).maxRetransmitBytesPerNack(250_000).build();
    CoreConfig c3 = builder(3, 3).maxRetransmitBytesPerNack(250_000).build();
    ReplicaCore b = new ReplicaCore(c2, state(0, 0, false, List.of()));
    ReplicaCore c = new ReplicaCore(c3, state(0, 0, false, log));
    tick(b, 0);
    tick(c, 0);
    long now = 2 * T;
    Effects granted = deliver(only(tick(b, now), MessageType.PRE_VIEW_CHANGE), 2, c, 3, now);
    Effects moved = deliver(only(granted, MessageType.PRE_VIEW_CHANGE_OK), 3, b, 2, now);
    Effects follow = deliver(only(moved, MessageType.START_VIEW_CHANGE), 2, c, 3, now);
    Effects toB = deliver(only(follow, MessageType.DO_VIEW_CHANGE), 3, b, 2, now);
    // The link from 3 to 2 carries one entry per 10 ms, in order; NACKs from 2 to 3 arrive at once.
    // Replica 2 is stepped as its replica loop would: a Tick after every event, and when its timer is due.
    Deque<long[]> link = new ArrayDeque<>(); // {deliverAtNs, index into sent}
    List<Effects.Send> sent = new ArrayList<>();
    long linkFreeNs = now;
    int entriesSent = 0;
    Effects t0 = tick(b, now);
    List<Effects> pending = new ArrayList<>(List.of(toB, t0));
    long bTickNs = t0.nextTickNs();
    boolean started = false;
    for (int guard = 0; guard < 10_000 && !started; guard++) {
      for (Effects e : pending) {
        for (Effects.Send nack : sendsOf(e, MessageType.NACK)) {
          for (Effects.Send p : sendsOf(deliver(nack, 2, c, 3, now), MessageType.PREPARE)) {
            entriesSent += ((Prepare) p.body()).getEntriesCount();
            linkFreeNs = Math.max(linkFreeNs, now) + 10 * MS;
            sent.add(p);
            link.add(new long[] {linkFreeNs, sent.size() - 1});
          }
        }
      }
      if (link.isEmpty() && bTickNs == Long.MAX_VALUE) {
        break;
      }
      pending = new ArrayList<>();
      if (!link.isEmpty() && link.peek()[0] <= bTickNs) {
        long[] m = link.poll();
        now = Math.max(now, m[0]);
        pending.add(deliver(sent.get((int) m[1]), 3, b, 2, now));
      } else {
        now = Math.max(now, bTickNs);
      }
      Effects t = tick(b, now);
      pending.add(t);
      bTickNs = t.nextTickNs();
      started = pending.stream().anyMatch(e -> !sendsOf(e, MessageType.START_VIEW).isEmpty());
    }
    assertTrue(started, "the view change finishes");
    // about one copy of each entry.
    assertTrue(entriesSent <= 12 + 3, "the chosen replica sent " + entriesSent + " entries for a 12-entry fill");
  }

  /**
   * FINDING 5 (minor). After recovery (VR 4.3) the replica counts its own unverified entries in the
   * highest op it knows of (knownLastOp = max(lastOp, the primary's last op)). When the new log is
   * shorter than its old one, it keeps NACKing ops the primary does not have, every backoff period, for
   * as long as the cluster is idle, and reports a lag it does not have.
   */
  @Test
  void shouldStopNackingOnceItsRecoveredLogMatchesThePrimarys_VR43() {
    Entry e1 = entry(1, 0, "a");
    Entry e2 = entry(2, 0, "b");
    List<Entry> old = List.of(e1, e2, entry(3, 2, "x"), entry(4, 2, "y"), entry(5, 2, "z"));
    ReplicaCore r = new ReplicaCore(config(3, 3), new RecoveredState(2, 2, true, true, false, 0, 0, 1, old));
    long nonce = ((Recovery) only(tick(r, 0), MessageType.RECOVERY).body()).getNonce();
    step(r, new Event.Peer(2, 3, MessageType.RECOVERY_RESPONSE,
        RecoveryResponse.newBuilder().setNonce(nonce).build()), MS);
    step(r, new Event.Peer(1, 3, MessageType.RECOVERY_RESPONSE,
        RecoveryResponse.newBuilder().setNonce(nonce).setFromPrimary(true).setLastOp(3).setCommit(3).build()), MS);
    assertEquals(3, r.view());
    Effects ask = tick(r, 4 * MS);
    only(ask, MessageType.NACK);
    Entry e3 = entry(3, 3, "c");
    Effects complete = step(r, prepare(1, 3, 3, List.of(e1, e2, e3)), 5 * MS);
    assertTrue(complete.lastNormalViewToPersist().isPresent(), "its log matches view 3's (ops 1..3)");
    int nacks = 0;
    for (long now = 10 * MS; now < 1000 * MS; now += 10 * MS) {
      nacks += sendsOf(tick(r, now), MessageType.NACK).size();
      if (now % HB == 0) {
        step(r, new Event.Peer(1, 3, MessageType.HEARTBEAT,
            Heartbeat.newBuilder().setLastOp(3).setCommit(3).setLowWatermark(1).build()), now);
      }
    }
    // nothing is missing, so nothing is asked for.
    assertEquals(0, nacks, "NACKs for ops 4..5, which no log of view 3 has");
  }

  /**
   * FINDING 6 (minor). When the DO_VIEW_CHANGE that completes f + 1 also completes the new primary's f
   * START_VIEW_CHANGEs, onDoViewChange finishes the view change twice in one step: maybeSendDoViewChange
   * finishes it (finishViewChange sets chosen back to null) and the maybeFinishViewChange that follows
   * finds f + 1 DO_VIEW_CHANGEs and no choice made, and finishes it again. Two START_VIEWs go out and
   * viewChanges() counts two (the "0 view changes" measure of 2d reads it); with a chosen log of another
   * replica the second run would restart the fill from the commit number while already primary.
   */
  @Test
  void shouldFinishAViewChangeOnceWithOneStartView_VR42() {
    ReplicaCore r2 = fresh(2, 5);
    tick(r2, 0);
    step(r2, new Event.Peer(3, 1, MessageType.START_VIEW_CHANGE,
        StartViewChange.getDefaultInstance()), 2 * T);
    step(r2, new Event.Peer(3, 1, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder().build()),
        2 * T + MS);
    Effects e = step(r2, new Event.Peer(4, 1, MessageType.DO_VIEW_CHANGE,
        DoViewChange.newBuilder().build()), 2 * T + 2 * MS);
    assertTrue(r2.isPrimary());
    // one view change, one START_VIEW.
    assertEquals(1, sendsOf(e, MessageType.START_VIEW).size(), "START_VIEWs in one step");
    assertEquals(1, r2.viewChanges());
  }

  /**
   * FINDING 7 (measure, minor). A backup restarted while it was catching up rejoins in a view change
   * (restart limbo) and adopts its own view again when it hears that view's primary: no view changed,
   * yet viewChanges() and lastViewChangeNs() count one, so the status counter the 2d measure ("a
   * restarted replica causes 0 view changes") reads reports one for every such restart.
   */
  @Test
  void shouldNotCountRejoiningItsOwnViewAsAViewChange() {
    ReplicaCore c = new ReplicaCore(config(3, 3), state(1, 0, true, List.of()));
    tick(c, 0);
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, c.mode(), "restarted before its log was complete in view 1");
    step(c, new Event.Peer(2, 1, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(0).setCommit(0).setLowWatermark(1).build()), 10 * MS);
    assertEquals(1, c.view());
    assertEquals(ReplicaCore.Mode.NORMAL, c.mode());
    // it is still view 1, which it was in before the restart.
    assertEquals(0, c.viewChanges(), "counted as a view change");
  }

  /**
   * FINDING 8 (bound). max_retransmit_bytes_per_nack "bounds bursts", but the core cannot charge
   * resends from the log against it (it does not know their sizes): every run of old ops in a NACK
   * gets a Retransmit effect with the whole remaining budget, and the in-memory entries after it get
   * the whole budget again. A NACK with k ranges below the ring thus asks for k times the budget.
   */
  @Test
  void shouldBoundEveryResendOfOneNackByOneByteBudget() {
    CoreConfig cfg = builder(1, 3).retransmitRingEntries(4).maxRetransmitBytesPerNack(1000).build();
    ReplicaCore a = new ReplicaCore(cfg, RecoveredState.empty());
    tick(a, 0);
    for (int i = 1; i <= 20; i++) {
      step(a, new Event.ClientRequest(1, CoreKit.put(1, i, "k" + i)), MS);
    }
    tick(a, MS);
    step(a, new Event.Persisted(20), 2 * MS);
    Effects commit = step(a, new Event.Peer(2, 0, MessageType.PREPARE_OK,
        PrepareOk.newBuilder().setOp(20).build()), 2 * MS);
    step(a, CoreKit.applied(commit.toApply()), 3 * MS);
    Nack.Builder nack = Nack.newBuilder();
    for (long op = 1; op <= 11; op += 2) {
      nack.addRanges(OpRange.newBuilder().setFirst(op).setLast(op));
    }
    Effects e = step(a, new Event.Peer(3, 0, MessageType.NACK, nack.build()), 10 * MS);
    long asked = 0;
    for (Effects.Retransmit rt : e.retransmits()) {
      asked += rt.maxBytes();
    }
    // one NACK may cause at most max_retransmit_bytes_per_nack of resends from the log.
    assertTrue(asked <= 1000, e.retransmits().size() + " resends from the log, allowed " + asked + " bytes in all");
  }
}
