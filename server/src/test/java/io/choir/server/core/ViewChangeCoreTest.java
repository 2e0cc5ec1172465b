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
import static io.choir.server.core.CoreKit.put;
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
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * The view change of VR Revisited 4.2, event by event on hand-stepped cores: START_VIEW_CHANGE, then
 * DO_VIEW_CHANGE after f of them (last normal view, last op and commit, no entries), the new primary's
 * choice of the log with the largest (last normal view, op), its fetch of that log by NACK in bounded
 * pieces (issue 9, 2e), START_VIEW with no entries, and the backups' repair of the new log by NACK.
 */
class ViewChangeCoreTest {
  /** Value bytes of the large entries: each needs many datagrams, so each travels alone. */
  private static final int BIG = 100_000;
  /** Resend bytes per NACK: about 3 large entries (the last one may overshoot the budget). */
  private static final long BUDGET = 250_000;

  private static CoreConfig bounded(int id) {
    return builder(id, 3).maxRetransmitBytesPerNack(BUDGET).build();
  }

  private static Event.Peer startViewChange(int from, long view) {
    return new Event.Peer(from, view, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance());
  }

  private static Event.Peer doViewChange(int from, long view, long lastNormalView, long lastOp, long commit) {
    return new Event.Peer(from, view, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder()
        .setLastNormalView(lastNormalView).setLastOp(lastOp).setCommit(commit).build());
  }

  private static OpRange range(long first, long last) {
    return OpRange.newBuilder().setFirst(first).setLast(last).build();
  }

  private static List<Entry> entriesOf(List<Effects.Send> prepares) {
    List<Entry> out = new ArrayList<>();
    prepares.forEach(s -> out.addAll(((Prepare) s.body()).getEntriesList()));
    return out;
  }

  @Test
  void shouldSendDoViewChangeOnlyAfterFStartViewChangesWithItsLastNormalViewOpAndCommitButNoEntries_VR42() {
    ReplicaCore r3 = new ReplicaCore(config(3, 5), state(0, 0, false,
        List.of(entry(1, 0, "a"), entry(2, 0, "b"), entry(3, 0, "c"))));
    tick(r3, 0);
    Effects first = step(r3, startViewChange(4, 1), 2 * T);
    assertEquals(1, r3.view());
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, r3.mode());
    assertTrue(first.viewToPersist().isPresent(), "the new view is recorded before its START_VIEW_CHANGE goes out");
    assertEquals(1, only(first, MessageType.START_VIEW_CHANGE).view());
    assertTrue(sendsOf(first, MessageType.DO_VIEW_CHANGE).isEmpty(), "1 of f = 2 START_VIEW_CHANGEs");
    assertTrue(sendsOf(step(r3, startViewChange(4, 1), 2 * T + MS), MessageType.DO_VIEW_CHANGE).isEmpty(),
        "the same replica counts once");
    Effects second = step(r3, startViewChange(5, 1), 2 * T + 2 * MS);
    Effects.Send dvc = only(second, MessageType.DO_VIEW_CHANGE);
    assertEquals(2, dvc.to(), "to the primary of view 1 only");
    assertEquals(1, dvc.view());
    assertEquals(DoViewChange.newBuilder().setLastNormalView(0).setLastOp(3).setCommit(0).setLogFirstOp(1).build(),
        dvc.body(), "last normal view, last op, commit and where its log starts: no entries");
    assertTrue(dvc.body().getSerializedSize() < 24, "one small datagram however full the log");
    Effects resend = tick(r3, 2 * T + HB);
    assertEquals(1, sendsOf(resend, MessageType.START_VIEW_CHANGE).size(), "repeated while waiting");
    assertEquals(2, only(resend, MessageType.DO_VIEW_CHANGE).to());
  }

  @Test
  void shouldStartTheViewOnlyWithFPlusOneDoViewChangesItsOwnIncluded_VR42() {
    ReplicaCore r2 = fresh(2, 5);
    tick(r2, 0);
    step(r2, startViewChange(3, 1), 2 * T);
    assertTrue(sendsOf(step(r2, doViewChange(3, 1, 0, 0, 0), 2 * T + MS), MessageType.START_VIEW).isEmpty(),
        "its own and one more: 2 of f + 1 = 3");
    Effects e = step(r2, doViewChange(4, 1, 0, 0, 0), 2 * T + 2 * MS);
    Effects.Send sv = first(e, MessageType.START_VIEW);
    assertEquals(Effects.MULTICAST, sv.to());
    assertTrue(r2.isPrimary());
    assertTrue(e.lastNormalViewToPersist().isPresent());
    assertEquals(1, e.lastNormalViewToPersist().get().lastNormalView());
  }

  /** Replica 3 holds ops 1..n of view 0; replica 2 (primary of view 1) holds 1..2 of them; 1 is gone. */
  private static ReplicaCore[] lostPrimary(List<Entry> log) {
    ReplicaCore[] r = {null, null,
        new ReplicaCore(bounded(2), state(0, 0, false, log.subList(0, 2))),
        new ReplicaCore(bounded(3), state(0, 0, false, log))};
    tick(r[2], 0);
    tick(r[3], 0);
    return r;
  }

  /**
   * Replica 2 asks for a pre-vote, 3 grants, both move to view 1 and 3 sends its DO_VIEW_CHANGE; returns
   * what replica 2 does with it.
   */
  private static Effects electReplica2(ReplicaCore[] r, long now) {
    Effects ask = tick(r[2], now);
    Effects granted = deliver(only(ask, MessageType.PRE_VIEW_CHANGE), 2, r[3], 3, now);
    Effects moved = deliver(only(granted, MessageType.PRE_VIEW_CHANGE_OK), 3, r[2], 2, now);
    Effects follow = deliver(only(moved, MessageType.START_VIEW_CHANGE), 2, r[3], 3, now);
    return deliver(only(follow, MessageType.DO_VIEW_CHANGE), 3, r[2], 2, now);
  }

  /** The fill's rounds as the test saw them. */
  private static final class Fill {
    long now;
    int rounds;
    long maxAnswerBytes;
    final List<Long> firstOpAsked = new ArrayList<>();
    final List<Long> persistedAtNewPrimary = new ArrayList<>();
    final List<Long> appliedAtNewPrimary = new ArrayList<>();
    Effects finish;
    long epoch;
  }

  /**
   * Carries the fill between replica 2 (new primary) and replica 3 (chosen): each answer arrives 1 ms
   * after its NACK (so the next piece is asked by replica 2's view-change timer); answer number lose
   * (1-based, 0 for none) is lost whole.
   */
  private static Fill fill(ReplicaCore[] r, Effects nackEffects, long now, int lose) {
    Fill f = new Fill();
    Effects e = nackEffects;
    int maxEntry = 0;
    while (f.finish == null) {
      assertTrue(f.rounds < 30, "the fill ends");
      Effects.Send nack = only(e, MessageType.NACK);
      assertEquals(3, nack.to(), "asked of the replica whose log was chosen");
      Nack body = (Nack) nack.body();
      f.firstOpAsked.add(body.getRanges(0).getFirst());
      f.rounds++;
      Effects answer = deliver(nack, 2, r[3], 3, now);
      List<Effects.Send> pieces = sendsOf(answer, MessageType.PREPARE);
      long bytes = 0;
      for (Entry x : entriesOf(pieces)) {
        bytes += x.getSerializedSize();
        maxEntry = Math.max(maxEntry, x.getSerializedSize());
      }
      assertTrue(bytes <= BUDGET + maxEntry, "an answer is bounded by the byte budget: " + bytes);
      f.maxAnswerBytes = Math.max(f.maxAnswerBytes, bytes);
      now += MS;
      if (f.rounds != lose) {
        for (Effects.Send p : pieces) {
          assertEquals(2, p.to(), "by unicast to the new primary");
          Effects got = deliver(p, 3, r[2], 2, now);
          f.persistedAtNewPrimary.addAll(ops(got.toPersist()));
          f.appliedAtNewPrimary.addAll(ops(got.toApply()));
          f.epoch = got.logEpoch();
          if (!sendsOf(got, MessageType.START_VIEW).isEmpty()) {
            f.finish = got;
          }
        }
      }
      if (f.finish != null) {
        break;
      }
      // Replica 2's view-change timer asks for the next piece (or again for a lost one).
      do {
        now += HB / 2;
        e = tick(r[2], now);
        assertTrue(e.nextTickNs() > now, "view-change timers stay ahead of the clock");
      } while (sendsOf(e, MessageType.NACK).isEmpty());
    }
    f.now = now;
    return f;
  }

  /**
   * VR 4.2 step 3 and issue 9, 2e: the new primary takes the log of the largest (last normal view, op),
   * here replica 3's, and fetches its entries above its own commit by NACK from replica 3 in pieces
   * bounded by max_retransmit_bytes_per_nack: several rounds, each bounded, equal entries confirmed
   * without rewriting, and a lost piece asked for again.
   */
  @Test
  void shouldFetchTheChosenLogInBoundedPiecesAndAskAgainForALostOne_VR42_issue9_2e() {
    List<Entry> log = log(12, BIG);
    ReplicaCore[] r = lostPrimary(log);
    Effects chose = electReplica2(r, 2 * T);
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, r[2].mode());
    assertTrue(sendsOf(chose, MessageType.START_VIEW).isEmpty(), "not before the chosen log is here");
    assertEquals(List.of(range(1, 12)), ((Nack) only(chose, MessageType.NACK).body()).getRangesList(),
        "everything above its commit (0): its own entries there are unverified until confirmed");
    Fill f = fill(r, chose, 2 * T, 2);
    assertTrue(f.rounds >= 5, "12 entries of 100 KB, about 3 a piece, one piece lost: " + f.rounds + " rounds");
    assertEquals(f.firstOpAsked.get(1), f.firstOpAsked.get(2), "the lost piece is asked for again");
    assertEquals(List.of(3L, 4L, 5L, 6L, 7L, 8L, 9L, 10L, 11L, 12L), f.persistedAtNewPrimary,
        "ops 1..2 were equal (confirmed, not rewritten); 3..12 are logged once each");
    assertTrue(r[2].isPrimary());
    assertEquals(12, r[2].lastOp());
    assertEquals(ReplicaCore.Mode.NORMAL, r[2].mode());
  }

  @Test
  void shouldMulticastStartViewWithLastOpAndCommitAndNoEntriesOnceTheLogIsPlaced_VR42_issue9_2e() {
    ReplicaCore[] r = lostPrimary(log(12, BIG));
    Fill f = fill(r, electReplica2(r, 2 * T), 2 * T, 0);
    Effects.Send sv = first(f.finish, MessageType.START_VIEW);
    assertEquals(Effects.MULTICAST, sv.to());
    assertEquals(1, sv.view());
    assertEquals(StartView.newBuilder().setLastOp(12).setCommit(0).build(), sv.body(), "no entries in START_VIEW");
    assertTrue(f.finish.viewToPersist().isPresent());
    assertTrue(f.finish.lastNormalViewToPersist().isPresent(), "its log is complete in view 1");
    assertEquals(1, f.finish.lastNormalViewToPersist().get().lastNormalView());
    assertEquals(1, r[2].lastNormalView());
  }

  /**
   * VR 4.2 step 5 without entries in START_VIEW: a backup adopts the view, keeps its entries above its
   * commit as unverified, NACKs the new log from the new primary and confirms each entry (equal: no log
   * write); it acknowledges only once complete, and the new primary commits the re-prepared suffix once
   * f backups (and itself) have it durable.
   */
  @Test
  void shouldRepairTheNewLogByNackAtTheBackupsAndCommitItOnceFBackupsAcknowledge_VR42() {
    ReplicaCore[] r = lostPrimary(log(12, BIG));
    Fill f = fill(r, electReplica2(r, 2 * T), 2 * T, 0);
    long now = f.now;
    Effects adopt = deliver(first(f.finish, MessageType.START_VIEW), 2, r[3], 3, now);
    assertEquals(1, r[3].view());
    assertEquals(ReplicaCore.Mode.NORMAL, r[3].mode());
    assertEquals("catching-up", r[3].role(), "its entries above commit are unverified");
    assertTrue(adopt.lastNormalViewToPersist().isEmpty(), "not complete in view 1 yet");
    assertEquals(0, r[3].lastNormalView());
    Effects hbBefore = deliver(only(tick(r[2], now + HB), MessageType.HEARTBEAT), 2, r[3], 3, now + HB);
    assertEquals(0, ((HeartbeatOk) only(hbBefore, MessageType.HEARTBEAT_OK).body()).getOp(),
        "no acknowledgement while incomplete");
    now += HB;
    Effects complete = null;
    List<Entry> persistedAtBackup = new ArrayList<>();
    for (int i = 0; i < 100 && complete == null; i++) {
      now += 5 * MS;
      Effects t = tick(r[3], now);
      for (Effects.Send nack : sendsOf(t, MessageType.NACK)) {
        assertEquals(2, nack.to());
        for (Effects.Send p : sendsOf(deliver(nack, 3, r[2], 2, now), MessageType.PREPARE)) {
          Effects got = deliver(p, 2, r[3], 3, now);
          persistedAtBackup.addAll(got.toPersist());
          if (got.lastNormalViewToPersist().isPresent()) {
            complete = got;
          }
        }
      }
    }
    assertTrue(complete != null, "the backup completes its log by NACK repair");
    assertEquals(1, complete.lastNormalViewToPersist().get().lastNormalView());
    assertTrue(persistedAtBackup.isEmpty(), "every entry was equal to its own: confirmed, not rewritten");
    assertEquals("backup", r[3].role());
    assertEquals(0, r[2].commitOp(), "nothing is committed in view 1 yet");
    step(r[3], new Event.LastNormalViewPersisted(1), now);
    Effects own = step(r[2], new Event.Persisted(12, f.epoch), now);
    assertTrue(own.toApply().isEmpty(), "its own copy is 1 of the 2 needed");
    step(r[2], new Event.LastNormalViewPersisted(1), now);
    now += HB;
    Effects hb = tick(r[2], now);
    Effects ok = deliver(only(hb, MessageType.HEARTBEAT), 2, r[3], 3, now);
    assertEquals(12, ((HeartbeatOk) only(ok, MessageType.HEARTBEAT_OK).body()).getOp(), "complete: it acknowledges");
    Effects commit = deliver(only(ok, MessageType.HEARTBEAT_OK), 3, r[2], 2, now);
    assertEquals(12, r[2].commitOp(), "f = 1 backup and the primary: the re-prepared suffix commits");
    assertEquals(12, commit.toApply().size());
  }

  /**
   * Issue 9, 2f at the new primary: committed entries it fetched are applied only once its own log
   * write of them is done, even when the chosen log's commit number (here 12) covers them at once.
   */
  @Test
  void shouldApplyCommittedFetchedEntriesOnlyAfterTheNewPrimaryHasLoggedThem_issue9_2f() {
    ReplicaCore[] r = lostPrimary(log(12, BIG));
    // Before it died the old primary told replica 3 that all 12 ops committed.
    Effects learned = step(r[3], new Event.Peer(1, 0, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(12).setCommit(12).setLowWatermark(1).build()), MS);
    assertEquals(12, learned.toApply().size(), "its own log had them: applied at once");
    Fill f = fill(r, electReplica2(r, 2 * T), 2 * T, 0);
    assertEquals(12, r[2].commitOp(), "the DO_VIEW_CHANGE's commit is learned");
    assertEquals(List.of(1L, 2L), f.appliedAtNewPrimary, "only the ops already in its own log");
    Effects written = step(r[2], new Event.Persisted(12, f.epoch), f.now);
    assertEquals(List.of(3L, 4L, 5L, 6L, 7L, 8L, 9L, 10L, 11L, 12L), ops(written.toApply()), "the rest once logged");
  }

  /**
   * VR 4.2, log placement entry by entry. Views 0..3 left replica 2 (primary of view 4) with an entry of
   * the abandoned view 2 at op 2, and replica 3 with view 3's log (last normal view 3). The new primary
   * takes replica 3's log: op 1 is equal (confirmed), op 2 differs (it and all after it are replaced).
   * Then replica 1, the primary of view 3, restarts with an op 4 of view 3 that nobody else has; it
   * adopts view 4 from a PREPARE of the new primary, confirms ops 1..3 by NACK, and its op 4 is replaced
   * by view 4's.
   */
  @Test
  void shouldConfirmEqualEntriesAndReplaceADifferentOneAndAllAfterIt_VR42() {
    Entry e1 = entry(1, 0, "a");
    Entry x2 = entry(2, 2, "abandoned");
    Entry e2 = entry(2, 3, "b");
    Entry e3 = entry(3, 3, "c");
    Entry e4 = entry(4, 3, "lost");
    ReplicaCore[] r = {null, null,
        new ReplicaCore(config(2, 3), state(3, 2, false, List.of(e1, x2))),
        new ReplicaCore(config(3, 3), state(3, 3, false, List.of(e1, e2, e3)))};
    tick(r[2], 0);
    tick(r[3], 0);
    long now = 2 * T;
    Effects chose = electReplica2(r, now);
    assertEquals(4, r[2].view());
    assertEquals(List.of(range(1, 3)), ((Nack) only(chose, MessageType.NACK).body()).getRangesList(),
        "replica 3's log wins: last normal view 3 > 2");
    Effects answer = deliver(only(chose, MessageType.NACK), 2, r[3], 3, now);
    Effects placed = deliver(only(answer, MessageType.PREPARE), 3, r[2], 2, now + MS);
    assertEquals(OptionalLong.of(1), placed.truncationAfter(), "op 2 differs: it and everything after it go");
    assertEquals(List.of(e2, e3), placed.toPersist(), "op 1 is confirmed, ops 2..3 are written");
    assertEquals(StartView.newBuilder().setLastOp(3).setCommit(0).build(),
        first(placed, MessageType.START_VIEW).body());
    assertTrue(r[2].isPrimary());

    now += 10 * MS;
    r[1] = new ReplicaCore(config(1, 3), state(3, 3, true, List.of(e1, e2, e3, e4)));
    tick(r[1], now);
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, r[1].mode(), "a restarted primary never resumes its view");
    step(r[2], new Event.ClientRequest(5, put(7, 1, "new")), now);
    Effects flushed = tick(r[2], now);
    Entry e4new = flushed.toPersist().get(0);
    assertEquals(4, e4new.getOp());
    assertEquals(4, e4new.getView());
    Effects adopt = deliver(only(flushed, MessageType.PREPARE), 2, r[1], 1, now);
    assertEquals(4, r[1].view());
    assertEquals("catching-up", r[1].role());
    assertTrue(adopt.toPersist().isEmpty(), "op 4 waits until ops 1..3 are confirmed");
    Effects ask = tick(r[1], now + 3 * MS);
    Effects.Send nack = only(ask, MessageType.NACK);
    assertEquals(List.of(range(1, 3)), ((Nack) nack.body()).getRangesList());
    Effects resend = deliver(nack, 1, r[2], 2, now + 3 * MS);
    Effects repaired = deliver(only(resend, MessageType.PREPARE), 2, r[1], 1, now + 4 * MS);
    assertEquals(OptionalLong.of(3), repaired.truncationAfter(), "its op 4 of view 3 differs from view 4's");
    assertEquals(List.of(e4new), repaired.toPersist());
    assertTrue(repaired.lastNormalViewToPersist().isPresent());
    assertEquals(4, repaired.lastNormalViewToPersist().get().lastNormalView());
    assertEquals("backup", r[1].role());
  }
}
