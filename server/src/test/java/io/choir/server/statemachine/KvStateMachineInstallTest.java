package io.choir.server.statemachine;

import static io.choir.server.statemachine.KvStateMachineTest.bytes;
import static io.choir.server.statemachine.KvStateMachineTest.entriesFrom;
import static io.choir.server.statemachine.KvStateMachineTest.put;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.Entry;
import io.choir.proto.RegisterSession;
import io.choir.proto.Get;
import io.choir.proto.KeyValue;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.ForwardingStorage;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.StorageSnapshot;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * KvStateMachineInstallTest checks installing a state transfer through the state machine: the full
 * install equals the source, and a crash at any point of an install leaves either the old marker (so
 * load() wipes to the empty state and the replica fetches again) or the whole installed state, never a
 * partial snapshot taken for a state (DESIGN.md "Loss, repair and flow").
 */
class KvStateMachineInstallTest {
  static final int MAX_SESSIONS = 4;
  static final int MAX_REPLIES = 3;

  @TempDir Path tempDir;
  private final List<Storage> opened = new ArrayList<>();

  @AfterEach
  void closeAll() {
    opened.forEach(Storage::close);
  }

  private <S extends Storage> S track(S storage) {
    opened.add(storage);
    return storage;
  }

  private KvStateMachine loaded(Storage storage) {
    KvStateMachine sm = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
    sm.load();
    return sm;
  }

  /** A RegisterSession entry with a primary's terms: applied as op n, it opens session n. */
  private static Entry.Builder register(long client) {
    return KvStateMachineTest.session(client, 1)
        .setRegisterSession(
            RegisterSession.newBuilder().setTimeoutMs(60_000).setMaxSessions(MAX_SESSIONS));
  }

  /** A source at op 9: three sessions (replies saved), five keys (one overwritten, one deleted). */
  private static KvStateMachine source(Storage storage) {
    KvStateMachine sm = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
    sm.load();
    sm.apply(
        entriesFrom(
            1,
            register(1),
            register(2),
            register(3),
            put(1, 2, "a", "a1"),
            put(2, 2, "b", "b1"),
            put(1, 3, "c", "c1"),
            put(3, 2, "a", "a2"),
            KvStateMachineTest.del(2, 3, "b"),
            put(0, 0, "d", "d1")),
        true);
    return sm;
  }

  /** A target at op 3 with its own data, session and log, behind the source. */
  private static KvStateMachine staleTarget(Storage storage) {
    KvStateMachine sm = new KvStateMachine(storage, MAX_SESSIONS, MAX_REPLIES);
    sm.load();
    List<Entry> entries =
        entriesFrom(1, register(9), put(1, 2, "stale", "x"), put(1, 3, "z", "old"));
    storage.appendLog(entries, true);
    sm.apply(entries, true);
    return sm;
  }

  /** Every data pair of storage in key order. */
  private static List<KeyValue> allData(Storage storage) {
    return storage.scan(new byte[0], new byte[0], Integer.MAX_VALUE);
  }

  /** Installs source's state into target through target's state machine, two pairs per chunk. */
  private static void install(KvStateMachine source, Storage sourceStorage, KvStateMachine target)
      throws Exception {
    try (StorageSnapshot snapshot = sourceStorage.snapshot()) {
      target.beginInstall();
      byte[] cursor = new byte[0];
      for (List<KeyValue> chunk = snapshot.scanData(cursor, 2, Integer.MAX_VALUE);
          !chunk.isEmpty();
          chunk = snapshot.scanData(cursor, 2, Integer.MAX_VALUE)) {
        target.installData(chunk);
        cursor = Bytes.successor(chunk.get(chunk.size() - 1).getKey().toByteArray());
      }
      target.installSnapshot(
          source.applied(), source.checksum(), TransferRows.clientTable(snapshot));
    }
  }

  private static void assertSameState(
      KvStateMachine expected, Storage expectedStorage, KvStateMachine actual, Storage actualStorage) {
    assertEquals(expected.appliedState(), actual.appliedState());
    assertEquals(allData(expectedStorage), allData(actualStorage));
    assertEquals(expected.clientCount(), actual.clientCount());
    for (long client = 1; client <= 12; client++) {
      assertEquals(expected.clientRecord(client), actual.clientRecord(client), "client " + client);
    }
  }

  private static void assertEmptyState(KvStateMachine sm, Storage storage) {
    assertEquals(new KvStateMachine.AppliedState(0, 0), sm.appliedState());
    assertEquals(List.of(), allData(storage));
    assertEquals(0, sm.clientCount());
    assertEquals(List.of(), storage.scanMeta(MetaKeys.bytes(MetaKeys.CLIENT_PREFIX)));
    assertEquals(0, storage.lastLogOp());
    assertNull(storage.getMeta(MetaKeys.bytes(MetaKeys.INSTALLING)));
    assertFalse(sm.installing());
  }

  private static void assertCatchingUp(Storage storage) {
    assertArrayEquals(new byte[] {1}, storage.getMeta(MetaKeys.bytes(MetaKeys.CATCHING_UP)));
  }

  private static Response get(KvStateMachine sm, String key) {
    return sm.read(
        Request.newBuilder().setRequestId(7).setGet(Get.newBuilder().setKey(bs(key))).build(), 10);
  }

  private static KeyValue kv(String key, String value, long version) {
    return KeyValue.newBuilder().setKey(bs(key)).setValue(bs(value)).setVersion(version).build();
  }

  private static ByteString bs(String text) {
    return ByteString.copyFromUtf8(text);
  }

  @Test
  void shouldInstallTheSourceStateAndContinueFromItOnMemoryStorage() throws Exception {
    shouldInstallTheSourceStateAndContinueFromIt(
        track(new MemoryStorage()), track(new MemoryStorage()));
  }

  @Test
  void shouldInstallTheSourceStateAndContinueFromItOnRocksDb() throws Exception {
    shouldInstallTheSourceStateAndContinueFromIt(
        track(RocksDbStorage.open(tempDir.resolve("source"))),
        track(RocksDbStorage.open(tempDir.resolve("target"))));
  }

  private void shouldInstallTheSourceStateAndContinueFromIt(Storage sourceStorage, Storage targetStorage)
      throws Exception {
    KvStateMachine source = source(sourceStorage);
    KvStateMachine target = staleTarget(targetStorage);

    install(source, sourceStorage, target);

    assertSameState(source, sourceStorage, target, targetStorage);
    assertNull(targetStorage.get(bytes("stale")));
    assertEquals(0, targetStorage.lastLogOp());
    assertNull(targetStorage.getMeta(MetaKeys.bytes(MetaKeys.INSTALLING)));
    assertFalse(target.installing());
    assertEquals("a2", get(target, "a").getValue().toStringUtf8());
    // Both go on identically from the snapshot's op: a retry is answered from the installed table.
    List<Entry> next =
        entriesFrom(source.applied() + 1, put(1, 3, "c", "c1"), register(4), put(11, 2, "e", "e1"));
    List<Response> replies = target.apply(next, true);
    assertEquals(source.apply(next, true), replies);
    assertEquals(
        List.of(Status.OK, Status.OK, Status.OK),
        replies.stream().map(Response::getStatus).toList());
    assertEquals(11, replies.get(1).getSessionId());
    assertSameState(source, sourceStorage, target, targetStorage);
  }

  @Test
  void shouldWipeToTheEmptyStateOnLoadAfterACrashInTheMiddleOfAnInstall() {
    MemoryStorage storage = new MemoryStorage();
    KvStateMachine sm = staleTarget(storage);
    sm.beginInstall();
    sm.installData(List.of(kv("a", "v", 5)));

    MemoryStorage restarted = track(storage.crash());
    KvStateMachine reloaded = loaded(restarted);

    assertTrue(reloaded.wipedInterruptedInstall());
    assertEmptyState(reloaded, restarted);
    assertCatchingUp(restarted);
    // The wipe is durable: another crash right after it finds the empty state, no install marker,
    // and still the catching-up marker (only the core clears it, once caught up).
    MemoryStorage again = track(restarted.crash());
    KvStateMachine reloadedAgain = loaded(again);
    assertFalse(reloadedAgain.wipedInterruptedInstall());
    assertEmptyState(reloadedAgain, again);
    assertCatchingUp(again);
  }

  @Test
  void shouldSetTheCatchingUpMarkerInTheSameSyncedWriteThatRemovesTheInstallMarker() {
    MemoryStorage memory = new MemoryStorage();
    KvStateMachine sm = staleTarget(memory);
    sm.beginInstall();
    sm.installData(List.of(kv("a", "v", 5)));
    RecordingWrites recording = new RecordingWrites(track(memory.crash()));

    loaded(recording);

    List<RecordedWrite> clearing =
        recording.writes.stream()
            .filter(w -> w.deletes(MetaKeys.bytes(MetaKeys.INSTALLING)))
            .toList();
    assertEquals(1, clearing.size(), "one write removes the install marker");
    assertTrue(clearing.get(0).sync(), "synced");
    assertTrue(
        clearing.get(0).puts(MetaKeys.bytes(MetaKeys.CATCHING_UP), new byte[] {1}),
        "the same write sets the catching-up marker");
  }

  @Test
  void shouldLeaveTheCatchingUpMarkerToTheCoreWhenAnInstallFinishes() throws Exception {
    MemoryStorage sourceStorage = track(new MemoryStorage());
    KvStateMachine source = source(sourceStorage);
    MemoryStorage memory = new MemoryStorage();
    staleTarget(memory).beginInstall();
    MemoryStorage restarted = track(memory.crash());
    KvStateMachine target = loaded(restarted); // wiped: catching up

    install(source, sourceStorage, target);

    assertSameState(source, sourceStorage, target, restarted);
    assertCatchingUp(restarted);
  }

  @Test
  void shouldWipeOnLoadAfterAnInstallInterruptedOnRocksDb() {
    Path dir = tempDir.resolve("db");
    RocksDbStorage storage = RocksDbStorage.open(dir);
    KvStateMachine sm = staleTarget(storage);
    sm.beginInstall();
    sm.installData(List.of(kv("a", "v", 5)));
    storage.close();

    RocksDbStorage reopened = track(RocksDbStorage.open(dir));
    KvStateMachine reloaded = loaded(reopened);

    assertTrue(reloaded.wipedInterruptedInstall());
    assertEmptyState(reloaded, reopened);
  }

  @Test
  void shouldKeepAFullInstallAcrossACrash() throws Exception {
    MemoryStorage sourceStorage = track(new MemoryStorage());
    KvStateMachine source = source(sourceStorage);
    MemoryStorage storage = new MemoryStorage();
    KvStateMachine target = staleTarget(storage);
    install(source, sourceStorage, target);

    MemoryStorage restarted = track(storage.crash()); // installSnapshot synced everything
    KvStateMachine reloaded = loaded(restarted);

    assertFalse(reloaded.wipedInterruptedInstall());
    assertSameState(source, sourceStorage, reloaded, restarted);
    assertEquals(0, restarted.lastLogOp());
    assertNull(restarted.getMeta(MetaKeys.bytes(MetaKeys.CATCHING_UP)), "nothing was lost");
  }

  @Test
  void shouldWipeWhenCrashingAfterTheLogTruncationButBeforeTheFinishingWrite() throws Exception {
    MemoryStorage sourceStorage = track(new MemoryStorage());
    KvStateMachine source = source(sourceStorage);
    MemoryStorage memory = new MemoryStorage();
    FailingWrites storage = new FailingWrites(memory);
    KvStateMachine target = staleTarget(storage);
    storage.failWrites = true; // the finishing WriteSet is where the machine dies
    assertThrows(StorageException.class, () -> install(source, sourceStorage, target));

    // Keep every unsynced write (the log truncation and the data): only the marker decides.
    MemoryStorage restarted = track(memory.crashKeeping(memory.unsyncedWriteCount()));
    KvStateMachine reloaded = loaded(restarted);

    assertTrue(reloaded.wipedInterruptedInstall());
    assertEmptyState(reloaded, restarted);
    assertCatchingUp(restarted);
  }

  @Test
  void shouldRefuseApplyAndAnswerReadsUnavailableWhileInstalling() {
    MemoryStorage storage = track(new MemoryStorage());
    KvStateMachine sm = staleTarget(storage);
    assertEquals(Status.OK, get(sm, "z").getStatus());

    sm.beginInstall();

    assertTrue(sm.installing());
    assertEquals(0, sm.applied());
    assertEquals(Status.UNAVAILABLE, get(sm, "z").getStatus());
    assertThrows(
        IllegalStateException.class, () -> sm.apply(entriesFrom(3, put(9, 3, "y", "y")), true));

    sm.installData(List.of(kv("k", "v", 40)));
    sm.installSnapshot(40, 1234, List.of());

    assertFalse(sm.installing());
    assertEquals(new KvStateMachine.AppliedState(40, 1234), sm.appliedState());
    Response read = get(sm, "k");
    assertEquals(Status.OK, read.getStatus());
    assertEquals(40, read.getOp());
    assertEquals(41, sm.apply(entriesFrom(41, put(9, 3, "y", "y")), true).get(0).getOp());
  }

  @Test
  void shouldRefuseToFinishAnInstallThatNeverBeganOrHasBadClientRows() {
    MemoryStorage storage = track(new MemoryStorage());
    KvStateMachine sm = loaded(storage);
    ClientRecord row = ClientRecord.newBuilder().setClientId(5).setLastOp(3).build();

    assertThrows(IllegalStateException.class, () -> sm.installSnapshot(10, 1, List.of(row)));
    assertThrows(IllegalStateException.class, () -> sm.installData(List.of()));
    sm.beginInstall();
    assertThrows(IllegalArgumentException.class, () -> sm.installSnapshot(10, 1, List.of(row, row)));
    assertThrows(IllegalArgumentException.class, () -> sm.installSnapshot(0, 1, List.of()));

    sm.installSnapshot(10, 1, List.of(row));
    assertEquals(row, sm.clientRecord(5));
    assertEquals(1, sm.clientCount());
  }

  /** RecordedWrite is one write() call: its changes and whether it was synced. */
  record RecordedWrite(List<WriteSet.Change> changes, boolean sync) {
    boolean deletes(byte[] metaKey) {
      return changes.stream()
          .anyMatch(c -> c.space() == WriteSet.Space.META && Arrays.equals(c.key(), metaKey)
              && c.value() == null);
    }

    boolean puts(byte[] metaKey, byte[] value) {
      return changes.stream()
          .anyMatch(c -> c.space() == WriteSet.Space.META && Arrays.equals(c.key(), metaKey)
              && Arrays.equals(c.value(), value));
    }
  }

  /** RecordingWrites delegates to a storage and records every write() call. */
  static final class RecordingWrites extends ForwardingStorage {
    final List<RecordedWrite> writes = new ArrayList<>();

    RecordingWrites(Storage delegate) {
      super(delegate);
    }

    @Override
    public void write(WriteSet set, boolean sync) {
      writes.add(new RecordedWrite(List.copyOf(set.changes()), sync));
      delegate.write(set, sync);
    }

    @Override
    public void close() {
      // The test closes the delegate.
    }
  }

  /** FailingWrites delegates to a storage but throws on write() once armed, like a dying machine. */
  static final class FailingWrites extends ForwardingStorage {
    boolean failWrites;

    FailingWrites(Storage delegate) {
      super(delegate);
    }

    @Override
    public void write(WriteSet set, boolean sync) {
      if (failWrites) {
        throw new StorageException("simulated crash before the write");
      }
      delegate.write(set, sync);
    }

    @Override
    public void close() {
      // The test crashes the delegate instead.
    }
  }
}
