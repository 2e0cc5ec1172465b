package io.choir.server.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MemoryStorageTest runs the storage contract over the in-memory twin and checks its durability
 * model: an OS crash keeps every synced write and everything before it, and nothing else.
 */
class MemoryStorageTest extends StorageContractTest {
  @Override
  protected Storage newStorage() {
    return new MemoryStorage();
  }

  /** A clean restart keeps every write, synced or not (as RocksDB's WAL does across kill -9). */
  @Override
  protected Storage reopen(Storage storage) {
    MemoryStorage memory = (MemoryStorage) storage;
    return memory.crashKeeping(memory.unsyncedWriteCount());
  }

  private MemoryStorage memory() {
    return (MemoryStorage) storage;
  }

  @Test
  void shouldLoseUnsyncedWritesOnCrash() {
    storage.appendLog(entries(1, 3), false);
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), false);

    storage = memory().crash();

    assertEquals(0, storage.lastLogOp());
    assertNull(storage.get(bytes("a")));
  }

  @Test
  void shouldKeepEverythingBeforeASyncedWriteOnCrash() {
    storage.appendLog(entries(1, 3), false);
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), false);
    storage.appendLog(entries(4, 4), true);
    storage.write(new WriteSet().putMeta(bytes("applied"), bytes("4")), false);

    storage = memory().crash();

    assertEquals(entries(1, 4), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertEquals(1, storage.get(bytes("a")).version());
    assertNull(storage.getMeta(bytes("applied")));
  }

  @Test
  void shouldKeepWritesMadeDurableBySyncOnCrash() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), false);
    storage.sync();
    storage.write(new WriteSet().putData(bytes("b"), bytes("2"), 2), false);

    storage = memory().crash();

    assertEquals(1, storage.get(bytes("a")).version());
    assertNull(storage.get(bytes("b")));
  }

  @Test
  void shouldBringBackTruncatedEntriesWhenTheTruncationWasNotSynced() {
    storage.appendLog(entries(1, 5), true);
    storage.truncateLogAfter(2, false);
    storage.truncateLogBefore(2, false);
    assertEquals(entries(2, 2), storage.readLog(1, 5, Integer.MAX_VALUE));

    storage = memory().crash();

    assertEquals(entries(1, 5), storage.readLog(1, 5, Integer.MAX_VALUE));
  }

  @Test
  void shouldKeepOnlyTheRequestedPrefixOfUnsyncedWritesOnCrash() {
    storage.appendLog(entries(1, 1), true);
    storage.appendLog(entries(2, 2), false);
    storage.appendLog(entries(3, 3), false);
    storage.appendLog(entries(4, 4), false);
    assertEquals(3, memory().unsyncedWriteCount());

    storage = memory().crashKeeping(2);

    assertEquals(entries(1, 3), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertEquals(0, memory().unsyncedWriteCount());
  }

  @Test
  void shouldRefuseKeepingMoreUnsyncedWritesThanThereAre() {
    storage.appendLog(entries(1, 1), false);

    assertThrows(IllegalArgumentException.class, () -> memory().crashKeeping(2));
  }

  @Test
  void shouldSurviveTwoCrashesInARow() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), true);

    storage = memory().crash();
    storage.write(new WriteSet().putData(bytes("b"), bytes("2"), 2), false);
    storage = memory().crash();

    assertEquals(1, storage.get(bytes("a")).version());
    assertNull(storage.get(bytes("b")));
  }

  @Test
  void shouldCloseTheCrashedInstance() {
    MemoryStorage crashed = memory();

    storage = crashed.crash();

    assertThrows(StorageException.class, () -> crashed.get(bytes("a")));
    assertThrows(StorageException.class, () -> crashed.appendLog(entries(1, 1), true));
  }

  @Test
  void shouldNotLetCallersChangeStoredArrays() {
    byte[] value = bytes("abc");
    storage.write(new WriteSet().putData(bytes("k"), value, 1), true);
    value[0] = 'X';
    storage.get(bytes("k")).value()[1] = 'Y';

    assertArrayEquals(bytes("abc"), storage.get(bytes("k")).value());
    assertEquals(List.of(), storage.scan(bytes("l"), new byte[0], 1));
  }

  @Test
  void shouldKeepTheSyncedInstallMarkerButNotUnsyncedInstalledDataOnCrash() {
    storage.write(new WriteSet().putData(bytes("old"), bytes("x"), 1), true);
    storage.beginInstall();
    storage.installData(List.of(kv("a", "va", 5)));

    storage = memory().crash();

    assertArrayEquals(new byte[] {1}, storage.getMeta(bytes(MetaKeys.INSTALLING)));
    assertNull(storage.get(bytes("old")));
    assertNull(storage.get(bytes("a")));
  }
}
