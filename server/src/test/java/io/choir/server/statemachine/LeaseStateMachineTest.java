package io.choir.server.statemachine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Batch;
import io.choir.proto.BatchOp;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Delete;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseExpire;
import io.choir.proto.LeaseGrant;
import io.choir.proto.LeaseKeepAlive;
import io.choir.proto.LeaseList;
import io.choir.proto.LeaseRecord;
import io.choir.proto.LeaseRevoke;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.net.transfer.SnapshotDigest;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LeaseStateMachineTest checks the lease rules of the state machine (LeaseCommands): grant, attach,
 * keep-alive, expiry in one entry (and a too-early expiry as a no-op), revoke, the limits, and that a
 * restart and a state transfer keep the lease table.
 */
class LeaseStateMachineTest {
  @TempDir Path dir;
  private final List<Storage> opened = new ArrayList<>();
  private Storage storage = open(new MemoryStorage());
  private KvStateMachine sm = machine(storage);
  private long op;

  @AfterEach
  void close() {
    opened.forEach(Storage::close);
  }

  private Storage open(Storage s) {
    opened.add(s);
    return s;
  }

  private static KvStateMachine machine(Storage s) {
    KvStateMachine m = new KvStateMachine(s, 16, 4);
    m.load();
    return m;
  }

  private Response apply(long timeMs, Entry.Builder entry) {
    return sm.apply(List.of(entry.setOp(++op).setTimeMs(timeMs).build()), true).get(0);
  }

  private static Entry.Builder grant(long ttlMs, long minTtlMs) {
    return Entry.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(ttlMs).setMinTtlMs(minTtlMs));
  }

  private static Entry.Builder keepAlive(long id) {
    return Entry.newBuilder().setLeaseKeepAlive(LeaseKeepAlive.newBuilder().setId(id));
  }

  private static Entry.Builder revoke(long id) {
    return Entry.newBuilder().setLeaseRevoke(LeaseRevoke.newBuilder().setId(id));
  }

  private static Entry.Builder expire(long id) {
    return Entry.newBuilder().setLeaseExpire(LeaseExpire.newBuilder().setId(id));
  }

  private static Put.Builder putOf(String key, long lease) {
    return Put.newBuilder().setKey(bytes(key)).setValue(bytes("v")).setLease(lease);
  }

  private static Entry.Builder put(String key, long lease) {
    return Entry.newBuilder().setPut(putOf(key, lease));
  }

  private static ByteString bytes(String s) {
    return ByteString.copyFromUtf8(s);
  }

  private boolean has(String key) {
    return storage.get(key.getBytes(StandardCharsets.UTF_8)) != null;
  }

  private List<LeaseRecord> table() {
    try (StorageSnapshot snapshot = storage.snapshot()) {
      return TransferRows.leaseTable(snapshot);
    }
  }

  @Test
  void aGrantedLeaseHasTheOpAsIdAndItsDeadlineFromTheEntryTime() {
    Response r = apply(1_000, grant(5_000, 1_000));
    assertEquals(Status.OK, r.getStatus());
    assertEquals(1, r.getLease().getId());
    assertEquals(6_000, r.getLease().getDeadlineMs());
    assertEquals(1_000, r.getLease().getNowMs());
    // Below the primary's minimum: raised to it.
    Response raised = apply(1_000, grant(10, 2_000));
    assertEquals(2_000, raised.getLease().getTtlMs());
    assertEquals(3_000, raised.getLease().getDeadlineMs());
    assertEquals(2, sm.leaseCount());
  }

  @Test
  void aTtlOfZeroOrAboveADayIsRefused() {
    assertEquals(Status.INVALID, apply(0, grant(0, 0)).getStatus());
    assertEquals(Status.INVALID, apply(0, grant(LeaseCommands.MAX_TTL_MS + 1, 0)).getStatus());
    assertEquals(Status.OK, apply(0, grant(LeaseCommands.MAX_TTL_MS, 0)).getStatus());
    assertEquals(1, sm.leaseCount());
  }

  @Test
  void aKeepAliveMovesTheDeadlineAndAnEarlyExpiryIsANoOp() {
    long id = apply(0, grant(3_000, 1_000)).getLease().getId();
    apply(100, put("a", id));
    Response kept = apply(2_000, keepAlive(id));
    assertEquals(5_000, kept.getLease().getDeadlineMs());
    // The primary saw the old deadline (3000) pass, but the keep-alive came first: nothing happens.
    Response early = apply(3_500, expire(id));
    assertEquals(Status.CAS_FAILED, early.getStatus());
    assertTrue(has("a"));
    assertEquals(1, sm.leaseCount());
    Response due = apply(5_000, expire(id));
    assertEquals(Status.OK, due.getStatus());
    assertEquals(0, sm.leaseCount());
    assertEquals(1, sm.leaseCounts().expired());
    assertEquals(1, sm.leaseCounts().keepAlives());
  }

  @Test
  void anExpiryDeletesTheLeaseAndEveryKeyInOneEntry() {
    long id = apply(0, grant(1_000, 1_000)).getLease().getId();
    long other = apply(0, grant(60_000, 1_000)).getLease().getId();
    for (String key : List.of("a", "b", "c")) {
      apply(10, put(key, id));
    }
    apply(10, put("d", other));
    apply(10, put("e", 0));
    assertEquals(4, sm.leaseKeyCount());
    long before = sm.applied();
    assertEquals(Status.OK, apply(1_000, expire(id)).getStatus());
    assertEquals(before + 1, sm.applied());
    assertTrue(!has("a") && !has("b") && !has("c"));
    assertTrue(has("d") && has("e"));
    assertEquals(1, sm.leaseKeyCount());
    assertEquals(List.of(other), table().stream().map(LeaseRecord::getId).toList());
    assertEquals(Status.NOT_FOUND, apply(1_001, expire(id)).getStatus());
  }

  @Test
  void aLeaseIsDeadAtItsDeadline() {
    long id = apply(0, grant(1_000, 1_000)).getLease().getId();
    // Past the deadline but not yet expired by an entry: no keep-alive, no attach.
    assertEquals(Status.NOT_FOUND, apply(1_000, keepAlive(id)).getStatus());
    assertEquals(Status.NOT_FOUND, apply(1_000, put("late", id)).getStatus());
    assertNull(storage.get("late".getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void revokeDeletesKeysAndUnknownLeasesAreNotFound() {
    long id = apply(0, grant(10_000, 1_000)).getLease().getId();
    apply(1, put("a", id));
    assertEquals(Status.OK, apply(2, revoke(id)).getStatus());
    assertTrue(!has("a"));
    assertEquals(1, sm.leaseCounts().revoked());
    assertEquals(Status.NOT_FOUND, apply(3, revoke(id)).getStatus());
    assertEquals(Status.NOT_FOUND, apply(3, keepAlive(id)).getStatus());
    assertEquals(Status.NOT_FOUND, apply(3, keepAlive(777)).getStatus());
    Response refused = apply(3, put("b", 777));
    assertEquals(Status.NOT_FOUND, refused.getStatus());
    assertTrue(refused.getError().contains("lease 777 not found"), refused.getError());
    assertTrue(!has("b"));
  }

  @Test
  void aPutWithoutTheLeaseOrADeleteDetachesTheKey() {
    long id = apply(0, grant(1_000, 1_000)).getLease().getId();
    apply(1, put("kept", id));
    apply(1, put("deleted", id));
    apply(2, put("kept", 0)); // now no lease's
    apply(2, Entry.newBuilder().setDelete(Delete.newBuilder().setKey(bytes("deleted"))));
    assertEquals(0, sm.leaseKeyCount());
    apply(3, put("deleted", 0));
    apply(1_000, expire(id));
    assertTrue(has("kept") && has("deleted"));
  }

  @Test
  void aCompareAndSetAttachesOnlyWhenItWrites() {
    long id = apply(0, grant(1_000, 1_000)).getLease().getId();
    apply(1, put("x", 0));
    Entry.Builder failing = Entry.newBuilder().setCompareAndSet(CompareAndSet.newBuilder().setKey(bytes("x"))
        .setExpectAbsent(true).setNewValue(bytes("n")).setLease(id));
    assertEquals(Status.CAS_FAILED, apply(2, failing).getStatus());
    assertEquals(0, sm.leaseKeyCount());
    Entry.Builder lock = Entry.newBuilder().setCompareAndSet(CompareAndSet.newBuilder().setKey(bytes("lock"))
        .setExpectAbsent(true).setNewValue(bytes("me")).setLease(id));
    assertEquals(Status.OK, apply(2, lock).getStatus());
    apply(1_000, expire(id));
    assertTrue(!has("lock") && has("x"));
  }

  @Test
  void aBatchChecksItsLeasesFirstAndAttachesOnlyWhenItSucceeds() {
    long id = apply(0, grant(1_000, 1_000)).getLease().getId();
    Entry.Builder unknown = Entry.newBuilder().setBatch(Batch.newBuilder()
        .addOps(BatchOp.newBuilder().setPut(putOf("p", id)))
        .addOps(BatchOp.newBuilder().setPut(putOf("q", 999))));
    assertEquals(Status.NOT_FOUND, apply(1, unknown).getStatus());
    assertTrue(!has("p"));
    Entry.Builder failing = Entry.newBuilder().setBatch(Batch.newBuilder()
        .addOps(BatchOp.newBuilder().setPut(putOf("p", id)))
        .addOps(BatchOp.newBuilder().setCompareAndSet(CompareAndSet.newBuilder().setKey(bytes("z"))
            .setExpectedValue(bytes("nope")).setNewValue(bytes("v")))));
    assertEquals(Status.CAS_FAILED, apply(1, failing).getStatus());
    assertEquals(0, sm.leaseKeyCount());
    Entry.Builder good = Entry.newBuilder().setBatch(Batch.newBuilder()
        .addOps(BatchOp.newBuilder().setPut(putOf("p", id)))
        .addOps(BatchOp.newBuilder().setPut(putOf("q", id))));
    assertEquals(Status.OK, apply(1, good).getStatus());
    assertEquals(2, sm.leaseKeyCount());
  }

  @Test
  void aLeaseHoldsAtMostMaxKeys() {
    long id = apply(0, grant(60_000, 1_000)).getLease().getId();
    List<Entry> puts = new ArrayList<>();
    for (int i = 0; i < LeaseCommands.MAX_KEYS_PER_LEASE; i++) {
      puts.add(put("k" + i, id).setOp(++op).setTimeMs(1).build());
    }
    sm.apply(puts, false);
    Response full = apply(2, put("one-more", id));
    assertEquals(Status.BUSY, full.getStatus());
    assertTrue(!has("one-more"));
    assertEquals(Status.OK, apply(2, put("k0", id)).getStatus()); // already attached: no new key
  }

  @Test
  void theListIsInIdOrderWithMore() {
    for (int i = 0; i < 5; i++) {
      apply(100, grant(1_000 + i, 1_000));
    }
    Response page = sm.read(Request.newBuilder().setLeaseList(LeaseList.newBuilder().setStartId(2).setLimit(2)).build(), 100);
    assertEquals(List.of(2L, 3L), page.getLeasesList().stream().map(l -> l.getId()).toList());
    assertTrue(page.getMore());
    assertEquals(100, page.getLeases(0).getNowMs());
    Response all = sm.read(Request.newBuilder().setLeaseList(LeaseList.getDefaultInstance()).build(), 100);
    assertEquals(5, all.getLeasesCount());
    assertTrue(!all.getMore());
  }

  @Test
  void aRestartKeepsLeasesAndAttachments() {
    storage = open(RocksDbStorage.open(dir.resolve("db")));
    sm = machine(storage);
    long id = apply(0, grant(2_000, 1_000)).getLease().getId();
    apply(1, put("a", id));
    apply(1, put("b", id));
    apply(1, keepAlive(id));
    long checksum = sm.checksum();
    List<LeaseRecord> before = table();
    storage.close();
    opened.remove(storage);
    storage = open(RocksDbStorage.open(dir.resolve("db")));
    sm = machine(storage);
    assertEquals(checksum, sm.checksum());
    assertEquals(before, table());
    assertEquals(2, sm.leaseKeyCount());
    assertEquals(2_001, sm.earliestLeaseDeadline());
    assertEquals(1, sm.lastTimeMs(), "the clock after a restart: the latest keep-alive");
    apply(2_001, expire(id));
    assertTrue(!has("a") && !has("b"));
  }

  @Test
  void aStateTransferKeepsTheLeaseTableAndTheDigestCoversIt() {
    long id = apply(0, grant(2_000, 1_000)).getLease().getId();
    apply(0, grant(9_000, 1_000));
    apply(1, put("a", id));
    List<KeyValue> data;
    List<LeaseRecord> leases;
    try (StorageSnapshot snapshot = storage.snapshot()) {
      data = snapshot.scanData(new byte[0], 1000, Integer.MAX_VALUE);
      leases = TransferRows.leaseTable(snapshot);
    }
    assertEquals(2, leases.size());
    assertEquals(List.of(bytes("a")), leases.get(0).getKeysList());
    byte[] with = new SnapshotDigest(sm.applied(), sm.checksum()).finish(List.of(), leases);
    byte[] without = new SnapshotDigest(sm.applied(), sm.checksum()).finish(List.of());
    assertTrue(!Arrays.equals(with, without));

    Storage target = open(new MemoryStorage());
    KvStateMachine receiver = machine(target);
    receiver.beginInstall();
    receiver.installData(data);
    receiver.installSnapshot(sm.applied(), sm.checksum(), List.of(), null, leases);
    assertEquals(2, receiver.leaseCount());
    assertEquals(1, receiver.leaseKeyCount());
    // The receiver expires like the source would: the key goes with its lease.
    List<Response> r = receiver.apply(List.of(expire(id).setOp(sm.applied() + 1).setTimeMs(2_000).build()), true);
    assertEquals(Status.OK, r.get(0).getStatus());
    assertNull(target.get("a".getBytes(StandardCharsets.UTF_8)));
    // A new install from empty (beginInstall) forgets the old table.
    receiver.beginInstall();
    assertEquals(0, receiver.leaseCount());
    receiver.installSnapshot(sm.applied(), sm.checksum(), List.of(), null, List.of());
    assertEquals(0, receiver.leaseCount());
    assertNotNull(receiver.membership());
  }
}
