package io.choir.server.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * MemoryStorageTest runs the storage contract over the in-memory twin and checks its two crash
 * models: a process crash keeps every completed write; a power loss keeps every synced write and
 * everything before it, plus a prefix of the unsynced writes (of both lanes, in call order), and
 * nothing else.
 */
class MemoryStorageTest extends StorageContractTest {
  @Override
  protected Storage newStorage() {
    return new MemoryStorage();
  }

  /** A clean restart keeps every write, synced or not (RocksDB's close syncs the WAL). */
  @Override
  protected Storage reopen(Storage storage) {
    MemoryStorage memory = (MemoryStorage) storage;
    return memory.powerLossKeeping(memory.unsyncedWriteCount());
  }

  @Override
  protected Storage afterProcessCrash(Storage storage) {
    return ((MemoryStorage) storage).processCrash();
  }

  private MemoryStorage memory() {
    return (MemoryStorage) storage;
  }

  @Test
  void shouldLoseUnsyncedWritesOnTheHarshestPowerLoss() {
    storage.appendLog(entries(1, 3), false);
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), false);

    storage = memory().powerLossKeeping(0);

    assertEquals(0, storage.lastLogOp());
    assertNull(storage.get(bytes("a")));
  }

  @Test
  void shouldKeepEverythingBeforeASyncedWriteOfTheOtherLaneOnPowerLoss() {
    storage.appendLog(entries(1, 3), false);
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), false);
    storage.appendLog(entries(4, 4), true);
    storage.write(new WriteSet().putMeta(bytes("applied"), bytes("4")), false);

    storage = memory().powerLossKeeping(0);

    assertEquals(entries(1, 4), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertEquals(1, storage.get(bytes("a")).version());
    assertNull(storage.getMeta(bytes("applied")));
  }

  @Test
  void shouldKeepWritesMadeDurableBySyncOnPowerLoss() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), false);
    storage.sync();
    storage.write(new WriteSet().putData(bytes("b"), bytes("2"), 2), false);

    storage = memory().powerLossKeeping(0);

    assertEquals(1, storage.get(bytes("a")).version());
    assertNull(storage.get(bytes("b")));
  }

  @Test
  void shouldBringBackTruncatedEntriesWhenTheTruncationWasNotSynced() {
    storage.appendLog(entries(1, 5), true);
    storage.truncateLogAfter(2, false);
    storage.truncateLogBefore(2, false);
    assertEquals(entries(2, 2), storage.readLog(1, 5, Integer.MAX_VALUE));

    storage = memory().powerLossKeeping(0);

    assertEquals(entries(1, 5), storage.readLog(1, 5, Integer.MAX_VALUE));
  }

  @Test
  void shouldKeepOnlyTheRequestedPrefixOfUnsyncedWritesOfBothLanesInCallOrder() {
    storage.appendLog(entries(1, 1), true);
    storage.appendLog(entries(2, 2), false);
    storage.write(new WriteSet().putMeta(bytes("applied"), bytes("1")), false);
    storage.appendLog(entries(3, 3), false);
    storage.write(new WriteSet().putMeta(bytes("applied"), bytes("2")), false);
    assertEquals(4, memory().unsyncedWriteCount());

    storage = memory().powerLossKeeping(2);

    assertEquals(entries(1, 2), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertArrayEquals(bytes("1"), storage.getMeta(bytes("applied")));
    assertEquals(0, memory().unsyncedWriteCount()); // what survived is on the disk
  }

  @Test
  void shouldKeepASeededPrefixOfTheUnsyncedWritesOnPowerLoss() {
    // Every length from 0 to 3 unsynced writes can survive, each run of a seed gives the same one, and
    // a later write never survives without the earlier ones.
    Set<Long> lastOps = new TreeSet<>();
    for (long seed = 1; seed <= 200; seed++) {
      long[] seen = new long[2];
      for (int run = 0; run < 2; run++) {
        MemoryStorage m = new MemoryStorage();
        m.appendLog(entries(1, 1), true);
        m.appendLog(entries(2, 2), false);
        m.appendLog(entries(3, 3), false);
        m.appendLog(entries(4, 4), false);
        MemoryStorage after = m.powerLoss(new SplittableRandom(seed));
        seen[run] = after.lastLogOp();
        assertEquals(entries(1, seen[run]), after.readLog(1, 10, Integer.MAX_VALUE));
        after.close();
      }
      assertEquals(seen[0], seen[1], "seed " + seed + " must replay");
      lastOps.add(seen[0]);
    }
    assertEquals(Set.of(1L, 2L, 3L, 4L), lastOps);
  }

  @Test
  void shouldKeepTheUnsyncedTailUnsyncedAcrossAProcessCrash() {
    storage.appendLog(entries(1, 1), true);
    storage.appendLog(entries(2, 2), false);

    storage = memory().processCrash();
    assertEquals(entries(1, 2), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertEquals(1, memory().unsyncedWriteCount());
    storage = memory().powerLossKeeping(0);

    assertEquals(entries(1, 1), storage.readLog(1, 10, Integer.MAX_VALUE));
  }

  @Test
  void shouldKeepTheTailAcrossAProcessCrashOnceSomethingSyncsIt() {
    storage.appendLog(entries(1, 2), false);

    storage = memory().processCrash();
    storage.sync();
    storage = memory().powerLossKeeping(0);

    assertEquals(entries(1, 2), storage.readLog(1, 10, Integer.MAX_VALUE));
  }

  @Test
  void shouldRefuseKeepingMoreUnsyncedWritesThanThereAre() {
    storage.appendLog(entries(1, 1), false);

    assertThrows(IllegalArgumentException.class, () -> memory().powerLossKeeping(2));
  }

  @Test
  void shouldSurviveTwoCrashesInARow() {
    storage.write(new WriteSet().putData(bytes("a"), bytes("1"), 1), true);

    storage = memory().powerLossKeeping(0);
    storage.write(new WriteSet().putData(bytes("b"), bytes("2"), 2), false);
    storage = memory().processCrash();
    storage = memory().powerLossKeeping(0);

    assertEquals(1, storage.get(bytes("a")).version());
    assertNull(storage.get(bytes("b")));
  }

  @Test
  void shouldCloseTheCrashedInstance() {
    MemoryStorage crashed = memory();
    storage = crashed.processCrash();
    MemoryStorage lost = memory();
    storage = lost.powerLoss(new SplittableRandom(1));

    for (MemoryStorage gone : List.of(crashed, lost)) {
      assertThrows(StorageException.class, () -> gone.get(bytes("a")));
      assertThrows(StorageException.class, () -> gone.appendLog(entries(1, 1), true));
      assertThrows(StorageException.class, gone::processCrash);
    }
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

    storage = memory().powerLossKeeping(0);

    assertArrayEquals(new byte[] {1}, storage.getMeta(bytes(MetaKeys.INSTALLING)));
    assertNull(storage.get(bytes("old")));
    assertNull(storage.get(bytes("a")));
  }
}
