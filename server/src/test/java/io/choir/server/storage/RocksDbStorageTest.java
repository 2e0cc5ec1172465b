package io.choir.server.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.DBOptions;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;

/**
 * RocksDbStorageTest runs the storage contract over RocksDB in a temporary directory, and checks the
 * on-disk layout other tools rely on (column families, key and value encodings).
 */
class RocksDbStorageTest extends StorageContractTest {
  @TempDir Path tempDir;

  private Path dbDir() {
    return tempDir.resolve("db");
  }

  @Override
  protected Storage newStorage() {
    return RocksDbStorage.open(dbDir());
  }

  @Override
  protected Storage reopen(Storage storage) {
    storage.close();
    return RocksDbStorage.open(dbDir());
  }

  /**
   * Copies the database's files while it is open and idle: the copy holds exactly what the OS holds
   * (unsynced WAL records included), which is what a restart after kill -9 finds. The original is
   * then closed (its close syncs, but only into the original) and the copy opened.
   */
  @Override
  protected Storage afterProcessCrash(Storage storage) {
    Path copy = tempDir.resolve("crashed-" + (++crashes));
    try {
      Files.createDirectories(copy);
      try (var files = Files.list(dbDir())) {
        for (Path file : files.toList()) {
          if (!file.getFileName().toString().equals("LOCK")) {
            Files.copy(file, copy.resolve(file.getFileName()));
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    storage.close();
    return RocksDbStorage.open(copy);
  }

  private int crashes;

  @Test
  void shouldCreateMissingDirectoriesAndColumnFamilies() throws Exception {
    Path nested = tempDir.resolve("a/b/c");
    RocksDbStorage.open(nested).close();

    assertTrue(Files.isDirectory(nested));
    try (Options options = new Options()) {
      List<String> families =
          RocksDB.listColumnFamilies(options, nested.toString()).stream()
              .map(name -> new String(name, StandardCharsets.US_ASCII))
              .sorted()
              .toList();
      assertEquals(List.of("data", "default", "log", "meta"), families);
    }
  }

  @Test
  void shouldStoreOpKeysAndVersionPrefixedValuesAsDocumented() throws Exception {
    storage.appendLog(entries(258, 258), true);
    storage.write(new WriteSet().putData(bytes("k"), bytes("val"), 0x0102L), true);
    storage.close();

    List<ColumnFamilyDescriptor> descriptors =
        List.of(
            new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY),
            new ColumnFamilyDescriptor(bytes("log")),
            new ColumnFamilyDescriptor(bytes("data")),
            new ColumnFamilyDescriptor(bytes("meta")));
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    try (RocksDB db = RocksDB.openReadOnly(dbDir().toString(), descriptors, handles)) {
      try {
        byte[] logged = db.get(handles.get(1), bytes(0, 0, 0, 0, 0, 0, 1, 2));
        assertArrayEquals(entry(258).toByteArray(), logged);
        byte[] stored = db.get(handles.get(2), bytes("k"));
        assertArrayEquals(bytes(0, 0, 0, 0, 0, 0, 1, 2, 'v', 'a', 'l'), stored);
      } finally {
        handles.forEach(ColumnFamilyHandle::close);
      }
    }
  }

  /** What a read on an event loop gets (issue 14): a value only when it is the one get returns. */
  @Test
  void shouldAnswerFromMemoryOnlyWhatGetWouldAnswer() {
    storage.write(new WriteSet().putData(bytes("k"), bytes("val"), 7), true);
    Versioned inMemtable = storage.getIfInMemory(bytes("k"));
    assertNotSame(StateStore.NOT_IN_MEMORY, inMemtable, "a key just written is in the memtable");
    assertArrayEquals(bytes("val"), inMemtable.value());
    assertEquals(7, inMemtable.version());
    storage.write(new WriteSet().deleteData(bytes("k")), true);
    Versioned deleted = storage.getIfInMemory(bytes("k"));
    assertTrue(deleted == null || deleted == StateStore.NOT_IN_MEMORY, "a deleted key has no value: " + deleted);
    Versioned absent = storage.getIfInMemory(bytes("never"));
    assertTrue(absent == null || absent == StateStore.NOT_IN_MEMORY, "an absent key has no value: " + absent);
    for (int i = 0; i < 200; i++) {
      storage.write(new WriteSet().putData(bytes("key" + i), bytes("value" + i), i + 1), false);
    }
    storage = reopen(storage);
    int fromMemory = 0;
    for (int round = 0; round < 2; round++) { // the second round after get has loaded every block
      for (int i = 0; i < 200; i++) {
        Versioned m = storage.getIfInMemory(bytes("key" + i));
        Versioned g = storage.get(bytes("key" + i));
        if (m != StateStore.NOT_IN_MEMORY) {
          fromMemory++;
          assertArrayEquals(g.value(), m.value(), "key" + i);
          assertEquals(g.version(), m.version(), "key" + i);
        }
      }
    }
    assertTrue(fromMemory >= 200, "answered from memory " + fromMemory + " of 400");
    storage.close();
    assertThrows(StorageException.class, () -> storage.getIfInMemory(bytes("k")));
    storage = newStorage();
  }

  @Test
  void shouldFailWithAStorageExceptionNamingTheDirectoryWhenAlreadyOpen() {
    StorageException e = assertThrows(StorageException.class, () -> RocksDbStorage.open(dbDir()));

    assertTrue(e.getMessage().contains(dbDir().toString()), e.getMessage());
  }

  @Test
  void shouldKeepUnsyncedWritesAcrossManyReopens() {
    for (int round = 1; round <= 3; round++) {
      storage.appendLog(entries(round, round), false);
      storage.write(new WriteSet().putData(bytes("k"), bytes("v" + round), round), false);
      storage = reopen(storage);
    }

    assertEquals(entries(1, 3), storage.readLog(1, 3, Integer.MAX_VALUE));
    assertArrayEquals(bytes("v3"), storage.get(bytes("k")).value());
  }

  @Test
  void shouldKeepTruncationsAcrossReopen() {
    storage.appendLog(entries(1, 20), true);
    storage.truncateLogBefore(5, true);
    storage.truncateLogAfter(15, true);

    storage = reopen(storage);

    assertEquals(5, storage.firstLogOp());
    assertEquals(15, storage.lastLogOp());
    assertEquals(11, storage.readLog(0, 100, Integer.MAX_VALUE).size());
  }

  /**
   * A folder written by RocksDB directly in the documented layout (as every earlier version wrote it)
   * opens unchanged: the log, data and meta rows read back through the log and state stores.
   */
  @Test
  void shouldReadAFolderWrittenInTheDocumentedLayout() throws Exception {
    storage.close();
    Path raw = tempDir.resolve("raw");
    List<ColumnFamilyDescriptor> descriptors =
        List.of(
            new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY),
            new ColumnFamilyDescriptor(bytes("log")),
            new ColumnFamilyDescriptor(bytes("data")),
            new ColumnFamilyDescriptor(bytes("meta")));
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    try (DBOptions options =
            new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true);
        RocksDB db = RocksDB.open(options, raw.toString(), descriptors, handles)) {
      try {
        db.put(handles.get(1), bytes(0, 0, 0, 0, 0, 0, 1, 2), entry(258).toByteArray());
        db.put(handles.get(2), bytes("k"), bytes(0, 0, 0, 0, 0, 0, 1, 2, 'v', 'a', 'l'));
        db.put(handles.get(3), bytes("applied"), Bytes.longToBytes(258));
      } finally {
        handles.forEach(ColumnFamilyHandle::close);
      }
    }

    storage = RocksDbStorage.open(raw);

    assertEquals(258, storage.firstLogOp());
    assertEquals(List.of(entry(258)), storage.readLog(0, 1000, Integer.MAX_VALUE));
    Versioned value = storage.get(bytes("k"));
    assertArrayEquals(bytes("val"), value.value());
    assertEquals(0x0102L, value.version());
    assertEquals(258, Bytes.bytesToLong(storage.getMeta(bytes("applied"))));
  }

  @Test
  void shouldRefuseTuningBelowItsBounds() {
    assertThrows(
        IllegalArgumentException.class, () -> new RocksDbTuning(0, 32L << 20, 2, 256L << 20));
    assertThrows(
        IllegalArgumentException.class,
        () -> new RocksDbTuning(64L << 20, 32L << 20, 0, 256L << 20));
    RocksDbTuning small = new RocksDbTuning(8L << 20, 4L << 20, 1, 8L << 20);
    RocksDbStorage.open(tempDir.resolve("tuned"), small).close();
  }
}
