package io.choir.server.statemachine;

import static io.choir.server.statemachine.KvStateMachineSessionTest.close;
import static io.choir.server.statemachine.KvStateMachineSessionTest.register;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Batch;
import io.choir.proto.BatchOp;
import io.choir.proto.ClientRecord;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Delete;
import io.choir.proto.Entry;
import io.choir.proto.Get;
import io.choir.proto.KeyValue;
import io.choir.proto.Noop;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.SavedReply;
import io.choir.proto.Scan;
import io.choir.proto.Status;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.ForwardingStorage;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.StorageSnapshot;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * KvStateMachineTest checks the state machine's contract (see {@link KvStateMachine}) over both
 * storages: the same cases run on the in-memory twin and on RocksDB. A session's id is the op of its
 * RegisterSession entry: where a case applies register(i, ...) as op i, it opens session i, and
 * put(i, ...) then writes in it.
 */
class KvStateMachineTest {
  static final int MAX_SCAN = 3;
  static final int MAX_SESSIONS = 4;
  static final int MAX_REPLIES = 3;
  static final long SESSION_TIMEOUT_MS = KvStateMachineSessionTest.TIMEOUT_MS;
  /** Session clients 1..RANDOM_CLIENTS in randomEntries (besides client 0). */
  static final int RANDOM_CLIENTS = 5;

  @Nested
  class OnMemoryStorage extends Cases {
    @Override
    Storage newStorage() {
      return new MemoryStorage();
    }

    @Override
    Storage reopen(Storage storage) {
      MemoryStorage memory = (MemoryStorage) storage;
      return memory.crashKeeping(memory.unsyncedWriteCount());
    }

    @Test
    void shouldLoseAWholeUnsyncedApplyOnCrashAndKeepASyncedOne() {
      sm.apply(entries(register(1, 1), put(1, 2, "a", "1"), put(0, 0, "b", "2")), false);

      storage = ((MemoryStorage) storage).crash();
      KvStateMachine restarted = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
      restarted.load();

      assertEquals(0, restarted.applied());
      assertEquals(0, restarted.checksum());
      assertNull(restarted.clientRecord(1));
      assertNull(storage.get(bytes("a")));

      restarted.apply(entriesFrom(1, register(1, 1), put(1, 2, "a", "1")), true);
      long checksum = restarted.checksum();
      storage = ((MemoryStorage) storage).crash();
      KvStateMachine again = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
      again.load();

      assertEquals(2, again.applied());
      assertEquals(checksum, again.checksum());
      assertEquals(1, again.clientRecord(1).getRepliesCount());
      assertEquals(2, storage.get(bytes("a")).version());
    }
  }

  @Nested
  class OnRocksDbStorage extends Cases {
    @TempDir Path tempDir;
    private int opened;

    @Override
    Storage newStorage() {
      return RocksDbStorage.open(tempDir.resolve("db" + opened++));
    }

    @Override
    Storage reopen(Storage storage) {
      RocksDbStorage rocks = (RocksDbStorage) storage;
      rocks.close();
      return RocksDbStorage.open(rocks.dir());
    }
  }

  /** The cases, run once per storage. */
  abstract static class Cases {
    abstract Storage newStorage();

    /** Restarts the process over the same storage (not a machine crash: nothing is lost). */
    abstract Storage reopen(Storage storage);

    Storage storage;
    KvStateMachine sm;
    private final List<Storage> extra = new ArrayList<>();

    @BeforeEach
    void start() {
      storage = newStorage();
      sm = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
      sm.load();
    }

    @AfterEach
    void stop() {
      storage.close();
      extra.forEach(Storage::close);
    }

    /** Another state machine over its own new storage. */
    KvStateMachine another(int maxSessions, int maxReplies) {
      Storage other = newStorage();
      extra.add(other);
      KvStateMachine machine = new KvStateMachine(other, maxSessions, maxReplies);
      machine.load();
      return machine;
    }

    /** Applies commands as the next entries of sm, in one call, synced. */
    List<Response> apply(Entry.Builder... commands) {
      return sm.apply(entriesFrom(sm.applied() + 1, commands), true);
    }

    Response apply1(Entry.Builder command) {
      return apply(command).get(0);
    }

    List<Entry> entries(Entry.Builder... commands) {
      return entriesFrom(sm.applied() + 1, commands);
    }

    Response get(String key) {
      return sm.read(
          Request.newBuilder()
              .setRequestId(99)
              .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8(key)))
              .build(),
          MAX_SCAN);
    }

    Response scan(String start, String end, int limit) {
      return sm.read(
          Request.newBuilder()
              .setRequestId(98)
              .setScan(
                  Scan.newBuilder()
                      .setStartKey(ByteString.copyFromUtf8(start))
                      .setEndKey(ByteString.copyFromUtf8(end))
                      .setLimit(limit))
              .build(),
          MAX_SCAN);
    }

    // ---- commands ----

    @Test
    void shouldPutAndGetWithVersionEqualToTheOp() {
      apply1(noop());
      Response put = apply1(put(0, 1, "a", "one"));

      assertEquals(Status.OK, put.getStatus());
      assertEquals(1, put.getRequestId());
      assertEquals(2, put.getVersion());
      assertEquals(2, put.getOp());
      Response got = get("a");
      assertEquals(Status.OK, got.getStatus());
      assertEquals("one", got.getValue().toStringUtf8());
      assertEquals(2, got.getVersion());
      assertEquals(2, got.getOp());
      assertEquals(99, got.getRequestId());
    }

    @Test
    void shouldAnswerNotFoundWithTheAppliedOpForAnAbsentKey() {
      apply(noop(), noop());

      Response got = get("missing");

      assertEquals(Status.NOT_FOUND, got.getStatus());
      assertEquals(2, got.getOp());
    }

    @Test
    void shouldDeleteAndSayWhetherTheKeyExisted() {
      apply1(put(0, 1, "a", "one"));

      Response first = apply1(del(0, 2, "a"));
      Response second = apply1(del(0, 3, "a"));

      assertEquals(Status.OK, first.getStatus());
      assertTrue(first.getExisted());
      assertEquals(2, first.getVersion());
      assertEquals(2, first.getOp());
      assertEquals(Status.OK, second.getStatus());
      assertFalse(second.getExisted());
      assertEquals(Status.NOT_FOUND, get("a").getStatus());
    }

    @Test
    void shouldCompareAndSetOnTheExpectedValue() {
      apply1(put(0, 1, "a", "one"));

      Response swapped = apply1(casValue(0, 2, "a", "one", "two"));
      Response stale = apply1(casValue(0, 3, "a", "one", "three"));
      Response absent = apply1(casValue(0, 4, "b", "one", "three"));

      assertEquals(Status.OK, swapped.getStatus());
      assertEquals(2, swapped.getVersion());
      assertEquals(Status.CAS_FAILED, stale.getStatus());
      assertEquals("two", stale.getValue().toStringUtf8());
      assertEquals(2, stale.getVersion());
      assertEquals(3, stale.getOp());
      assertFalse(stale.getError().isEmpty());
      assertEquals(Status.CAS_FAILED, absent.getStatus());
      assertEquals(ByteString.EMPTY, absent.getValue());
      assertEquals(0, absent.getVersion());
      assertEquals("two", get("a").getValue().toStringUtf8());
      assertEquals(Status.NOT_FOUND, get("b").getStatus());
    }

    @Test
    void shouldCompareAndSetOnTheExpectedVersion() {
      apply1(put(0, 1, "a", "one"));

      Response swapped = apply1(casVersion(0, 2, "a", 1, "two"));
      Response stale = apply1(casVersion(0, 3, "a", 1, "three"));
      Response created = apply1(casVersion(0, 4, "b", 0, "new"));

      assertEquals(Status.OK, swapped.getStatus());
      assertEquals(2, swapped.getVersion());
      assertEquals(Status.CAS_FAILED, stale.getStatus());
      assertEquals(2, stale.getVersion());
      assertEquals("two", stale.getValue().toStringUtf8());
      assertEquals(Status.OK, created.getStatus(), "an absent key has version 0");
      assertEquals(4, get("b").getVersion());
    }

    @Test
    void shouldCompareAndSetOnlyWhenTheKeyIsAbsent() {
      Response created = apply1(casAbsent(0, 1, "a", "one"));
      Response refused = apply1(casAbsent(0, 2, "a", "two"));

      assertEquals(Status.OK, created.getStatus());
      assertEquals(1, created.getVersion());
      assertEquals(Status.CAS_FAILED, refused.getStatus());
      assertEquals("one", refused.getValue().toStringUtf8());
      assertEquals(1, refused.getVersion());
      assertEquals("one", get("a").getValue().toStringUtf8());
    }

    @Test
    void shouldLetLaterBatchOpsSeeEarlierOnes() {
      apply1(put(0, 1, "b", "old"));

      Response batch =
          apply1(
              batch(
                  0,
                  2,
                  opPut("a", "1"),
                  opCas(cas("a").setExpectedValue(bs("1")).setNewValue(bs("2"))),
                  opDelete("b"),
                  opCas(cas("c").setExpectAbsent(true).setNewValue(bs("x"))),
                  opCas(cas("a").setExpectedVersion(2).setNewValue(bs("3")))));

      assertEquals(Status.OK, batch.getStatus(), batch.getError());
      assertEquals(2, batch.getVersion());
      assertEquals("3", get("a").getValue().toStringUtf8());
      assertEquals(2, get("a").getVersion());
      assertEquals(Status.NOT_FOUND, get("b").getStatus());
      assertEquals("x", get("c").getValue().toStringUtf8());
    }

    @Test
    void shouldWriteNothingFromABatchWhenAnyCompareAndSetFails() {
      apply(put(0, 1, "b", "keep"), put(0, 2, "c", "c0"));

      Response batch =
          apply1(
              batch(
                  0,
                  3,
                  opPut("a", "new"),
                  opDelete("b"),
                  opCas(cas("c").setExpectedValue(bs("nope")).setNewValue(bs("x")))));

      assertEquals(Status.CAS_FAILED, batch.getStatus());
      assertEquals(2, batch.getFailedIndex());
      assertEquals("c0", batch.getValue().toStringUtf8());
      assertEquals(2, batch.getVersion());
      assertEquals(3, batch.getOp());
      assertEquals(Status.NOT_FOUND, get("a").getStatus());
      assertEquals("keep", get("b").getValue().toStringUtf8());
      assertEquals(3, sm.applied());
    }

    @Test
    void shouldReportTheBatchStateAFailedCompareAndSetSaw() {
      apply1(put(0, 1, "a", "old"));

      Response batch =
          apply1(
              batch(
                  0,
                  2,
                  opPut("a", "mine"),
                  opCas(cas("a").setExpectedValue(bs("old")).setNewValue(bs("x")))));

      assertEquals(Status.CAS_FAILED, batch.getStatus());
      assertEquals(1, batch.getFailedIndex());
      assertEquals("mine", batch.getValue().toStringUtf8());
      assertEquals(2, batch.getVersion());
      assertEquals("old", get("a").getValue().toStringUtf8());
    }

    @Test
    void shouldSeeEarlierEntriesOfTheSameApplyCall() {
      List<Response> replies =
          apply(
              put(0, 1, "a", "1"),
              casValue(0, 2, "a", "1", "2"),
              del(0, 3, "a"),
              del(0, 4, "a"),
              casAbsent(0, 5, "a", "back"));

      assertEquals(Status.OK, replies.get(1).getStatus());
      assertTrue(replies.get(2).getExisted());
      assertFalse(replies.get(3).getExisted());
      assertEquals(Status.OK, replies.get(4).getStatus());
      assertEquals("back", get("a").getValue().toStringUtf8());
      assertEquals(5, get("a").getVersion());
    }

    @Test
    void shouldAnswerOkToANoop() {
      Response reply = apply1(noop());

      assertEquals(Status.OK, reply.getStatus());
      assertEquals(1, reply.getOp());
    }

    @Test
    void shouldRefuseInvalidEntriesButStillApplyThem() {
      List<Response> replies =
          apply(
              Entry.newBuilder().setRequestId(5),
              put(0, 6, "", "v"),
              del(0, 7, ""),
              Entry.newBuilder().setCompareAndSet(cas("a").setNewValue(bs("x"))),
              Entry.newBuilder()
                  .setCompareAndSet(cas("a").setExpectAbsent(false).setNewValue(bs("x"))),
              batch(0, 8, opPut("a", "1"), BatchOp.newBuilder()),
              batch(0, 9, opPut("a", "1"), opPut("", "2")));

      for (Response reply : replies) {
        assertEquals(Status.INVALID, reply.getStatus(), reply.toString());
        assertFalse(reply.getError().isEmpty());
      }
      assertEquals(5, replies.get(0).getRequestId());
      assertEquals(1, replies.get(5).getFailedIndex());
      assertEquals(1, replies.get(6).getFailedIndex());
      assertEquals(7, sm.applied());
      assertNotEquals(0, sm.checksum());
      assertEquals(0, scan("", "", 0).getKvsCount());
    }

    @Test
    void shouldRefuseEntriesThatDoNotFollowTheAppliedOp() {
      apply1(put(0, 1, "a", "1"));
      long checksum = sm.checksum();

      assertThrows(
          IllegalStateException.class,
          () -> sm.apply(entriesFrom(3, put(0, 2, "a", "gap")), true));
      assertThrows(
          IllegalStateException.class,
          () -> sm.apply(entriesFrom(1, put(0, 2, "a", "again")), true));
      List<Entry> holey = new ArrayList<>(entriesFrom(2, put(0, 2, "a", "x")));
      holey.addAll(entriesFrom(4, put(0, 3, "a", "y")));
      assertThrows(IllegalStateException.class, () -> sm.apply(holey, true));

      assertEquals(1, sm.applied());
      assertEquals(checksum, sm.checksum());
      assertEquals("1", get("a").getValue().toStringUtf8());
      assertEquals(List.of(), sm.apply(List.of(), true));
    }

    // ---- checksum and durability ----

    @Test
    void shouldComputeTheChecksumAsDocumented() throws Exception {
      List<Entry> entries = entries(register(1, 1), put(1, 2, "a", "1"), del(0, 0, "a"));

      sm.apply(entries, true);

      long expected = 0;
      for (Entry entry : entries) {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        sha.update(Bytes.longToBytes(expected));
        sha.update(entry.toByteArray());
        long next = Bytes.getLong(sha.digest(), 0);
        assertEquals(next, KvStateMachine.nextChecksum(expected, entry));
        assertEquals(next, KvStateMachine.nextChecksum(expected, entry.toByteString()));
        expected = next;
      }
      assertEquals(expected, sm.checksum());
      assertEquals(new KvStateMachine.AppliedState(3, expected), sm.appliedState());
    }

    @Test
    void shouldHashExactlyTheStoredBytesOfEachEntry() throws Exception {
      Entry entry = entries(put(0, 0, "a", "1")).get(0);
      // The same entry, stored in a form this code does not write: view 7 first, then overridden by
      // the view 1 inside (protobuf keeps the last value of a repeated scalar field).
      ByteString stored = ByteString.copyFrom(new byte[] {0x10, 0x07}).concat(entry.toByteString());
      assertEquals(entry, Entry.parseFrom(stored));
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update(Bytes.longToBytes(0));
      sha.update(stored.toByteArray());
      long overStored = Bytes.getLong(sha.digest(), 0);
      KvStateMachine reserialized = another(MAX_SESSIONS, MAX_REPLIES);

      sm.apply(List.of(entry), List.of(stored), true);
      reserialized.apply(List.of(entry), true);

      assertEquals(overStored, KvStateMachine.nextChecksum(0, stored));
      assertEquals(overStored, sm.checksum());
      assertEquals(KvStateMachine.nextChecksum(0, entry), reserialized.checksum());
      assertNotEquals(sm.checksum(), reserialized.checksum());
      assertEquals("1", get("a").getValue().toStringUtf8());
      assertThrows(
          IllegalArgumentException.class,
          () -> sm.apply(entries(noop(), noop()), List.of(ByteString.EMPTY), true));
    }

    @Test
    void shouldGiveEqualChecksumsForEqualEntriesAndDifferentOnesOtherwise() {
      KvStateMachine twin = another(MAX_SESSIONS, MAX_REPLIES);
      KvStateMachine other = another(MAX_SESSIONS, MAX_REPLIES);
      List<Entry> entries = entries(put(1, 1, "a", "1"), put(2, 1, "b", "2"), del(1, 2, "a"));

      sm.apply(entries, true);
      twin.apply(entries.subList(0, 1), false);
      twin.apply(entries.subList(1, 3), true);
      other.apply(entriesFrom(1, put(1, 1, "a", "1"), put(2, 1, "b", "2"), del(1, 2, "b")), true);

      assertEquals(sm.appliedState(), twin.appliedState());
      assertEquals(3, other.applied());
      assertNotEquals(sm.checksum(), other.checksum());
    }

    @Test
    void shouldWriteDataAppliedChecksumAndClientRowsInOneWriteSet() {
      CountingStorage counting = new CountingStorage(storage);
      KvStateMachine counted = new KvStateMachine(counting, MAX_SESSIONS, MAX_REPLIES);
      counted.load();

      counted.apply(
          entriesFrom(
              1, register(1, 1), register(2, 1), put(1, 2, "a", "1"), put(2, 2, "b", "2"), noop()),
          false);

      assertEquals(1, counting.writes);
      assertFalse(counting.lastSync);
      assertArrayEquals(Bytes.longToBytes(5), storage.getMeta(bytes(KvStateMachine.APPLIED_KEY)));
      assertArrayEquals(
          Bytes.longToBytes(counted.checksum()), storage.getMeta(bytes(KvStateMachine.CHECKSUM_KEY)));
      ClientRecord row = counted.clientRecord(2);
      assertArrayEquals(
          row.toBuilder().clearReplies().build().toByteArray(),
          storage.getMeta(TransferRows.clientKey(2)));
      assertArrayEquals(
          row.getReplies(0).toByteArray(), storage.getMeta(ClientRows.replyKey(2, 2)));
      assertEquals(4, storage.scanMeta(bytes(KvStateMachine.CLIENT_PREFIX)).size());
    }

    @Test
    void shouldRestoreAppliedChecksumAndClientTableOnLoad() {
      apply(
          register(1, 1),
          register(2, 1),
          put(1, 2, "a", "1"),
          put(2, 2, "b", "2"),
          casValue(1, 3, "a", "1", "3"),
          noop());
      KvStateMachine.AppliedState before = sm.appliedState();
      ClientRecord row1 = sm.clientRecord(1);
      ClientRecord row2 = sm.clientRecord(2);

      storage = reopen(storage);
      sm = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
      sm.load();

      assertEquals(before, sm.appliedState());
      assertEquals(row1, sm.clientRecord(1));
      assertEquals(row2, sm.clientRecord(2));
      assertEquals(2, sm.clientCount());
      Response retried = apply1(casValue(1, 3, "a", "1", "3"));
      assertEquals(row1.getReplies(1).getReply(), retried);
      assertEquals("3", get("a").getValue().toStringUtf8());
    }

    @Test
    void shouldRebuildTheExpiryOrderOnLoad() {
      apply(
          register(1, 1).setTimeMs(0),
          register(2, 1).setTimeMs(500),
          register(3, 1).setTimeMs(1_000));

      storage = reopen(storage);
      sm = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
      sm.load();
      apply1(noop().setTimeMs(SESSION_TIMEOUT_MS + 501)); // 0 + 1000 and 500 + 1000 are below 1501

      assertNull(sm.clientRecord(1));
      assertNull(sm.clientRecord(2));
      assertNotNull(sm.clientRecord(3));
      assertEquals(List.of(hex(TransferRows.clientKey(3))), metaKeys(storage));
    }

    // ---- client table layout ----

    @Test
    void shouldStoreOneHeaderRowPerSessionAndOneRowPerSavedReply() throws Exception {
      apply(register(1, 1).setTimeMs(7), put(1, 2, "a", "1"), put(1, 3, "b", "2"));

      assertEquals(
          List.of(
              hex(TransferRows.clientKey(1)),
              hex(ClientRows.replyKey(1, 2)),
              hex(ClientRows.replyKey(1, 3))),
          metaKeys(storage));
      ClientRecord header = ClientRecord.parseFrom(storage.getMeta(TransferRows.clientKey(1)));
      assertEquals(0, header.getRepliesCount());
      assertEquals(3, header.getLastOp());
      assertEquals(7, header.getLastActiveMs());
      assertEquals(SESSION_TIMEOUT_MS, header.getTimeoutMs());
      assertEquals(1, header.getFirstIncomplete());

      apply1(put(1, 4, "c", "3").setFirstIncomplete(3)); // request 2's reply is forgotten
      assertEquals(
          List.of(
              hex(TransferRows.clientKey(1)),
              hex(ClientRows.replyKey(1, 3)),
              hex(ClientRows.replyKey(1, 4))),
          metaKeys(storage));

      apply1(close(1, 5));
      assertEquals(List.of(), metaKeys(storage));
    }

    @Test
    void shouldReadTheClientTableOfASnapshotAsSelfContainedRecords() {
      apply(
          register(20, 1), // session 1
          register(10, 1), // session 2
          put(1, 2, "a", "1"),
          put(2, 2, "b", "2"),
          put(2, 3, "c", "3"));

      List<ClientRecord> table;
      try (StorageSnapshot snapshot = storage.snapshot()) {
        apply1(put(1, 3, "d", "after the snapshot"));
        table = TransferRows.clientTable(snapshot);
      }

      assertEquals(2, table.size());
      assertEquals(1, table.get(0).getClientId());
      assertEquals(List.of(2L), requestIds(table.get(0)));
      assertEquals(sm.clientRecord(2), table.get(1));
      assertEquals(List.of(2L, 3L), requestIds(table.get(1)));
    }

    @Test
    void shouldRefuseToLoadAnOrphanOrMalformedClientTableRow() {
      SavedReply reply =
          SavedReply.newBuilder().setRequestId(1).setReply(Response.getDefaultInstance()).build();
      ClientRecord header = ClientRecord.newBuilder().setClientId(5).build();
      Map<String, WriteSet> broken = new LinkedHashMap<>();
      broken.put(
          "orphan", new WriteSet().putMeta(ClientRows.replyKey(5, 1), reply.toByteArray()));
      broken.put(
          "neither a header",
          new WriteSet().putMeta(bytes(KvStateMachine.CLIENT_PREFIX + "abc"), new byte[0]));
      broken.put(
          "corrupt client table row client/5",
          new WriteSet().putMeta(TransferRows.clientKey(5), new byte[] {(byte) 0xFF}));
      broken.put(
          "holds client 5",
          new WriteSet().putMeta(TransferRows.clientKey(6), header.toByteArray()));
      broken.put(
          "holds the reply of request 1",
          new WriteSet()
              .putMeta(TransferRows.clientKey(5), header.toByteArray())
              .putMeta(ClientRows.replyKey(5, 2), reply.toByteArray()));

      for (Map.Entry<String, WriteSet> row : broken.entrySet()) {
        Storage other = newStorage();
        extra.add(other);
        other.write(row.getValue(), true);
        KvStateMachine machine = new KvStateMachine(other, MAX_SESSIONS, MAX_REPLIES);

        StorageException e = assertThrows(StorageException.class, machine::load, row.getKey());
        assertTrue(e.getMessage().contains(row.getKey()), e.getMessage());
      }
    }

    @Test
    void shouldReadAHeaderWithEmbeddedRepliesAndRewriteItOneRowPerReply() {
      SavedReply reply =
          SavedReply.newBuilder()
              .setRequestId(4)
              .setOp(9)
              .setReply(Response.newBuilder().setRequestId(4).setOp(9))
              .build();
      ClientRecord legacy =
          ClientRecord.newBuilder()
              .setClientId(3)
              .setFirstIncomplete(4)
              .setLastOp(9)
              .setTimeoutMs(SESSION_TIMEOUT_MS)
              .addReplies(reply)
              .build();
      storage.write(new WriteSet().putMeta(TransferRows.clientKey(3), legacy.toByteArray()), true);

      sm.load();

      assertEquals(legacy, sm.clientRecord(3));
      assertArrayEquals(
          legacy.toBuilder().clearReplies().build().toByteArray(),
          storage.getMeta(TransferRows.clientKey(3)));
      assertArrayEquals(reply.toByteArray(), storage.getMeta(ClientRows.replyKey(3, 4)));
      assertEquals(reply.getReply(), apply1(put(3, 4, "a", "retried")));
    }

    // ---- client table ----

    @Test
    void shouldAnswerARetryWithTheSavedReplyWithoutExecutingItAgain() {
      apply(register(1, 1), register(2, 1));
      Response first = apply1(put(1, 2, "k", "from client 1"));
      apply1(put(2, 2, "k", "from client 2"));

      Response retried = apply1(put(1, 2, "k", "from client 1"));

      assertEquals(first, retried);
      assertEquals(3, retried.getVersion());
      Response got = get("k");
      assertEquals("from client 2", got.getValue().toStringUtf8());
      assertEquals(4, got.getVersion());
      assertEquals(5, sm.applied());
      assertEquals(5, sm.clientRecord(1).getLastOp(), "a retry is activity: last_op moves");
      assertEquals(List.of(2L), requestIds(sm.clientRecord(1)));
    }

    @Test
    void shouldAnswerARetryInTheSameApplyCallWithTheSavedReply() {
      List<Response> replies =
          apply(register(1, 1), del(1, 2, "k"), put(1, 3, "k", "v"), del(1, 2, "k"));

      assertEquals(replies.get(1), replies.get(3));
      assertEquals(Status.OK, get("k").getStatus());
    }

    @Test
    void shouldRefuseARequestBelowFirstIncomplete() {
      apply(register(1, 1), put(1, 2, "a", "1"));
      apply1(put(1, 3, "b", "2").setFirstIncomplete(3));

      Response refused = apply1(put(1, 2, "a", "again"));

      assertEquals(Status.INVALID, refused.getStatus());
      assertTrue(refused.getError().contains("already acknowledged"), refused.getError());
      assertEquals(2, refused.getRequestId());
      assertEquals(2, get("a").getVersion());
      assertEquals(3, sm.clientRecord(1).getFirstIncomplete());
      assertEquals(List.of(3L), requestIds(sm.clientRecord(1)));
    }

    @Test
    void shouldKeepAtMostMaxRepliesAndRefuseRetriesOfForgottenOnes() {
      apply1(register(1, 1));
      for (int request = 2; request <= MAX_REPLIES + 2; request++) {
        apply1(put(1, request, "k" + request, "v"));
      }
      ClientRecord row = sm.clientRecord(1);

      assertEquals(List.of(3L, 4L, 5L), requestIds(row));
      assertEquals(3, row.getFirstIncomplete());
      assertEquals(Status.INVALID, apply1(put(1, 2, "k2", "again")).getStatus());
      assertEquals(4, apply1(put(1, 4, "k4", "v")).getVersion());
    }

    @Test
    void shouldExecuteALateRequestAboveFirstIncompleteAndKeepRepliesInRequestOrder() {
      apply(register(1, 1), put(1, 4, "c", "3"), put(1, 3, "b", "2"));

      assertEquals(List.of(3L, 4L), requestIds(sm.clientRecord(1)));
      assertEquals(3, get("b").getVersion());
    }

    @Test
    void shouldSaveNothingForClientZero() {
      apply1(put(0, 1, "a", "1"));
      Response again = apply1(put(0, 1, "a", "2"));

      assertEquals(Status.OK, again.getStatus());
      assertEquals(2, get("a").getVersion());
      assertNull(sm.clientRecord(0));
      assertEquals(0, sm.clientCount());
    }

    @Test
    void shouldGiveTheSameRepliesChecksumAndClientTableWhateverTheGrouping() {
      long seed = Long.getLong("choir.test.seed", System.nanoTime());
      System.out.println("grouping test seed=" + seed + " (replay: -Dchoir.test.seed=" + seed + ")");
      Random random = new Random(seed);
      List<Entry> entries = randomEntries(random, 400, 3);
      KvStateMachine whole = another(MAX_SESSIONS, 3);
      KvStateMachine grouped = another(MAX_SESSIONS, 3);

      List<Response> wholeReplies = whole.apply(entries, true);
      List<Response> groupedReplies = new ArrayList<>();
      for (int from = 0; from < entries.size(); ) {
        int to = Math.min(entries.size(), from + 1 + random.nextInt(20));
        groupedReplies.addAll(grouped.apply(entries.subList(from, to), random.nextBoolean()));
        from = to;
      }

      String replay = "replay with -Dchoir.test.seed=" + seed;
      assertEquals(wholeReplies, groupedReplies, replay);
      assertEquals(whole.appliedState(), grouped.appliedState(), replay);
      for (long session : sessionIds(entries)) {
        assertEquals(whole.clientRecord(session), grouped.clientRecord(session), replay);
      }
      assertEquals(whole.clientCount(), grouped.clientCount(), replay);
      assertTrue(whole.clientCount() <= 3, replay);
      Map<Status, Long> seen = new EnumMap<>(Status.class);
      wholeReplies.forEach(r -> seen.merge(r.getStatus(), 1L, Long::sum));
      System.out.println("grouping test statuses " + seen);
      Request all = Request.newBuilder().setScan(Scan.getDefaultInstance()).build();
      assertEquals(whole.read(all, 100).getKvsList(), grouped.read(all, 100).getKvsList(), replay);
    }

    @Test
    void shouldContinueIdenticallyAfterARestartAnywhere() {
      long seed = Long.getLong("choir.test.seed", System.nanoTime());
      System.out.println("restart test seed=" + seed + " (replay: -Dchoir.test.seed=" + seed + ")");
      Random random = new Random(seed);
      List<Entry> entries = randomEntries(random, 300, 3);
      KvStateMachine never = another(MAX_SESSIONS, 3);
      List<Response> expected = never.apply(entries, true);
      sm = new KvStateMachine(storage, MAX_SESSIONS, 3);
      sm.load();

      List<Response> replies = new ArrayList<>();
      for (int from = 0; from < entries.size(); ) {
        int to = Math.min(entries.size(), from + 1 + random.nextInt(30));
        replies.addAll(sm.apply(entries.subList(from, to), true));
        storage = reopen(storage);
        sm = new KvStateMachine(storage, MAX_SESSIONS, 3);
        sm.load();
        from = to;
      }

      String replay = "replay with -Dchoir.test.seed=" + seed;
      assertEquals(expected, replies, replay);
      assertEquals(never.appliedState(), sm.appliedState(), replay);
      for (long session : sessionIds(entries)) {
        assertEquals(never.clientRecord(session), sm.clientRecord(session), replay);
      }
    }

    // ---- reads ----

    @Test
    void shouldLimitScansAndSayWhenMoreKeysExist() {
      apply(
          put(0, 1, "a", "1"),
          put(0, 2, "b", "2"),
          put(0, 3, "c", "3"),
          put(0, 4, "d", "4"),
          put(0, 5, "e", "5"));

      Response two = scan("", "", 2);
      assertEquals(List.of("a", "b"), keys(two.getKvsList()));
      assertTrue(two.getMore());
      assertEquals(5, two.getOp());
      assertEquals(2, two.getKvs(1).getVersion());

      Response byDefault = scan("", "", 0);
      assertEquals(List.of("a", "b", "c"), keys(byDefault.getKvsList()));
      assertTrue(byDefault.getMore());

      Response capped = scan("b", "", 10);
      assertEquals(List.of("b", "c", "d"), keys(capped.getKvsList()));
      assertTrue(capped.getMore());

      Response range = scan("b", "d", 0);
      assertEquals(List.of("b", "c"), keys(range.getKvsList()));
      assertFalse(range.getMore());

      Response exact = scan("c", "", 3);
      assertEquals(List.of("c", "d", "e"), keys(exact.getKvsList()));
      assertFalse(exact.getMore());
    }

    @Test
    void shouldBoundAScanReplyInBytesAndLetTheClientContinue() {
      // Issue 10: a scan over large values used to be bounded by pairs only (10,000 of 1 MiB each).
      String kib = "x".repeat(1000);
      apply(put(0, 1, "a", kib), put(0, 2, "b", kib), put(0, 3, "c", kib), put(0, 4, "d", "small"));
      long twoPairs = 2 * (1 + 1000 + 32);

      Response first = scanBytes("", 10, twoPairs + 10);
      assertEquals(List.of("a", "b"), keys(first.getKvsList()), "the third pair would cross the bound");
      assertTrue(first.getMore(), "cut by bytes, so more");

      Response rest = scanBytes("b\0", 10, twoPairs + 10);
      assertEquals(List.of("c", "d"), keys(rest.getKvsList()));
      assertFalse(rest.getMore());

      Response alone = scanBytes("", 10, 100);
      assertEquals(List.of("a"), keys(alone.getKvsList()), "a first pair is always returned");
      assertTrue(alone.getMore());

      Response unbounded = scan("", "", 10);
      assertEquals(List.of("a", "b", "c"), keys(unbounded.getKvsList()), "MAX_SCAN pairs, no byte bound");
    }

    private Response scanBytes(String start, int limit, long maxBytes) {
      return sm.read(Request.newBuilder().setRequestId(97)
          .setScan(Scan.newBuilder().setStartKey(ByteString.copyFromUtf8(start)).setLimit(limit)).build(),
          MAX_SCAN + 10, maxBytes);
    }

    @Test
    void shouldAnswerInvalidToWritesAndEmptyKeysOnTheReadPath() {
      Request put =
          Request.newBuilder()
              .setRequestId(4)
              .setPut(Put.newBuilder().setKey(bs("a")).setValue(bs("1")))
              .build();

      Response reply = sm.read(put, MAX_SCAN);

      assertEquals(Status.INVALID, reply.getStatus());
      assertEquals(4, reply.getRequestId());
      assertEquals(Status.INVALID, get("").getStatus());
      assertEquals(Status.NOT_FOUND, get("a").getStatus());
    }
  }

  // ---- entry builders (op is set when applied) ----

  static List<Entry> entriesFrom(long firstOp, Entry.Builder... commands) {
    List<Entry> out = new ArrayList<>();
    for (int i = 0; i < commands.length; i++) {
      out.add(commands[i].clone().setOp(firstOp + i).setView(1).build());
    }
    return out;
  }

  static Entry.Builder session(long client, long request) {
    return Entry.newBuilder()
        .setClientId(client)
        .setRequestId(request)
        .setFirstIncomplete(client == 0 ? 0 : 1);
  }

  static Entry.Builder put(long client, long request, String key, String value) {
    return session(client, request).setPut(Put.newBuilder().setKey(bs(key)).setValue(bs(value)));
  }

  static Entry.Builder del(long client, long request, String key) {
    return session(client, request).setDelete(Delete.newBuilder().setKey(bs(key)));
  }

  static Entry.Builder casValue(
      long client, long request, String key, String expected, String value) {
    return session(client, request)
        .setCompareAndSet(cas(key).setExpectedValue(bs(expected)).setNewValue(bs(value)));
  }

  static Entry.Builder casVersion(
      long client, long request, String key, long expected, String value) {
    return session(client, request)
        .setCompareAndSet(cas(key).setExpectedVersion(expected).setNewValue(bs(value)));
  }

  static Entry.Builder casAbsent(long client, long request, String key, String value) {
    return session(client, request)
        .setCompareAndSet(cas(key).setExpectAbsent(true).setNewValue(bs(value)));
  }

  static Entry.Builder batch(long client, long request, BatchOp.Builder... ops) {
    Batch.Builder batch = Batch.newBuilder();
    for (BatchOp.Builder op : ops) {
      batch.addOps(op);
    }
    return session(client, request).setBatch(batch);
  }

  static Entry.Builder noop() {
    return Entry.newBuilder().setNoop(Noop.getDefaultInstance());
  }

  static CompareAndSet.Builder cas(String key) {
    return CompareAndSet.newBuilder().setKey(bs(key));
  }

  static BatchOp.Builder opPut(String key, String value) {
    return BatchOp.newBuilder().setPut(Put.newBuilder().setKey(bs(key)).setValue(bs(value)));
  }

  static BatchOp.Builder opDelete(String key) {
    return BatchOp.newBuilder().setDelete(Delete.newBuilder().setKey(bs(key)));
  }

  static BatchOp.Builder opCas(CompareAndSet.Builder cas) {
    return BatchOp.newBuilder().setCompareAndSet(cas);
  }

  static ByteString bs(String text) {
    return ByteString.copyFromUtf8(text);
  }

  static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  static List<String> keys(List<KeyValue> kvs) {
    return kvs.stream().map(kv -> kv.getKey().toStringUtf8()).toList();
  }

  static List<Long> requestIds(ClientRecord row) {
    return row.getRepliesList().stream().map(SavedReply::getRequestId).toList();
  }

  /**
   * Random entries from RANDOM_CLIENTS session clients and client 0 over four keys, as clients of
   * server-assigned sessions send them: a client registers under its instance id (1000 + c; some
   * registrations are refused, maxSessions being the table bound) and then writes under the id of
   * its latest registration, which is that entry's op (before its first one, under an id no
   * registration ever had); it closes its session now and then. Every command kind, invalid ones,
   * retries and late copies of earlier requests (also of registrations, which open a session of
   * their own, and of writes of older sessions), rising first_incomplete values, and a replicated
   * clock that mostly creeps, sometimes jumps past the session timeout (expiring sessions) and
   * rarely steps back.
   */
  static List<Entry> randomEntries(Random random, int count, int maxSessions) {
    String[] keys = {"a", "b", "c", "d"};
    Map<Long, Long> nextRequest = new HashMap<>();
    Map<Long, Long> firstIncomplete = new HashMap<>();
    Map<Long, Long> sessionOf = new HashMap<>();
    Map<Long, List<Entry.Builder>> sent = new HashMap<>();
    List<Entry> out = new ArrayList<>();
    long timeMs = 0;
    for (int op = 1; op <= count; op++) {
      int clock = random.nextInt(100);
      if (clock < 1) {
        timeMs += SESSION_TIMEOUT_MS + random.nextInt((int) SESSION_TIMEOUT_MS);
      } else if (clock < 2) {
        timeMs = Math.max(0, timeMs - random.nextInt(300));
      } else {
        timeMs += random.nextInt(40);
      }
      long client = random.nextInt(RANDOM_CLIENTS + 1);
      List<Entry.Builder> history = sent.computeIfAbsent(client, c -> new ArrayList<>());
      Entry.Builder command;
      if (client != 0 && !history.isEmpty() && random.nextInt(5) == 0) {
        // A retry, mostly of a recent request (which may still have its saved reply).
        int back = 1 + random.nextInt(Math.min(history.size(), 4));
        command = history.get(history.size() - back).clone();
      } else {
        long request = nextRequest.merge(client, 1L, Long::sum);
        long session = client == 0 ? 0 : sessionOf.getOrDefault(client, (1L << 40) + client);
        String key = keys[random.nextInt(keys.length)];
        // Without a session a client mostly registers first; with one, it rarely registers again.
        boolean hasSession = sessionOf.containsKey(client);
        int kind = random.nextInt(client == 0 ? 8 : 10);
        if (client != 0 && !hasSession && random.nextInt(4) != 0) {
          kind = 8;
        } else if (kind == 8 && hasSession && random.nextInt(4) != 0) {
          kind = 0;
        }
        command =
            switch (kind) {
              case 0 -> put(session, request, key, "v" + op);
              case 1 -> del(session, request, key);
              case 2 -> casValue(session, request, key, "v" + random.nextInt(op), "v" + op);
              case 3 -> casVersion(session, request, key, random.nextInt(op), "v" + op);
              case 4 -> casAbsent(session, request, key, "v" + op);
              case 5 ->
                  batch(
                      session,
                      request,
                      opPut(key, "v" + op),
                      opCas(
                          cas(keys[random.nextInt(keys.length)])
                              .setExpectAbsent(true)
                              .setNewValue(bs("b" + op))),
                      opDelete(keys[random.nextInt(keys.length)]));
              case 6 -> put(session, request, "", "invalid");
              case 7 -> noop().setClientId(session).setRequestId(request);
              case 8 -> {
                sessionOf.put(client, (long) op);
                yield register(1000 + client, request, maxSessions);
              }
              default -> {
                sessionOf.remove(client);
                yield close(session, request);
              }
            };
        if (client != 0) {
          long previous = firstIncomplete.getOrDefault(client, 1L);
          firstIncomplete.put(client, Math.max(previous, request - random.nextInt(4)));
          command.setFirstIncomplete(firstIncomplete.get(client));
        }
        history.add(command);
      }
      out.add(command.clone().setOp(op).setView(1).setTimeMs(timeMs).build());
    }
    return out;
  }

  /** The ids of every session entries may open: the ops of their registrations. */
  static List<Long> sessionIds(List<Entry> entries) {
    return entries.stream().filter(Entry::hasRegisterSession).map(Entry::getOp).toList();
  }

  /** The client table's row keys in storage, in key order, as hex. */
  static List<String> metaKeys(Storage storage) {
    return storage.scanMeta(bytes(KvStateMachine.CLIENT_PREFIX)).stream()
        .map(row -> hex(row.getKey()))
        .toList();
  }

  static String hex(byte[] bytes) {
    return HexFormat.of().formatHex(bytes);
  }

  /** CountingStorage counts the write sets written through it. */
  static final class CountingStorage extends ForwardingStorage {
    int writes;
    boolean lastSync;

    CountingStorage(Storage delegate) {
      super(delegate);
    }

    @Override
    public void write(WriteSet set, boolean sync) {
      writes++;
      lastSync = sync;
      delegate.write(set, sync);
    }

    @Override
    public void close() {
      // The test closes the delegate.
    }
  }
}
