package io.choir.server.statemachine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.WriteSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * SnapshotInstallTest checks the install part on its own: its sequence lock (odd while installing, a
 * new even value once whole, so a read that straddles an install is refused), the refusals, and what
 * the wipe of an interrupted install leaves in storage (DESIGN.md "Loss, repair and flow").
 */
class SnapshotInstallTest {
  private final MemoryStorage storage = new MemoryStorage();
  private final SnapshotInstall install = new SnapshotInstall(storage);

  private static byte[] meta(String key) {
    return MetaKeys.bytes(key);
  }

  @Test
  void shouldMakeTheEpochOddWhileInstallingAndNewOnceWhole() {
    long before = install.epoch();
    assertFalse(install.installing());

    install.markBegun();
    install.markBegun(); // a restarted fetch: still one install
    assertTrue(install.installing());
    assertEquals(before + 1, install.epoch());

    install.markWhole();
    install.markWhole(); // a load without an install changes nothing
    assertFalse(install.installing());
    assertEquals(before + 2, install.epoch(), "a reader from before the install sees a change");
  }

  @Test
  void shouldRefuseDataWhenNoInstallHasBegun() {
    assertThrows(
        IllegalStateException.class,
        () -> install.installData(List.of(KeyValue.newBuilder().setKey(ByteString.copyFromUtf8("k")).build())));
  }

  @Test
  void shouldRefuseToFinishWithoutTheMarkerInStorage() {
    assertThrows(IllegalStateException.class, () -> install.finish(5, 1, List.of()));
    assertThrows(IllegalArgumentException.class, () -> install.finish(0, 1, List.of()));
  }

  @Test
  void shouldRefuseATableWithAClientTwice() {
    install.markBegun();
    install.wipeForInstall();
    ClientRecord client = ClientRecord.newBuilder().setClientId(3).build();

    assertThrows(IllegalArgumentException.class, () -> install.finish(5, 1, List.of(client, client)));
  }

  @Test
  void shouldWriteAppliedChecksumAndEmptyTheLogWhenFinished() {
    storage.appendLog(List.of(Entry.newBuilder().setOp(1).build()), true);
    install.markBegun();
    install.wipeForInstall();
    install.installData(
        List.of(KeyValue.newBuilder().setKey(ByteString.copyFromUtf8("k")).setVersion(4).build()));

    install.finish(9, 77, List.of());

    assertEquals(9, Bytes.bytesToLong(storage.getMeta(meta(MetaKeys.APPLIED))));
    assertEquals(77, Bytes.bytesToLong(storage.getMeta(meta(MetaKeys.CHECKSUM))));
    assertNull(storage.getMeta(meta(MetaKeys.INSTALLING)));
    assertNull(storage.getMeta(meta(MetaKeys.CATCHING_UP)), "only the core clears or sets it");
    assertEquals(0, storage.lastLogOp());
    assertEquals(4, storage.get(ByteString.copyFromUtf8("k").toByteArray()).version());
    assertEquals(0, storage.unsyncedWriteCount(), "the finishing write is synced");
  }

  @Test
  void shouldWipeAnInterruptedInstallAndMarkTheReplicaCatchingUp() {
    storage.appendLog(List.of(Entry.newBuilder().setOp(1).build()), true);
    storage.write(new WriteSet().putData(new byte[] {1}, new byte[] {2}, 1), true);
    install.markBegun();
    install.wipeForInstall(); // then the replica crashes

    install.wipeIfInterrupted();

    assertTrue(install.wipedInterruptedInstall());
    assertNull(storage.getMeta(meta(MetaKeys.INSTALLING)));
    assertArrayEquals(new byte[] {1}, storage.getMeta(meta(MetaKeys.CATCHING_UP)));
    assertEquals(0, storage.lastLogOp());
    assertNull(storage.get(new byte[] {1}));
    assertEquals(0, storage.unsyncedWriteCount(), "the markers change in one synced write");
  }

  @Test
  void shouldLeaveAWholeStateAloneOnLoad() {
    storage.write(new WriteSet().putMeta(meta(MetaKeys.APPLIED), Bytes.longToBytes(3)), true);

    install.wipeIfInterrupted();

    assertFalse(install.wipedInterruptedInstall());
    assertEquals(3, Bytes.bytesToLong(storage.getMeta(meta(MetaKeys.APPLIED))));
    assertNull(storage.getMeta(meta(MetaKeys.CATCHING_UP)));
  }
}
