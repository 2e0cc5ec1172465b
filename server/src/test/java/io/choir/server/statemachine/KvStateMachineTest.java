package io.choir.server.statemachine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
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
 * storages: the same cases run on the in-memory twin and on RocksDB.
 */
class KvStateMachineTest {
  static final int MAX_SCAN = 3;
  static final int MAX_SESSIONS = 4;
  static final int MAX_REPLIES = 3;

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
      sm.apply(entries(put(1, 1, "a", "1"), put(2, 1, "b", "2")), false);

      storage = ((MemoryStorage) storage).crash();
      KvStateMachine restarted = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
      restarted.load();

      assertEquals(0, restarted.applied());
      assertEquals(0, restarted.checksum());
      assertNull(restarted.clientRecord(1));
      assertNull(storage.get(bytes("a")));

      restarted.apply(entriesFrom(1, put(1, 1, "a", "1")), true);
      long checksum = restarted.checksum();
      storage = ((MemoryStorage) storage).crash();
      KvStateMachine again = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
      again.load();

      assertEquals(1, again.applied());
      assertEquals(checksum, again.checksum());
      assertEquals(1, again.clientRecord(1).getRepliesCount());
      assertEquals(1, storage.get(bytes("a")).version());
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
      Response put = apply1(put(1, 1, "a", "one"));

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
      apply1(put(1, 1, "a", "one"));

      Response first = apply1(del(1, 2, "a"));
      Response second = apply1(del(1, 3, "a"));

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
      apply1(put(1, 1, "a", "one"));

      Response swapped = apply1(casValue(1, 2, "a", "one", "two"));
      Response stale = apply1(casValue(1, 3, "a", "one", "three"));
      Response absent = apply1(casValue(1, 4, "b", "one", "three"));

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
      apply1(put(1, 1, "a", "one"));

      Response swapped = apply1(casVersion(1, 2, "a", 1, "two"));
      Response stale = apply1(casVersion(1, 3, "a", 1, "three"));
      Response created = apply1(casVersion(1, 4, "b", 0, "new"));

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
      Response created = apply1(casAbsent(1, 1, "a", "one"));
      Response refused = apply1(casAbsent(1, 2, "a", "two"));

      assertEquals(Status.OK, created.getStatus());
      assertEquals(1, created.getVersion());
      assertEquals(Status.CAS_FAILED, refused.getStatus());
      assertEquals("one", refused.getValue().toStringUtf8());
      assertEquals(1, refused.getVersion());
      assertEquals("one", get("a").getValue().toStringUtf8());
    }

    @Test
    void shouldLetLaterBatchOpsSeeEarlierOnes() {
      apply1(put(1, 1, "b", "old"));

      Response batch =
          apply1(
              batch(
                  1,
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
      apply(put(1, 1, "b", "keep"), put(1, 2, "c", "c0"));

      Response batch =
          apply1(
              batch(
                  1,
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
      apply1(put(1, 1, "a", "old"));

      Response batch =
          apply1(
              batch(
                  1,
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
              put(1, 1, "a", "1"),
              casValue(1, 2, "a", "1", "2"),
              del(1, 3, "a"),
              del(1, 4, "a"),
              casAbsent(1, 5, "a", "back"));

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
      apply1(put(1, 1, "a", "1"));
      long checksum = sm.checksum();

      assertThrows(
          IllegalStateException.class,
          () -> sm.apply(entriesFrom(3, put(1, 2, "a", "gap")), true));
      assertThrows(
          IllegalStateException.class,
          () -> sm.apply(entriesFrom(1, put(1, 2, "a", "again")), true));
      List<Entry> holey = new ArrayList<>(entriesFrom(2, put(1, 2, "a", "x")));
      holey.addAll(entriesFrom(4, put(1, 3, "a", "y")));
      assertThrows(IllegalStateException.class, () -> sm.apply(holey, true));

      assertEquals(1, sm.applied());
      assertEquals(checksum, sm.checksum());
      assertEquals("1", get("a").getValue().toStringUtf8());
      assertEquals(List.of(), sm.apply(List.of(), true));
    }

    // ---- checksum and durability ----

    @Test
    void shouldComputeTheChecksumAsDocumented() throws Exception {
      List<Entry> entries = entries(put(1, 1, "a", "1"), del(2, 1, "a"));

      sm.apply(entries, true);

      long expected = 0;
      for (Entry entry : entries) {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        sha.update(Bytes.longToBytes(expected));
        sha.update(entry.toByteArray());
        long next = Bytes.getLong(sha.digest(), 0);
        assertEquals(next, KvStateMachine.nextChecksum(expected, entry));
        expected = next;
      }
      assertEquals(expected, sm.checksum());
      assertEquals(new KvStateMachine.AppliedState(2, expected), sm.appliedState());
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

      counted.apply(entriesFrom(1, put(1, 1, "a", "1"), put(2, 1, "b", "2"), noop()), false);

      assertEquals(1, counting.writes);
      assertFalse(counting.lastSync);
      assertArrayEquals(Bytes.longToBytes(3), storage.getMeta(bytes(KvStateMachine.APPLIED_KEY)));
      assertArrayEquals(
          Bytes.longToBytes(counted.checksum()), storage.getMeta(bytes(KvStateMachine.CHECKSUM_KEY)));
      assertArrayEquals(
          counted.clientRecord(2).toByteArray(), storage.getMeta(KvStateMachine.clientKey(2)));
      assertEquals(2, storage.scanMeta(bytes(KvStateMachine.CLIENT_PREFIX)).size());
    }

    @Test
    void shouldRestoreAppliedChecksumAndClientTableOnLoad() {
      apply(put(1, 1, "a", "1"), put(2, 1, "b", "2"), casValue(1, 2, "a", "1", "3"), noop());
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
      Response retried = apply1(casValue(1, 2, "a", "1", "3"));
      assertEquals(row1.getReplies(1).getReply(), retried);
      assertEquals("3", get("a").getValue().toStringUtf8());
    }

    // ---- client table ----

    @Test
    void shouldAnswerARetryWithTheSavedReplyWithoutExecutingItAgain() {
      Response first = apply1(put(1, 1, "k", "from client 1"));
      apply1(put(2, 1, "k", "from client 2"));

      Response retried = apply1(put(1, 1, "k", "from client 1"));

      assertEquals(first, retried);
      assertEquals(1, retried.getVersion());
      Response got = get("k");
      assertEquals("from client 2", got.getValue().toStringUtf8());
      assertEquals(2, got.getVersion());
      assertEquals(3, sm.applied());
      assertEquals(1, sm.clientRecord(1).getLastOp(), "a retry does not change the row");
    }

    @Test
    void shouldAnswerARetryInTheSameApplyCallWithTheSavedReply() {
      List<Response> replies = apply(del(1, 1, "k"), put(1, 2, "k", "v"), del(1, 1, "k"));

      assertEquals(replies.get(0), replies.get(2));
      assertEquals(Status.OK, get("k").getStatus());
    }

    @Test
    void shouldRefuseARequestBelowFirstIncomplete() {
      apply1(put(1, 1, "a", "1"));
      apply1(put(1, 2, "b", "2").setFirstIncomplete(2));

      Response refused = apply1(put(1, 1, "a", "again"));

      assertEquals(Status.INVALID, refused.getStatus());
      assertTrue(refused.getError().contains("already acknowledged"), refused.getError());
      assertEquals(1, refused.getRequestId());
      assertEquals(1, get("a").getVersion());
      assertEquals(2, sm.clientRecord(1).getFirstIncomplete());
      assertEquals(List.of(2L), requestIds(sm.clientRecord(1)));
    }

    @Test
    void shouldKeepAtMostMaxRepliesAndRefuseRetriesOfForgottenOnes() {
      for (int request = 1; request <= MAX_REPLIES + 1; request++) {
        apply1(put(1, request, "k" + request, "v"));
      }
      ClientRecord row = sm.clientRecord(1);

      assertEquals(List.of(2L, 3L, 4L), requestIds(row));
      assertEquals(2, row.getFirstIncomplete());
      assertEquals(Status.INVALID, apply1(put(1, 1, "k1", "again")).getStatus());
      assertEquals(3, apply1(put(1, 3, "k3", "v")).getVersion());
    }

    @Test
    void shouldExecuteALateRequestAboveFirstIncompleteAndKeepRepliesInRequestOrder() {
      apply(put(1, 3, "c", "3"), put(1, 2, "b", "2"));

      assertEquals(List.of(2L, 3L), requestIds(sm.clientRecord(1)));
      assertEquals(2, get("b").getVersion());
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
    void shouldEvictTheRowWithTheLowestLastOpFirst() {
      sm = another(2, MAX_REPLIES);
      Storage own = extra.get(extra.size() - 1);

      apply(put(1, 1, "a", "1"), put(2, 1, "a", "2"), put(3, 1, "a", "3"));
      assertNull(sm.clientRecord(1));
      assertEquals(2, sm.clientCount());

      apply(put(2, 2, "a", "4"), put(4, 1, "a", "5"));
      assertNull(sm.clientRecord(3), "client 3 had the lowest last op");
      assertEquals(4, sm.clientRecord(2).getLastOp());
      assertEquals(5, sm.clientRecord(4).getLastOp());

      KvStateMachine reloaded = new KvStateMachine(own, 2, MAX_REPLIES);
      reloaded.load();
      assertEquals(2, reloaded.clientCount());
      assertNull(reloaded.clientRecord(1));
      assertNull(reloaded.clientRecord(3));
      assertEquals(sm.clientRecord(4), reloaded.clientRecord(4));
    }

    @Test
    void shouldGiveTheSameRepliesChecksumAndClientTableWhateverTheGrouping() {
      long seed = Long.getLong("choir.test.seed", System.nanoTime());
      System.out.println("grouping test seed=" + seed + " (replay: -Dchoir.test.seed=" + seed + ")");
      Random random = new Random(seed);
      List<Entry> entries = randomEntries(random, 300);
      KvStateMachine whole = another(3, 3);
      KvStateMachine grouped = another(3, 3);

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
      for (long client = 0; client <= 4; client++) {
        assertEquals(whole.clientRecord(client), grouped.clientRecord(client), replay);
      }
      assertTrue(whole.clientCount() <= 3, replay);
      Request all = Request.newBuilder().setScan(Scan.getDefaultInstance()).build();
      assertEquals(whole.read(all, 100).getKvsList(), grouped.read(all, 100).getKvsList(), replay);
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
   * Random entries from four session clients and client 0 over four keys: every command kind, invalid
   * ones, retries of earlier requests and rising first_incomplete values.
   */
  static List<Entry> randomEntries(Random random, int count) {
    String[] keys = {"a", "b", "c", "d"};
    Map<Long, Long> nextRequest = new HashMap<>();
    Map<Long, Long> firstIncomplete = new HashMap<>();
    Map<Long, List<Entry.Builder>> sent = new HashMap<>();
    List<Entry> out = new ArrayList<>();
    for (int op = 1; op <= count; op++) {
      long client = random.nextInt(5);
      List<Entry.Builder> history = sent.computeIfAbsent(client, c -> new ArrayList<>());
      Entry.Builder command;
      if (client != 0 && !history.isEmpty() && random.nextInt(5) == 0) {
        // A retry, mostly of a recent request (which may still have its saved reply).
        int back = 1 + random.nextInt(Math.min(history.size(), 4));
        command = history.get(history.size() - back).clone();
      } else {
        long request = nextRequest.merge(client, 1L, Long::sum);
        String key = keys[random.nextInt(keys.length)];
        command =
            switch (random.nextInt(8)) {
              case 0 -> put(client, request, key, "v" + op);
              case 1 -> del(client, request, key);
              case 2 -> casValue(client, request, key, "v" + random.nextInt(op), "v" + op);
              case 3 -> casVersion(client, request, key, random.nextInt(op), "v" + op);
              case 4 -> casAbsent(client, request, key, "v" + op);
              case 5 ->
                  batch(
                      client,
                      request,
                      opPut(key, "v" + op),
                      opCas(
                          cas(keys[random.nextInt(keys.length)])
                              .setExpectAbsent(true)
                              .setNewValue(bs("b" + op))),
                      opDelete(keys[random.nextInt(keys.length)]));
              case 6 -> put(client, request, "", "invalid");
              default -> noop().setClientId(client).setRequestId(request);
            };
        if (client != 0) {
          long previous = firstIncomplete.getOrDefault(client, 1L);
          firstIncomplete.put(client, Math.max(previous, request - random.nextInt(4)));
          command.setFirstIncomplete(firstIncomplete.get(client));
        }
        history.add(command);
      }
      out.add(command.clone().setOp(op).setView(1).build());
    }
    return out;
  }

  /** CountingStorage counts the write sets written through it. */
  static final class CountingStorage extends io.choir.server.storage.ForwardingStorage {
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
