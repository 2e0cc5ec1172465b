package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.StartView;
import io.choir.proto.Status;
import io.choir.server.config.CoreSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * Three cores stepped by hand: the normal case of VR Revisited 4.1 with multicast PREPAREs, and NACK
 * repair (DESIGN.md "Loss, repair and flow"). Messages are carried, dropped or reordered by the test.
 */
class ReplicationCoreTest {
  private static final long MS = 1_000_000L;

  private static CoreConfig config(int id) {
    return CoreSettings.defaults(id, List.of(1, 2, 3)).resendAmplificationLimit(0).nackDelayNs(2 * MS).heartbeatIntervalNs(50 * MS)
        .quorumTimeoutNs(500 * MS).retransmitRingEntries(4).logRetentionMinOps(1000).seed(7).build();
  }

  private static Request put(long requestId, String key) {
    return Request.newBuilder().setClientId(1).setRequestId(requestId)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFromUtf8("v")))
        .build();
  }

  private static Effects step(ReplicaCore core, Event e, long nowNs) {
    Effects out = new Effects();
    core.step(e, nowNs, out);
    return out;
  }

  private static List<Effects.Send> sendsOf(Effects e, MessageType type) {
    return e.sends().stream().filter(s -> s.type() == type).toList();
  }

  private static Event.Peer from(int sender, Effects.Send s) {
    return new Event.Peer(sender, s.view(), s.type(), s.body());
  }

  private static Event.Applied applied(List<Entry> entries) {
    List<Response> replies = new ArrayList<>();
    for (Entry e : entries) {
      replies.add(Response.newBuilder().setRequestId(e.getRequestId()).setVersion(e.getOp()).build());
    }
    return new Event.Applied(entries.get(0).getOp(), entries.get(entries.size() - 1).getOp(), replies, 0);
  }

  @Test
  void shouldCommitOnlyWhenAMajorityPersistedAndAnswerAfterApply_VR41() {
    ReplicaCore primary = new ReplicaCore(config(1), RecoveredState.empty());
    ReplicaCore backup = new ReplicaCore(config(2), RecoveredState.empty());
    step(primary, new Event.ClientRequest(9, put(1, "a")), 0);
    Effects flush = step(primary, new Event.Tick(), 0);
    assertEquals(1, flush.toPersist().size(), "the primary persists while it multicasts");
    Effects.Send prepare = sendsOf(flush, MessageType.PREPARE).get(0);
    assertEquals(Effects.MULTICAST, prepare.to());
    Effects own = step(primary, new Event.Persisted(1), 1 * MS);
    assertTrue(own.toApply().isEmpty(), "its own durable copy is 1 of the 2 needed");
    Effects atBackup = step(backup, from(1, prepare), 1 * MS);
    assertEquals(1, atBackup.toPersist().size());
    assertTrue(sendsOf(atBackup, MessageType.PREPARE_OK).isEmpty(), "no PREPARE_OK before the backup's own fsync");
    Effects ok = step(backup, new Event.Persisted(1), 2 * MS);
    Effects.Send ack = sendsOf(ok, MessageType.PREPARE_OK).get(0);
    assertEquals(1, ack.to());
    assertEquals(1, ((PrepareOk) ack.body()).getOp());
    Effects commit = step(primary, from(2, ack), 2 * MS);
    assertEquals(1, commit.toApply().size(), "f+1 = 2 have op 1: commit");
    Effects reply = step(primary, applied(commit.toApply()), 3 * MS);
    assertEquals(9, reply.replies().get(0).connectionId());
  }

  @Test
  void shouldApplyOnBackupUpToTheCommitThatTheNextHeartbeatCarries() {
    ReplicaCore backup = new ReplicaCore(config(2), RecoveredState.empty());
    Entry e1 = Entry.newBuilder().setOp(1).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("a"))).build();
    step(backup, new Event.Peer(1, 0, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(1).addEntries(e1).setCommit(0).build()), 0);
    step(backup, new Event.Persisted(1), MS / 2);
    Effects hb = step(backup, new Event.Peer(1, 0, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(1).setCommit(1).setLowWatermark(1).build()), MS);
    assertEquals(List.of(1L), hb.toApply().stream().map(Entry::getOp).toList());
    assertEquals(1, sendsOf(hb, MessageType.HEARTBEAT_OK).size(), "heartbeats are answered");
  }

  /**
   * Issue 9, 2f: the apply lane's write must never overtake the log lane's in RocksDB's one WAL, so a
   * committed entry is applied only once this replica's own log write of it is done.
   */
  @Test
  void shouldApplyACommittedEntryOnlyAfterItsOwnLogWrite() {
    ReplicaCore backup = new ReplicaCore(config(2), RecoveredState.empty());
    Entry e1 = Entry.newBuilder().setOp(1).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("a"))).build();
    Effects prepared = step(backup, new Event.Peer(1, 0, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(1).addEntries(e1).setCommit(1).build()), 0);
    assertEquals(List.of(e1), prepared.toPersist());
    assertTrue(prepared.toApply().isEmpty(), "committed, but not yet in this replica's log: not applied");
    Effects hb = step(backup, new Event.Peer(1, 0, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(1).setCommit(1).setLowWatermark(1).build()), MS);
    assertTrue(hb.toApply().isEmpty(), "still not written");
    Effects written = step(backup, new Event.Persisted(1), 2 * MS);
    assertEquals(List.of(1L), written.toApply().stream().map(Entry::getOp).toList(), "applied once logged");
  }

  @Test
  void shouldNackEveryGapAfterHeartbeatRevealsTailLoss() {
    ReplicaCore backup = new ReplicaCore(config(2), RecoveredState.empty());
    List<Entry> entries = new ArrayList<>();
    for (int op = 1; op <= 6; op++) {
      entries.add(Entry.newBuilder().setOp(op).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k" + op))).build());
    }
    // ops 1-2 arrive, 3 is lost, 4 arrives, 5-6 (the last datagram) are lost: only the heartbeat tells.
    step(backup, new Event.Peer(1, 0, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(1).addAllEntries(entries.subList(0, 2)).build()), 0);
    Effects gap = step(backup, new Event.Peer(1, 0, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(4).addEntries(entries.get(3)).build()), 0);
    assertTrue(gap.nextTickNs() <= 2 * MS, "a NACK is scheduled within the random delay");
    step(backup, new Event.Peer(1, 0, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(6).setCommit(2).setLowWatermark(1).build()), MS / 2);
    Effects tick = step(backup, new Event.Tick(), 3 * MS);
    Nack nack = (Nack) sendsOf(tick, MessageType.NACK).get(0).body();
    assertEquals(List.of(range(3, 3), range(5, 6)), nack.getRangesList(), "all gaps, including the tail");
    Effects noRepeat = step(backup, new Event.Tick(), 3 * MS + 1);
    assertTrue(sendsOf(noRepeat, MessageType.NACK).isEmpty(), "backoff: no NACK storm");
    Effects fill = step(backup, new Event.Peer(1, 0, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(3).addEntries(entries.get(2)).build()), 4 * MS);
    assertEquals(List.of(3L, 4L), fill.toPersist().stream().map(Entry::getOp).toList(),
        "the buffered op 4 follows the repaired op 3 in order");
    Effects again = step(backup, new Event.Tick(), 500 * MS);
    Nack second = (Nack) sendsOf(again, MessageType.NACK).get(0).body();
    assertEquals(List.of(range(5, 6)), second.getRangesList(), "repeated until filled");
  }

  private static OpRange range(long first, long last) {
    return OpRange.newBuilder().setFirst(first).setLast(last).build();
  }

  private static ReplicaCore primaryWith(int ops) {
    ReplicaCore primary = new ReplicaCore(config(1), RecoveredState.empty());
    for (int i = 1; i <= ops; i++) {
      step(primary, new Event.ClientRequest(1, put(i, "k" + i)), 0);
    }
    step(primary, new Event.Tick(), 0);
    return primary;
  }

  @Test
  void shouldResendByUnicastThenByMulticastWhenASecondReplicaAsksForTheSameOps() {
    ReplicaCore primary = primaryWith(5);
    Nack nack = Nack.newBuilder().addRanges(range(2, 3)).build();
    Effects first = step(primary, new Event.Peer(2, 0, MessageType.NACK, nack), 10 * MS);
    Effects.Send resend = sendsOf(first, MessageType.PREPARE).get(0);
    assertEquals(2, resend.to(), "one replica asked: unicast");
    assertEquals(2, ((Prepare) resend.body()).getEntriesCount());
    Effects dup = step(primary, new Event.Peer(2, 0, MessageType.NACK, nack), 11 * MS);
    assertTrue(sendsOf(dup, MessageType.PREPARE).isEmpty(), "a repeated NACK right after the resend is ignored");
    Effects second = step(primary, new Event.Peer(3, 0, MessageType.NACK, nack), 12 * MS);
    assertEquals(Effects.MULTICAST, sendsOf(second, MessageType.PREPARE).get(0).to(),
        "two replicas lost the same ops: one multicast repairs both");
    Effects later = step(primary, new Event.Peer(2, 0, MessageType.NACK, nack), 100 * MS);
    assertEquals(2, sendsOf(later, MessageType.PREPARE).get(0).to(), "after the suppression window it resends");
  }

  @Test
  void shouldAskTheCallerToResendFromTheLogWhatLeftTheMemoryRing() {
    ReplicaCore primary = primaryWith(10);
    step(primary, new Event.Persisted(10), MS);
    List<Entry> all = new ArrayList<>();
    Effects commit = step(primary, new Event.Peer(2, 0, MessageType.PREPARE_OK,
        PrepareOk.newBuilder().setOp(10).build()), MS);
    all.addAll(commit.toApply());
    step(primary, applied(all), MS);
    Effects resend = step(primary, new Event.Peer(3, 0, MessageType.NACK,
        Nack.newBuilder().addRanges(range(1, 10)).build()), 2 * MS);
    assertEquals(List.of(new Effects.Retransmit(3, 0, 1, 6, 10, 4L << 20)), resend.retransmits(),
        "ops 1-6 left the ring of 4: read them from the log");
    assertTrue(sendsOf(resend, MessageType.PREPARE).isEmpty(),
        "the log read may spend the whole byte budget of this NACK: the rest waits for the next one");
    Effects next = step(primary, new Event.Peer(3, 0, MessageType.NACK,
        Nack.newBuilder().addRanges(range(7, 10)).build()), 3 * MS);
    List<Long> fromMemory = new ArrayList<>();
    sendsOf(next, MessageType.PREPARE).forEach(s -> ((Prepare) s.body()).getEntriesList().forEach(e -> fromMemory.add(e.getOp())));
    assertEquals(List.of(7L, 8L, 9L, 10L), fromMemory);
  }

  /**
   * Issue 9, 2g: the log stores, and the checksum hashes, an entry's protobuf serialization; an entry
   * with fields this replica does not know would serialize to other bytes than the primary's, so it is
   * dropped and counted, never stored or hashed.
   */
  @Test
  void shouldDropAnEntryWhoseBytesWouldNotSerializeBackTheSame() {
    ReplicaCore backup = new ReplicaCore(config(2), RecoveredState.empty());
    Entry odd = Entry.newBuilder().setOp(1).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("a")))
        .setUnknownFields(UnknownFieldSet.newBuilder().addField(99,
            UnknownFieldSet.Field.newBuilder().addVarint(1).build()).build())
        .build();
    Effects e = step(backup, new Event.Peer(1, 0, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(1).addEntries(odd).build()), 0);
    assertTrue(e.toPersist().isEmpty(), "not stored");
    assertEquals(1, backup.counters().nonCanonicalEntries);
    Entry fine = odd.toBuilder().setUnknownFields(UnknownFieldSet.getDefaultInstance()).build();
    Effects ok = step(backup, new Event.Peer(1, 0, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(1).addEntries(fine).build()), MS);
    assertEquals(List.of(fine), ok.toPersist());
  }

  /**
   * A PREPARE that needs several datagrams does not stand in for a heartbeat: under loss it may never
   * arrive whole, and backups that hear nothing whole would depose a busy primary (seen in a process
   * test with 1 MiB values at 20% loss).
   */
  @Test
  void shouldKeepHeartbeatingWhileOnlyFragmentedPreparesGoOut() {
    ReplicaCore primary = new ReplicaCore(config(1), RecoveredState.empty());
    step(primary, new Event.Tick(), 0);
    long now = 0;
    int heartbeats = 0;
    for (int i = 1; i <= 10; i++) {
      now += 20 * MS;
      step(primary, new Event.ClientRequest(1, Request.newBuilder().setClientId(1).setRequestId(i)
          .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k" + i))
              .setValue(ByteString.copyFrom(new byte[5000]))).build()), now);
      Effects tick = step(primary, new Event.Tick(), now);
      assertEquals(1, sendsOf(tick, MessageType.PREPARE).size(), "a big PREPARE every 20 ms");
      heartbeats += sendsOf(tick, MessageType.HEARTBEAT).size();
      step(primary, new Event.Persisted(i), now);
    }
    assertTrue(heartbeats >= 3, "heartbeats every 50 ms beside them: " + heartbeats);
  }

  /**
   * Writes gathered while the previous log write syncs are in the primary's log window but not sent:
   * a heartbeat in between names only what was sent, else every backup sees a gap, NACKs and gets
   * those entries twice (issue 14: the 64 KiB runs resent more entries than clients wrote).
   */
  @Test
  void shouldNotNameInAHeartbeatTheWritesThatWaitForThePreviousLogWrite() {
    ReplicaCore primary = new ReplicaCore(config(1), RecoveredState.empty());
    ReplicaCore backup = new ReplicaCore(config(2), RecoveredState.empty());
    step(primary, new Event.ClientRequest(9, put(1, "a")), 0);
    Effects first = step(primary, new Event.Tick(), 0);
    Effects.Send prepare = sendsOf(first, MessageType.PREPARE).get(0);
    step(backup, from(1, prepare), MS);
    // Op 1's log write is under way (no Persisted yet): op 2 waits in the next batch, unsent.
    step(primary, new Event.ClientRequest(9, put(2, "b")), 2 * MS);
    Effects held = step(primary, new Event.Tick(), 2 * MS);
    assertTrue(sendsOf(held, MessageType.PREPARE).isEmpty(), "op 2 waits for op 1's log write");
    long now = 2 * MS;
    Effects.Send heartbeat = null;
    while (heartbeat == null && now < 500 * MS) {
      now += 10 * MS;
      List<Effects.Send> hbs = sendsOf(step(primary, new Event.Tick(), now), MessageType.HEARTBEAT);
      heartbeat = hbs.isEmpty() ? null : hbs.get(0);
    }
    assertTrue(heartbeat != null, "the primary heartbeats while its log write is slow");
    assertEquals(1, ((Heartbeat) heartbeat.body()).getLastOp(), "the last op sent, not the one gathered");
    step(backup, new Event.Persisted(1), now);
    Effects atBackup = step(backup, from(1, heartbeat), now);
    Effects later = step(backup, new Event.Tick(), now + 50 * MS);
    assertTrue(sendsOf(atBackup, MessageType.NACK).isEmpty() && sendsOf(later, MessageType.NACK).isEmpty(),
        "the backup misses nothing it could have been sent");
  }

  /** The in-memory resend ring is bounded in bytes too: 1 MiB values must not fill the heap. */
  @Test
  void shouldKeepAppliedEntriesInMemoryOnlyUpToTheRingsByteBound() {
    CoreConfig cfg = CoreSettings.defaults(1, List.of(1, 2, 3)).resendAmplificationLimit(0).retransmitRingEntries(1000)
        .retransmitRingBytes(3 * 1100).seed(7).build();
    ReplicaCore primary = new ReplicaCore(cfg, RecoveredState.empty());
    for (int i = 1; i <= 10; i++) {
      step(primary, new Event.ClientRequest(1, Request.newBuilder().setClientId(1).setRequestId(i)
          .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k" + i))
              .setValue(ByteString.copyFrom(new byte[1000]))).build()), 0);
    }
    step(primary, new Event.Tick(), 0);
    step(primary, new Event.Persisted(10), MS);
    Effects commit = step(primary, new Event.Peer(2, 0, MessageType.PREPARE_OK,
        PrepareOk.newBuilder().setOp(10).build()), MS);
    step(primary, applied(commit.toApply()), MS);
    Effects resend = step(primary, new Event.Peer(3, 0, MessageType.NACK,
        Nack.newBuilder().addRanges(range(1, 10)).build()), 2 * MS);
    assertEquals(1, resend.retransmits().size());
    assertEquals(1, resend.retransmits().get(0).fromOp());
    assertEquals(7, resend.retransmits().get(0).toOp(), "only the 3 newest entries (about 3.3 KB) stay in memory");
  }

  @Test
  void shouldRefuseWritesWhenThePrimaryHasNotHeardFromAMajority() {
    ReplicaCore primary = new ReplicaCore(config(1), RecoveredState.empty());
    step(primary, new Event.Tick(), 0);
    step(primary, new Event.Tick(), 400 * MS);
    Effects late = step(primary, new Event.ClientRequest(1, put(1, "a")), 600 * MS);
    assertEquals(Status.UNAVAILABLE, late.replies().get(0).responses().get(0).getStatus());
    step(primary, new Event.Peer(2, 0, MessageType.HEARTBEAT_OK, HeartbeatOk.newBuilder().build()), 601 * MS);
    Effects ok = step(primary, new Event.ClientRequest(1, put(2, "b")), 602 * MS);
    assertTrue(ok.replies().isEmpty(), "with one backup heard, 2 of 3 is a majority again");
  }

  @Test
  void shouldDropMessagesOfAnotherViewAndCountThem() {
    ReplicaCore backup = new ReplicaCore(config(2), RecoveredState.empty());
    step(backup, new Event.Tick(), 0);
    Effects e = step(backup, new Event.Peer(1, 5, MessageType.PREPARE_OK, PrepareOk.newBuilder().setOp(9).build()), 0);
    assertTrue(e.isEmpty());
    assertEquals(1, backup.counters().droppedFutureView, "an ack of a newer view cannot act here");
    Effects stale = step(backup, new Event.Peer(3, 0, MessageType.HEARTBEAT, Heartbeat.newBuilder().build()), 0);
    assertTrue(stale.isEmpty(), "a heartbeat from a replica that is not the primary of its view is ignored");
  }

  @Test
  void shouldAdoptANewerViewFromItsPrimaryKeepingUnverifiedEntriesUntilConfirmed_VR42() {
    Entry e1 = Entry.newBuilder().setOp(1).setView(0).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("a"))).build();
    Entry old2 = Entry.newBuilder().setOp(2).setView(0).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("old"))).build();
    ReplicaCore backup = new ReplicaCore(config(3), new RecoveredState(0, 0, 0, List.of(e1, old2)));
    // View 1's primary (replica 2) speaks: replica 3 adopts view 1, keeps its entries unverified.
    Effects hb = step(backup, new Event.Peer(2, 1, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(2).setCommit(2).setLowWatermark(1).build()), 0);
    assertTrue(hb.toApply().isEmpty(), "unverified entries are never applied");
    assertTrue(hb.viewToPersist().isPresent(), "the new view is recorded before anything is said in it");
    assertEquals(1, backup.view());
    Effects tick = step(backup, new Event.Tick(), 10 * MS);
    Nack nack = (Nack) sendsOf(tick, MessageType.NACK).get(0).body();
    assertEquals(List.of(range(1, 2)), nack.getRangesList(), "it asks for what it must verify");
    Entry new2 = Entry.newBuilder().setOp(2).setView(1).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("new"))).build();
    Effects fill = step(backup, new Event.Peer(2, 1, MessageType.PREPARE,
        Prepare.newBuilder().setFirstOp(1).addEntries(e1).addEntries(new2).setCommit(2).build()), 11 * MS);
    assertEquals(OptionalLong.of(1), fill.truncationAfter(), "op 2 differs: the old one goes");
    assertEquals(List.of(new2), fill.toPersist());
    assertEquals(List.of(1L), fill.toApply().stream().map(Entry::getOp).toList(), "op 1 is in the log already");
    assertTrue(fill.lastNormalViewToPersist().isPresent(), "complete in view 1 once it reached the primary's log");
    Effects written = step(backup, new Event.Persisted(2, fill.logEpoch()), 12 * MS);
    assertEquals(List.of(2L), written.toApply().stream().map(Entry::getOp).toList(), "op 2 once it is logged");
  }

  @Test
  void shouldCountABackupOfAnIdleNewViewAsCompleteAtOnce_VR42() {
    ReplicaCore backup = new ReplicaCore(config(3), RecoveredState.empty());
    Effects sv = step(backup, new Event.Peer(2, 1, MessageType.START_VIEW,
        StartView.newBuilder().setLastOp(0).setCommit(0).build()), 0);
    assertTrue(sv.lastNormalViewToPersist().isPresent(), "nothing to catch up: its last normal view is the new view");
    assertEquals("backup", backup.role());
  }
}
