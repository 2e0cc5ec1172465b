package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.Put;
import io.choir.server.core.RecoveredState;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.WriteSet;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/**
 * RecoveryTest checks what every start does with the data folder (server and simulator alike): the
 * log must be continuous from its first op and meet the applied state (issue 9, hole 2f), the markers
 * decide whether the replica restarted, must run recovery (VR Revisited 4.3) or must catch up first.
 */
class RecoveryTest {
  private MemoryStorage storage = new MemoryStorage();

  static Entry entry(long op) {
    return Entry.newBuilder().setOp(op).setView(1).setPut(Put.newBuilder()
        .setKey(ByteString.copyFromUtf8("k" + op)).setValue(ByteString.copyFromUtf8("v" + op))).build();
  }

  static List<Entry> entries(long from, long to) {
    return LongStream.rangeClosed(from, to).mapToObj(RecoveryTest::entry).toList();
  }

  private void setApplied(long applied) {
    storage.write(new WriteSet().putMeta(MetaKeys.bytes(MetaKeys.APPLIED), Bytes.longToBytes(applied))
        .putMeta(MetaKeys.bytes(MetaKeys.CHECKSUM), Bytes.longToBytes(77)), true);
  }

  private RecoveredState recover(boolean buffered) {
    return Recovery.recover(storage, new KvStateMachine(storage, 100, 10), "test", buffered, true);
  }

  private String refused() {
    return assertThrows(Recovery.InconsistentDataException.class, () -> recover(false)).getMessage();
  }

  @Test
  void shouldHandTheLogAboveAppliedToTheCore() {
    storage.appendLog(entries(3, 9), true);
    setApplied(5);

    RecoveredState r = recover(false);

    assertEquals(5, r.appliedOp());
    assertEquals(77, r.checksum());
    assertEquals(3, r.logFirstOp());
    assertEquals(entries(6, 9), r.unappliedLog());
  }

  @Test
  void shouldStartOnAnEmptyLogAndOnALogEndingAtApplied() {
    setApplied(5);
    assertEquals(6, recover(false).logFirstOp());

    storage.appendLog(entries(1, 5), true);
    RecoveredState r = recover(false);
    assertEquals(1, r.logFirstOp());
    assertEquals(List.of(), r.unappliedLog());
  }

  @Test
  void shouldRefuseALogWithAHoleBelowTheAppliedOp() {
    storage.appendLog(entries(1, 3), true);
    storage.appendLog(entries(5, 8), true);
    setApplied(6);

    String message = refused();

    assertTrue(message.contains("missing ops 4..4"), message);
    assertTrue(message.contains("choir server --rejoin"), message);
  }

  /**
   * A replica that runs recovery (buffered durability, unclean stop) rejoins as one that must catch
   * up; that is recorded at start, so a clean stop before it has caught up does not make it a voter.
   */
  @Test
  void shouldRecordTheCatchingUpMarkerWhenItMustRunRecovery() {
    storage.write(new WriteSet().putMeta(ReplicaMeta.INITIALIZED, new byte[] {1}), true);
    assertTrue(recover(true).recovering());
    ReplicaMeta.markCleanShutdown(storage);
    var again = recover(true);
    assertTrue(!again.recovering() && again.mustCatchUp(), "clean now, but still catching up");
  }

  @Test
  void shouldRefuseALogWithAHoleAboveTheAppliedOp() {
    storage.appendLog(entries(1, 3), true);
    storage.appendLog(entries(6, 8), true);
    setApplied(2);

    assertTrue(refused().contains("missing ops 4..5"));
  }

  @Test
  void shouldRefuseALogStartingAboveTheAppliedState() {
    storage.appendLog(entries(5, 8), true);
    setApplied(2);

    String message = refused();

    assertTrue(message.contains("ops 3..4 are in neither"), message);
  }

  @Test
  void shouldRefuseAnAppliedStateAboveTheEndOfTheLog() {
    // What a backup applying beyond its persisted op could leave after a power loss (hole 2f).
    storage.appendLog(entries(1, 5), true);
    setApplied(8);

    String message = refused();

    assertTrue(message.contains("ops 6..8 that the log lost"), message);
  }

  @Test
  void shouldMarkAFirstStartAndTellARestartFromIt() {
    RecoveredState first = recover(true);
    assertFalse(first.restarted());
    assertFalse(first.recovering());

    RecoveredState second = recover(true);
    assertTrue(second.restarted());
    assertTrue(second.recovering(), "buffered durability: a crash may have lost acknowledged entries");
    assertFalse(recover(false).recovering(), "fsync durability loses nothing acknowledged");
  }

  @Test
  void shouldNotRecoverAfterACleanShutdownAndConsumeTheMarker() {
    recover(true);
    ReplicaMeta.markCleanShutdown(storage);

    assertFalse(recover(true).recovering());
    assertNull(storage.getMeta(ReplicaMeta.CLEAN_SHUTDOWN));
    assertTrue(recover(true).recovering());
  }

  @Test
  void shouldReadTheViewsBack() {
    ReplicaMeta.storeView(storage, 7);
    ReplicaMeta.storeLastNormalView(storage, 5, false);

    RecoveredState r = recover(false);

    assertEquals(7, r.view());
    assertEquals(5, r.lastNormalView());
  }

  @Test
  void shouldMustCatchUpAfterAWipedInstallUntilTheLastNormalViewClearsTheMarker() {
    storage.appendLog(entries(1, 4), true);
    storage.beginInstall(); // a crash in the middle of an install: the marker is on disk

    RecoveredState wiped = recover(false);
    assertTrue(wiped.mustCatchUp());
    assertEquals(0, wiped.appliedOp());
    assertNotNull(storage.getMeta(MetaKeys.bytes(MetaKeys.CATCHING_UP)), "kept for the next start");

    storage = storage.powerLossKeeping(0); // the marker was synced
    assertTrue(recover(false).mustCatchUp(), "a restart before catching up still must catch up");

    ReplicaMeta.storeLastNormalView(storage, 3, true);
    assertFalse(recover(false).mustCatchUp());
    assertEquals(3, recover(false).lastNormalView());
  }

  @Test
  void shouldMakeWhatAKilledProcessLeftDurableBeforeBuildingOnIt() {
    storage.appendLog(entries(1, 3), false);
    storage = storage.processCrash();

    recover(false);
    storage = storage.powerLossKeeping(0);

    assertEquals(3, storage.lastLogOp());
  }
}
