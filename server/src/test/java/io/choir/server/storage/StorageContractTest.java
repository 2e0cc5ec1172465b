package io.choir.server.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.proto.Noop;
import io.choir.proto.Put;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * StorageContractTest is the one suite every {@link Storage} passes (the in-memory twin and RocksDB
 * alike), so the simulator's storage behaves like the real one.
 */
abstract class StorageContractTest {
  /** A new, empty storage. */
  protected abstract Storage newStorage();

  /**
   * Closes storage the way a clean restart does and opens the same state again (the process restarts;
   * the machine does not crash).
   */
  protected abstract Storage reopen(Storage storage);

  /**
   * Returns what a restart after kill -9 of the process finds (every completed write reached the OS,
   * synced or not); storage is not used afterwards.
   */
  protected abstract Storage afterProcessCrash(Storage storage);

  protected Storage storage;

  @BeforeEach
  void openStorage() {
    storage = newStorage();
  }

  @AfterEach
  void closeStorage() {
    storage.close();
  }

  static Entry entry(long op) {
    return entry(op, 10);
  }

  /** An entry at op whose value has valueBytes bytes. */
  static Entry entry(long op, int valueBytes) {
    return Entry.newBuilder()
        .setOp(op)
        .setView(1)
        .setClientId(7)
        .setRequestId(op)
        .setPut(
            Put.newBuilder()
                .setKey(ByteString.copyFromUtf8("k" + op))
                .setValue(ByteString.copyFrom(new byte[valueBytes])))
        .build();
  }

  static List<Entry> entries(long fromOp, long toOp) {
    return LongStream.rangeClosed(fromOp, toOp).mapToObj(StorageContractTest::entry).toList();
  }

  static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  static byte[] bytes(int... values) {
    byte[] out = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = (byte) values[i];
    }
    return out;
  }

  static List<ByteString> keys(List<KeyValue> kvs) {
    return kvs.stream().map(KeyValue::getKey).toList();
  }

  static List<ByteString> keys(byte[]... keys) {
    List<ByteString> out = new ArrayList<>();
    for (byte[] key : keys) {
      out.add(ByteString.copyFrom(key));
    }
    return out;
  }

  // ---- log ----

  @Test
  void shouldReturnAppendedEntriesInOpOrder() {
    storage.appendLog(entries(1, 3), true);
    storage.appendLog(entries(4, 5), false);

    assertEquals(entries(1, 5), storage.readLog(1, 5, Integer.MAX_VALUE));
  }

  @Test
  void shouldReportZeroFirstAndLastOpWhenLogIsEmpty() {
    assertEquals(0, storage.firstLogOp());
    assertEquals(0, storage.lastLogOp());
    assertEquals(List.of(), storage.readLog(1, 100, Integer.MAX_VALUE));
  }

  @Test
  void shouldReportFirstAndLastOp() {
    storage.appendLog(entries(5, 9), true);

    assertEquals(5, storage.firstLogOp());
    assertEquals(9, storage.lastLogOp());
  }

  @Test
  void shouldReadOnlyTheRequestedOpRangeInclusive() {
    storage.appendLog(entries(1, 10), true);

    assertEquals(entries(3, 6), storage.readLog(3, 6, Integer.MAX_VALUE));
    assertEquals(entries(8, 10), storage.readLog(8, 50, Integer.MAX_VALUE));
    assertEquals(List.of(), storage.readLog(6, 5, Integer.MAX_VALUE));
    assertEquals(List.of(), storage.readLog(11, 20, Integer.MAX_VALUE));
  }

  @Test
  void shouldStopReadingTheLogBeforeMaxBytesWouldBeExceeded() {
    storage.appendLog(entries(1, 10), true);
    int size = entry(1).getSerializedSize(); // ops 1..9 serialize to the same size

    assertEquals(entries(1, 3), storage.readLog(1, 10, 3 * size));
    assertEquals(entries(1, 3), storage.readLog(1, 10, 4 * size - 1));
  }

  @Test
  void shouldReturnOneEntryEvenWhenItExceedsMaxBytes() {
    storage.appendLog(List.of(entry(1, 5000), entry(2)), true);

    assertEquals(List.of(entry(1, 5000)), storage.readLog(1, 2, 100));
    assertEquals(List.of(entry(1, 5000)), storage.readLog(1, 2, 0));
  }

  @Test
  void shouldTruncateTheLogBeforeAnOp() {
    storage.appendLog(entries(1, 10), true);

    storage.truncateLogBefore(4, true);

    assertEquals(4, storage.firstLogOp());
    assertEquals(10, storage.lastLogOp());
    assertEquals(entries(4, 10), storage.readLog(1, 10, Integer.MAX_VALUE));
  }

  @Test
  void shouldEmptyTheLogWhenTruncatingBeforeAnOpAboveTheLast() {
    storage.appendLog(entries(1, 5), true);

    storage.truncateLogBefore(100, false);

    assertEquals(0, storage.firstLogOp());
    assertEquals(0, storage.lastLogOp());
  }

  @Test
  void shouldTruncateTheLogAfterAnOpAndAcceptANewSuffix() {
    storage.appendLog(entries(1, 10), true);

    storage.truncateLogAfter(6, true);

    assertEquals(6, storage.lastLogOp());
    assertEquals(entries(1, 6), storage.readLog(1, 10, Integer.MAX_VALUE));

    Entry replacement = entry(7).toBuilder().setView(2).build();
    storage.appendLog(List.of(replacement), true);
    assertEquals(List.of(replacement), storage.readLog(7, 10, Integer.MAX_VALUE));
  }

  @Test
  void shouldEmptyTheLogWhenTruncatingAfterZero() {
    storage.appendLog(entries(1, 5), true);

    storage.truncateLogAfter(0, true);

    assertEquals(0, storage.lastLogOp());
  }

  @Test
  void shouldReplaceAnEntryAppendedAgainAtTheSameOp() {
    storage.appendLog(entries(1, 2), true);
    Entry noop = Entry.newBuilder().setOp(2).setView(3).setNoop(Noop.getDefaultInstance()).build();

    storage.appendLog(List.of(noop), true);

    assertEquals(List.of(entry(1), noop), storage.readLog(1, 2, Integer.MAX_VALUE));
  }

  @Test
  void shouldTreatEmptyAppendsAndWriteSetsAsNoChange() {
    storage.appendLog(List.of(), true);
    storage.appendLog(List.of(), false);
    storage.write(new WriteSet(), true);
    storage.write(new WriteSet(), false);
    storage.sync();

    assertEquals(0, storage.lastLogOp());
    assertEquals(List.of(), storage.scan(new byte[0], new byte[0], 10));
  }

  // ---- data ----

  @Test
  void shouldReturnValueAndVersionOrNullWhenAbsent() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("one"), 3), true);

    Versioned found = storage.get(bytes("a"));
    assertArrayEquals(bytes("one"), found.value());
    assertEquals(3, found.version());
    assertNull(storage.get(bytes("b")));
  }

  @Test
  void shouldStoreAnEmptyValue() {
    storage.write(new WriteSet().putData(bytes("a"), new byte[0], 2), true);

    assertArrayEquals(new byte[0], storage.get(bytes("a")).value());
    assertEquals(2, storage.get(bytes("a")).version());
  }

  @Test
  void shouldOverwriteAndDeleteData() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("one"), 1), true);
    storage.write(new WriteSet().putData(bytes("a"), bytes("two"), 2), true);
    assertArrayEquals(bytes("two"), storage.get(bytes("a")).value());
    assertEquals(2, storage.get(bytes("a")).version());

    storage.write(new WriteSet().deleteData(bytes("a")), true);
    assertNull(storage.get(bytes("a")));
  }

  @Test
  void shouldScanInUnsignedByteOrder() {
    byte[][] sorted = {
      bytes(0x00), bytes(0x01), bytes(0x01, 0x00), bytes(0x7F), bytes(0x80), bytes(0xFE), bytes(0xFF),
      bytes(0xFF, 0xFF)
    };
    WriteSet set = new WriteSet();
    for (int i = sorted.length - 1; i >= 0; i--) {
      set.putData(sorted[i], bytes("v" + i), i + 1);
    }
    storage.write(set, true);

    List<KeyValue> kvs = storage.scan(new byte[0], new byte[0], 100);

    assertEquals(keys(sorted), keys(kvs));
    assertEquals(ByteString.copyFrom(bytes("v4")), kvs.get(4).getValue());
    assertEquals(5, kvs.get(4).getVersion());
  }

  @Test
  void shouldScanFromStartInclusiveToEndExclusive() {
    storage.write(
        new WriteSet()
            .putData(bytes("a"), bytes("1"), 1)
            .putData(bytes("b"), bytes("2"), 2)
            .putData(bytes("c"), bytes("3"), 3)
            .putData(bytes("d"), bytes("4"), 4),
        true);

    assertEquals(keys(bytes("b"), bytes("c")), keys(storage.scan(bytes("b"), bytes("d"), 10)));
    assertEquals(
        keys(bytes("b"), bytes("c"), bytes("d")), keys(storage.scan(bytes("ab"), new byte[0], 10)));
    assertEquals(keys(bytes(0x61)), keys(storage.scan(new byte[0], bytes(0x61, 0x00), 10)));
  }

  @Test
  void shouldScanAboveSignedNegativeBytesWithAnUpperBound() {
    storage.write(
        new WriteSet()
            .putData(bytes(0x10), bytes("low"), 1)
            .putData(bytes(0x90), bytes("high"), 2)
            .putData(bytes(0xF0), bytes("top"), 3),
        true);

    // 0x90 is negative as a signed byte: a signed comparison would put it before 0x10.
    assertEquals(keys(bytes(0x90)), keys(storage.scan(bytes(0x80), bytes(0xA0), 10)));
    assertEquals(keys(bytes(0x10), bytes(0x90)), keys(storage.scan(bytes(0x00), bytes(0xF0), 10)));
  }

  @Test
  void shouldStopScanningAtTheLimit() {
    WriteSet set = new WriteSet();
    for (int i = 0; i < 10; i++) {
      set.putData(bytes("k" + i), bytes("v"), i + 1);
    }
    storage.write(set, true);

    assertEquals(
        keys(bytes("k0"), bytes("k1"), bytes("k2")),
        keys(storage.scan(new byte[0], new byte[0], 3)));
    assertEquals(List.of(), storage.scan(new byte[0], new byte[0], 0));
  }

  @Test
  void shouldScanNothingWhenStartIsNotBelowEnd() {
    storage.write(new WriteSet().putData(bytes("b"), bytes("1"), 1), true);

    assertEquals(List.of(), storage.scan(bytes("c"), bytes("a"), 10));
    assertEquals(List.of(), storage.scan(bytes("b"), bytes("b"), 10));
  }

  @Test
  void shouldCountDistinctKeys() {
    storage.write(
        new WriteSet()
            .putData(bytes("a"), bytes("1"), 1)
            .putData(bytes("b"), bytes("2"), 1)
            .putData(bytes("c"), bytes("3"), 1),
        true);

    assertEquals(3, storage.approximateKeyCount());
  }

  // ---- meta and write sets ----

  @Test
  void shouldScanMetaByPrefixInKeyOrder() {
    storage.write(
        new WriteSet()
            .putMeta(bytes("client/b"), bytes("2"))
            .putMeta(bytes("applied"), bytes("x"))
            .putMeta(bytes("client/a"), bytes("1"))
            .putMeta(bytes("clients"), bytes("not me"))
            .putMeta(bytes("client0"), bytes("nor me")),
        true);

    List<Map.Entry<byte[], byte[]>> rows = storage.scanMeta(bytes("client/"));

    assertEquals(2, rows.size());
    assertArrayEquals(bytes("client/a"), rows.get(0).getKey());
    assertArrayEquals(bytes("1"), rows.get(0).getValue());
    assertArrayEquals(bytes("client/b"), rows.get(1).getKey());
    assertArrayEquals(bytes("x"), storage.getMeta(bytes("applied")));
    assertNull(storage.getMeta(bytes("view")));
  }

  @Test
  void shouldScanMetaByAPrefixEndingInFfBytes() {
    storage.write(
        new WriteSet()
            .putMeta(bytes(0x01, 0xFF), bytes("in"))
            .putMeta(bytes(0x01, 0xFF, 0x00), bytes("in too"))
            .putMeta(bytes(0x02), bytes("out")),
        true);

    assertEquals(2, storage.scanMeta(bytes(0x01, 0xFF)).size());
  }

  @Test
  void shouldApplyEveryChangeOfAWriteSetInOrder() {
    storage.write(
        new WriteSet().putData(bytes("gone"), bytes("x"), 1).putMeta(bytes("old"), bytes("x")), true);

    storage.write(
        new WriteSet()
            .putData(bytes("a"), bytes("first"), 2)
            .putData(bytes("a"), bytes("second"), 2)
            .deleteData(bytes("gone"))
            .putMeta(bytes("applied"), bytes("2"))
            .deleteMeta(bytes("old")),
        false);

    assertArrayEquals(bytes("second"), storage.get(bytes("a")).value());
    assertNull(storage.get(bytes("gone")));
    assertArrayEquals(bytes("2"), storage.getMeta(bytes("applied")));
    assertNull(storage.getMeta(bytes("old")));
  }

  @Test
  void shouldNeverShowHalfAWriteSetToAConcurrentReader() throws Exception {
    // Each write set moves "x" and "y" to the same new version; a reader scanning both keys must
    // always see them equal (a scan reads one consistent state).
    int writes = 2000;
    AtomicBoolean done = new AtomicBoolean();
    AtomicReference<String> torn = new AtomicReference<>();
    Thread reader =
        new Thread(
            () -> {
              while (!done.get() && torn.get() == null) {
                List<KeyValue> kvs = storage.scan(bytes("x"), new byte[0], 2);
                if (kvs.size() == 1
                    || (kvs.size() == 2 && kvs.get(0).getVersion() != kvs.get(1).getVersion())) {
                  torn.set(kvs.toString());
                }
              }
            });
    reader.start();
    try {
      for (int version = 1; version <= writes; version++) {
        storage.write(
            new WriteSet()
                .putData(bytes("x"), bytes("v"), version)
                .putData(bytes("y"), bytes("v"), version),
            false);
      }
    } finally {
      done.set(true);
      reader.join();
    }
    assertNull(torn.get());
  }

  // ---- snapshots ----

  static KeyValue kv(String key, String value, long version) {
    return KeyValue.newBuilder()
        .setKey(ByteString.copyFromUtf8(key))
        .setValue(ByteString.copyFromUtf8(value))
        .setVersion(version)
        .build();
  }

  /** Every data pair of snapshot, read in chunks of maxPairs and maxBytes from the start. */
  static List<KeyValue> scanAll(StorageSnapshot snapshot, int maxPairs, int maxBytes) {
    List<KeyValue> out = new ArrayList<>();
    byte[] cursor = new byte[0];
    for (int calls = 0; calls < 10_000; calls++) {
      List<KeyValue> chunk = snapshot.scanData(cursor, maxPairs, maxBytes);
      if (chunk.isEmpty()) {
        return out;
      }
      out.addAll(chunk);
      cursor = Bytes.successor(chunk.get(chunk.size() - 1).getKey().toByteArray());
    }
    throw new AssertionError("scanData did not reach the end");
  }

  @Test
  void shouldNotShowWritesMadeAfterTheSnapshotToIt() {
    storage.write(
        new WriteSet()
            .putData(bytes("a"), bytes("a1"), 1)
            .putData(bytes("c"), bytes("c1"), 1)
            .putMeta(bytes("applied"), bytes("1"))
            .putMeta(bytes("client/1"), bytes("row1")),
        true);

    try (StorageSnapshot snapshot = storage.snapshot()) {
      storage.write(
          new WriteSet()
              .putData(bytes("a"), bytes("a2"), 2)
              .putData(bytes("b"), bytes("b2"), 2)
              .deleteData(bytes("c"))
              .putMeta(bytes("applied"), bytes("2"))
              .putMeta(bytes("client/2"), bytes("row2")),
          false);

      assertEquals(
          List.of(kv("a", "a1", 1), kv("c", "c1", 1)),
          snapshot.scanData(new byte[0], 100, Integer.MAX_VALUE));
      assertArrayEquals(bytes("1"), snapshot.getMeta(bytes("applied")));
      assertEquals(1, snapshot.scanMeta(bytes("client/")).size());
      assertArrayEquals(bytes("client/1"), snapshot.scanMeta(bytes("client/")).get(0).getKey());
      // The storage itself moved on.
      assertEquals(2, storage.get(bytes("a")).version());
      assertArrayEquals(bytes("2"), storage.getMeta(bytes("applied")));
    }
  }

  @Test
  void shouldKeepShowingTheOldStateThroughAnInstallThatStartsAfterTheSnapshot() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("a1"), 1), true);

    try (StorageSnapshot snapshot = storage.snapshot()) {
      storage.beginInstall();
      storage.installData(List.of(kv("z", "z9", 9)));

      assertEquals(List.of(kv("a", "a1", 1)), scanAll(snapshot, 10, Integer.MAX_VALUE));
      assertNull(snapshot.getMeta(bytes(MetaKeys.INSTALLING)));
    }
  }

  @Test
  void shouldScanSnapshotDataInChunksBoundedByPairsAndBytes() {
    WriteSet set = new WriteSet();
    List<KeyValue> expected = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      String key = String.format("k%03d", i);
      set.putData(bytes(key), bytes("value-" + i), i + 1);
      expected.add(kv(key, "value-" + i, i + 1));
    }
    storage.write(set, true);

    try (StorageSnapshot snapshot = storage.snapshot()) {
      assertEquals(expected.subList(0, 7), snapshot.scanData(new byte[0], 7, Integer.MAX_VALUE));
      // "k000" + "value-0" is 11 bytes, the next pairs 11 too: 30 bytes hold two.
      assertEquals(expected.subList(0, 2), snapshot.scanData(new byte[0], 100, 30));
      assertEquals(expected.subList(0, 1), snapshot.scanData(new byte[0], 100, 0));
      assertEquals(expected.subList(10, 13), snapshot.scanData(bytes("k010"), 3, 1000));
      assertEquals(expected.subList(11, 12), snapshot.scanData(bytes("k010\0"), 1, 1000));
      assertEquals(expected, scanAll(snapshot, 4, 40));
      assertEquals(List.of(), snapshot.scanData(bytes("l"), 10, 1000));
      assertThrows(IllegalArgumentException.class, () -> snapshot.scanData(new byte[0], 0, 10));
    }
  }

  @Test
  void shouldScanSnapshotDataInUnsignedByteOrder() {
    storage.write(
        new WriteSet()
            .putData(bytes(0xFF, 0xFF), bytes("top"), 3)
            .putData(bytes(0x80), bytes("high"), 2)
            .putData(bytes(0x10), bytes("low"), 1),
        true);

    try (StorageSnapshot snapshot = storage.snapshot()) {
      assertEquals(
          keys(bytes(0x10), bytes(0x80), bytes(0xFF, 0xFF)), keys(scanAll(snapshot, 1, 1)));
    }
  }

  @Test
  void shouldRefuseSnapshotReadsAfterTheSnapshotOrTheStorageIsClosed() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), true);
    StorageSnapshot first = storage.snapshot();
    first.close();
    first.close();
    assertThrows(StorageException.class, () -> first.getMeta(bytes("applied")));

    StorageSnapshot second = storage.snapshot();
    storage.close();

    assertThrows(StorageException.class, () -> second.scanData(new byte[0], 10, 100));
    second.close(); // harmless after the storage closed
  }

  // ---- installing a state transfer ----

  @Test
  void shouldWipeTheStateAndSetTheMarkerButKeepTheLogAndOtherMetaOnBeginInstall() {
    storage.appendLog(entries(1, 3), true);
    storage.write(
        new WriteSet()
            .putData(bytes(0x00), bytes("first"), 1)
            .putData(bytes("m"), bytes("middle"), 2)
            .putData(bytes(0xFF, 0xFF, 0xFF), bytes("last"), 3)
            .putMeta(bytes(MetaKeys.APPLIED), Bytes.longToBytes(3))
            .putMeta(bytes(MetaKeys.CHECKSUM), Bytes.longToBytes(42))
            .putMeta(Bytes.concat(bytes(MetaKeys.CLIENT_PREFIX), Bytes.longToBytes(1)), bytes("r1"))
            .putMeta(Bytes.concat(bytes(MetaKeys.CLIENT_PREFIX), Bytes.longToBytes(-1)), bytes("r2"))
            .putMeta(bytes("clients"), bytes("not a client row"))
            .putMeta(bytes("view"), Bytes.longToBytes(7)),
        true);

    storage.beginInstall();

    assertEquals(List.of(), storage.scan(new byte[0], new byte[0], 10));
    assertNull(storage.getMeta(bytes(MetaKeys.APPLIED)));
    assertNull(storage.getMeta(bytes(MetaKeys.CHECKSUM)));
    assertEquals(List.of(), storage.scanMeta(bytes(MetaKeys.CLIENT_PREFIX)));
    assertArrayEquals(bytes(1), storage.getMeta(bytes(MetaKeys.INSTALLING)));
    assertArrayEquals(bytes("not a client row"), storage.getMeta(bytes("clients")));
    assertArrayEquals(Bytes.longToBytes(7), storage.getMeta(bytes("view")));
    assertEquals(entries(1, 3), storage.readLog(1, 3, Integer.MAX_VALUE));
  }

  @Test
  void shouldKeepTheMembershipRowThroughBeginInstall() {
    storage.write(new WriteSet().putMeta(bytes(MetaKeys.MEMBERSHIP), bytes("epoch 3"))
        .putMeta(bytes(MetaKeys.APPLIED), Bytes.longToBytes(9)), true);

    storage.beginInstall();
    storage = reopen(storage);

    assertArrayEquals(bytes("epoch 3"), storage.getMeta(bytes(MetaKeys.MEMBERSHIP)),
        "the last applied membership names whom an emptied replica catches up from");
    assertNull(storage.getMeta(bytes(MetaKeys.APPLIED)));
  }

  @Test
  void shouldInstallDataWithItsVersionsAndKeepTheMarkerAcrossReopen() {
    storage.write(new WriteSet().putData(bytes("old"), bytes("x"), 1), true);
    storage.beginInstall();

    storage.installData(List.of(kv("b", "vb", 7), kv("a", "va", 5)));
    storage.installData(List.of());
    storage.installData(List.of(kv("c", "", 9)));
    storage = reopen(storage);

    assertEquals(
        List.of(kv("a", "va", 5), kv("b", "vb", 7), kv("c", "", 9)),
        storage.scan(new byte[0], new byte[0], 10));
    assertEquals(7, storage.get(bytes("b")).version());
    assertArrayEquals(bytes(1), storage.getMeta(bytes(MetaKeys.INSTALLING)));
  }

  @Test
  void shouldRestartAnInstallFromEmptyWhenBeginInstallRunsAgain() {
    storage.beginInstall();
    storage.installData(List.of(kv("a", "va", 5)));

    storage.beginInstall();
    storage.installData(List.of(kv("b", "vb", 6)));

    assertEquals(List.of(kv("b", "vb", 6)), storage.scan(new byte[0], new byte[0], 10));
  }

  @Test
  void shouldBeginAnInstallOnAnEmptyStorage() {
    storage.beginInstall();

    assertEquals(List.of(), storage.scan(new byte[0], new byte[0], 10));
    assertArrayEquals(bytes(1), storage.getMeta(bytes(MetaKeys.INSTALLING)));
  }

  @Test
  void shouldFindTheEndOfAPrefixRange() {
    assertArrayEquals(bytes("client0"), Bytes.prefixEnd(bytes("client/")));
    assertArrayEquals(bytes(0x02), Bytes.prefixEnd(bytes(0x01, 0xFF)));
    assertNull(Bytes.prefixEnd(bytes(0xFF, 0xFF)));
    assertNull(Bytes.prefixEnd(new byte[0]));
    assertArrayEquals(bytes(0x61, 0x00), Bytes.successor(bytes(0x61)));
  }

  // ---- lifecycle ----

  @Test
  void shouldKeepLogDataAndMetaAcrossReopen() {
    storage.appendLog(entries(1, 5), true);
    storage.truncateLogBefore(2, true);
    storage.write(
        new WriteSet().putData(bytes("a"), bytes("1"), 5).putMeta(bytes("applied"), bytes("5")),
        true);
    storage.appendLog(entries(6, 7), false); // unsynced, but a restart is not a crash

    storage = reopen(storage);

    assertEquals(2, storage.firstLogOp());
    assertEquals(7, storage.lastLogOp());
    assertEquals(entries(2, 7), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertEquals(5, storage.get(bytes("a")).version());
    assertArrayEquals(bytes("5"), storage.getMeta(bytes("applied")));
  }

  @Test
  void shouldKeepEveryCompletedWriteOfEveryKindAcrossAProcessCrash() {
    storage.appendLog(entries(1, 6), true);
    storage.appendLog(entries(7, 9), false);
    storage.truncateLogAfter(8, false);
    storage.truncateLogBefore(3, false);
    storage.write(
        new WriteSet().putData(bytes("a"), bytes("1"), 5).putMeta(bytes("applied"), bytes("5")),
        false);
    storage.beginInstall();
    storage.installData(List.of(kv("b", "vb", 7)));

    storage = afterProcessCrash(storage);

    assertEquals(entries(3, 8), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertNull(storage.get(bytes("a")));
    assertEquals(List.of(kv("b", "vb", 7)), storage.scan(new byte[0], new byte[0], 10));
    assertArrayEquals(bytes(1), storage.getMeta(bytes(MetaKeys.INSTALLING)));
    assertNull(storage.getMeta(bytes("applied")));
    storage.appendLog(entries(9, 9), true);
    assertEquals(9, storage.lastLogOp());
  }

  @Test
  void shouldAllowCloseTwiceAndRefuseUseAfterClose() {
    storage.close();
    storage.close();

    assertThrows(StorageException.class, () -> storage.get(bytes("a")));
    assertThrows(StorageException.class, () -> storage.appendLog(entries(1, 1), true));
    assertThrows(StorageException.class, storage::lastLogOp);
  }

  @Test
  void shouldRefuseANegativeTruncateAfterOp() {
    assertThrows(IllegalArgumentException.class, () -> storage.truncateLogAfter(-1, true));
  }

  @Test
  void shouldDecodeWhatItEncodes() {
    byte[] encoded = Bytes.longToBytes(0x0102030405060708L);
    assertArrayEquals(bytes(1, 2, 3, 4, 5, 6, 7, 8), encoded);
    assertEquals(0x0102030405060708L, Bytes.bytesToLong(encoded));
    assertEquals(-2L, Bytes.bytesToLong(Bytes.longToBytes(-2L)));
    assertTrue(Bytes.UNSIGNED.compare(bytes(0x80), bytes(0x7F)) > 0);
  }
}
