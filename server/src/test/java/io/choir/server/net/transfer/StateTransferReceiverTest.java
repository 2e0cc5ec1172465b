package io.choir.server.net.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.StateTransferChunk;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.MetaKeys;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

/**
 * StateTransferReceiver and StateTransferSender stepped by hand: the storage lane is a queue this
 * test runs one step at a time, so backpressure and the order of steps are observed exactly.
 */
class StateTransferReceiverTest {
  private final MemoryStorage sourceStorage = new MemoryStorage();
  private final KvStateMachine source = new KvStateMachine(sourceStorage, 64, 4);
  private final MemoryStorage targetStorage = new MemoryStorage();
  private final KvStateMachine target = new KvStateMachine(targetStorage, 64, 4);
  private final ArrayDeque<Runnable> lane = new ArrayDeque<>();
  private int cues;

  StateTransferReceiverTest() {
    source.load();
    target.load();
    source.apply(TransferWorld.workload(new Random(11), 1, 200, 3, 100), true);
  }

  private StateTransferReceiver receiver(long applied, int maxQueued, long maxClientBytes) {
    return new StateTransferReceiver("test", TransferWorld.CLUSTER, 2, applied,
        new StateTransferReceiver.Limits(maxClientBytes, maxQueued, 4096),
        InstallTarget.of(target, targetStorage), lane::add, () -> cues++);
  }

  private List<PeerEnvelope> allChunks(int maxPairs, long requesterApplied) {
    StateTransferSender sender = StateTransferSender.open(
        new StateTransferSender.Config(1, TransferWorld.CLUSTER, Set.of(1, 2), 1 << 20, maxPairs),
        receiver(requesterApplied, 1, 1 << 20).request(1), sourceStorage.snapshot());
    lane.clear();
    List<PeerEnvelope> out = new ArrayList<>();
    while (!sender.done()) {
      out.add(sender.next(1));
    }
    assertThrows(IllegalStateException.class, () -> sender.next(1));
    return out;
  }

  private static TransferFailedException failure(StateTransferReceiver r) {
    ExecutionException e = assertThrows(ExecutionException.class, () -> r.result().get());
    return assertInstanceOf(TransferFailedException.class, e.getCause());
  }

  @Test
  void shouldStopReadingWhileMaxQueuedStepsWaitAndResumeAsEachRuns() {
    List<PeerEnvelope> chunks = allChunks(5, 0);
    assertTrue(chunks.size() > 10, "chunks: " + chunks.size());
    StateTransferReceiver r = receiver(0, 3, 1 << 20);
    int next = 0;
    int maxQueued = 0;
    while (!r.result().isDone()) {
      if (r.wantsRead() && next < chunks.size()) {
        r.onFrame(chunks.get(next++));
        maxQueued = Math.max(maxQueued, r.queuedSteps());
        continue;
      }
      assertFalse(lane.isEmpty(), "not reading only while steps wait");
      int before = cues;
      lane.poll().run();
      assertEquals(before + 1, cues, "every step cues the driver");
    }
    assertEquals(chunks.size(), next);
    // 3 queued stops reading; the frame read at 2 may queue beginInstall and its data: 4.
    assertTrue(maxQueued <= 4, "queued " + maxQueued);
    assertFalse(r.wantsConnection());
    assertEquals(new StateTransferReceiver.Installed(source.applied(), source.checksum()), r.result().join(),
        "no membership row: the source is at the bootstrap membership");
    byte[] all = new byte[0];
    assertEquals(sourceStorage.scan(all, all, 1000), targetStorage.scan(all, all, 1000));
    assertEquals(source.clientCount(), target.clientCount());
  }

  @Test
  void shouldRefuseASnapshotThatIsNotAheadBeforeAnyStorageStep() {
    List<PeerEnvelope> chunks = allChunks(5, source.applied());
    assertEquals(1, chunks.size(), "one empty last chunk");
    assertTrue(chunks.get(0).getStateTransferChunk().getLast());
    StateTransferReceiver r = receiver(source.applied(), 3, 1 << 20);
    r.onFrame(chunks.get(0));
    assertFalse(failure(r).installStarted());
    assertTrue(lane.isEmpty(), "storage is never touched");
    assertFalse(r.wantsConnection());
  }

  @Test
  void shouldFailOnAnInvalidStreamAndNotRunTheStepsLeft() {
    List<PeerEnvelope> chunks = allChunks(5, 0);
    StateTransferChunk second = chunks.get(1).getStateTransferChunk();
    KeyValue backwards = second.getKvs(0).toBuilder().setKey(ByteString.copyFromUtf8("a")).build();
    PeerEnvelope bad = chunks.get(1).toBuilder()
        .setStateTransferChunk(second.toBuilder().setKvs(0, backwards)).build();
    StateTransferReceiver r = receiver(0, 8, 1 << 20);
    r.onFrame(chunks.get(0));
    r.onFrame(bad);
    TransferFailedException e = failure(r);
    assertTrue(e.getMessage().contains("strictly ascending"), e.getMessage());
    assertFalse(e.installStarted(), "no step ran yet");
    while (!lane.isEmpty()) {
      lane.poll().run(); // beginInstall and the first data: they do nothing once failed
    }
    assertNull(targetStorage.getMeta(MetaKeys.bytes(MetaKeys.INSTALLING)));
    assertFalse(target.installing());
    r.onFrame(chunks.get(2)); // ignored
    assertTrue(lane.isEmpty());
  }

  @Test
  void shouldFailOnAnotherClusterIdOrABodyThatIsNotAChunk() {
    List<PeerEnvelope> chunks = allChunks(5, 0);
    StateTransferReceiver other = receiver(0, 8, 1 << 20);
    other.onFrame(chunks.get(0).toBuilder().setClusterId(TransferWorld.CLUSTER + 1).build());
    assertTrue(failure(other).getMessage().contains("cluster id"));
    StateTransferReceiver notChunk = receiver(0, 8, 1 << 20);
    notChunk.onFrame(notChunk.request(1));
    assertTrue(failure(notChunk).getMessage().contains("not a state transfer chunk"));
  }

  @Test
  void shouldRefuseAClientTableAboveItsByteBound() {
    List<PeerEnvelope> chunks = allChunks(1000, 0);
    long clientBytes = 0;
    for (PeerEnvelope c : chunks) {
      for (ClientRecord record : c.getStateTransferChunk().getClientsList()) {
        clientBytes += record.getSerializedSize();
      }
    }
    assertTrue(clientBytes > 0);
    StateTransferReceiver r = receiver(0, 8, clientBytes - 1);
    chunks.forEach(r::onFrame);
    assertTrue(failure(r).getMessage().contains("maxClientTableBytes"));
  }

  @Test
  void shouldReportTheInstallStartedWhenTheConnectionDropsAfterBeginInstallRan() {
    List<PeerEnvelope> chunks = allChunks(5, 0);
    StateTransferReceiver r = receiver(0, 8, 1 << 20);
    r.onFrame(chunks.get(0));
    lane.poll().run(); // beginInstall
    r.onClosed();
    assertTrue(failure(r).installStarted());
    assertTrue(target.installing());
    assertEquals(1, targetStorage.getMeta(MetaKeys.bytes(MetaKeys.INSTALLING)).length);
  }
}
