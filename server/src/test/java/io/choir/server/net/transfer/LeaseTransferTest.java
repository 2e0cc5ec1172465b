package io.choir.server.net.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.LeaseExpire;
import io.choir.proto.LeaseGrant;
import io.choir.proto.LeaseRecord;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.Put;
import io.choir.proto.StateTransferChunk;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.statemachine.TransferRows;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.StorageSnapshot;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

/**
 * A state transfer carries the lease table: leases streamed after the client rows, in chunks within the
 * byte bound, covered by the digest (a changed lease fails the transfer, nothing installed), installed
 * with the snapshot so that the receiver expires the leases and their keys like the source.
 */
class LeaseTransferTest {
  private final MemoryStorage sourceStorage = new MemoryStorage();
  private final KvStateMachine source = new KvStateMachine(sourceStorage, 64, 4);
  private final MemoryStorage targetStorage = new MemoryStorage();
  private final KvStateMachine target = new KvStateMachine(targetStorage, 64, 4);
  private final ArrayDeque<Runnable> lane = new ArrayDeque<>();

  LeaseTransferTest() {
    source.load();
    target.load();
    List<Entry> entries = new ArrayList<>(TransferWorld.workload(new Random(5), 1, 50, 3, 100));
    long op = entries.size();
    for (int i = 0; i < 40; i++) {
      long id = ++op;
      entries.add(Entry.newBuilder().setOp(id).setTimeMs(1_000).setLeaseGrant(LeaseGrant.newBuilder()
          .setTtlMs(1_000 + i).setMinTtlMs(1_000)).build());
      for (int k = 0; k < 3; k++) {
        entries.add(Entry.newBuilder().setOp(++op).setTimeMs(1_000).setPut(Put.newBuilder()
            .setKey(ByteString.copyFromUtf8("leased/" + id + "/" + k)).setValue(ByteString.copyFromUtf8("v"))
            .setLease(id)).build());
      }
    }
    source.apply(entries, true);
  }

  private StateTransferReceiver receiver() {
    return new StateTransferReceiver("test", TransferWorld.CLUSTER, 2, 0,
        new StateTransferReceiver.Limits(1 << 20, 1000, 4096), InstallTarget.of(target, targetStorage), lane::add,
        () -> { });
  }

  private List<PeerEnvelope> chunks(int maxChunkBytes) {
    StateTransferSender sender = StateTransferSender.open(
        new StateTransferSender.Config(1, TransferWorld.CLUSTER, Set.of(1, 2), maxChunkBytes, 50),
        receiver().request(1), sourceStorage.snapshot());
    lane.clear();
    List<PeerEnvelope> out = new ArrayList<>();
    while (!sender.done()) {
      out.add(sender.next(1));
    }
    return out;
  }

  private void deliver(StateTransferReceiver r, List<PeerEnvelope> chunks) {
    for (PeerEnvelope c : chunks) {
      r.onFrame(c);
      while (!lane.isEmpty()) {
        lane.poll().run();
      }
    }
  }

  private static List<LeaseRecord> table(MemoryStorage storage) {
    try (StorageSnapshot s = storage.snapshot()) {
      return TransferRows.leaseTable(s);
    }
  }

  @Test
  void theLeaseTableArrivesInChunksAndIsInstalled() {
    List<PeerEnvelope> chunks = chunks(512);
    long withLeases = chunks.stream().filter(c -> c.getStateTransferChunk().getLeasesCount() > 0).count();
    assertTrue(withLeases > 1, "leases in " + withLeases + " chunks");
    StateTransferReceiver r = receiver();
    deliver(r, chunks);
    assertEquals(source.applied(), r.result().join().op());
    assertEquals(40, target.leaseCount());
    assertEquals(120, target.leaseKeyCount());
    assertEquals(table(sourceStorage), table(targetStorage));
    // The receiver expires a lease and its keys like the source.
    long first = table(targetStorage).get(0).getId();
    target.apply(List.of(Entry.newBuilder().setOp(target.applied() + 1).setTimeMs(5_000)
        .setLeaseExpire(LeaseExpire.newBuilder().setId(first)).build()), true);
    assertEquals(39, target.leaseCount());
    assertEquals(117, target.leaseKeyCount());
  }

  @Test
  void aMalformedLeaseFailsTheTransferBeforeAnyInstall() {
    List<PeerEnvelope> chunks = new ArrayList<>(chunks(1 << 20));
    PeerEnvelope last = chunks.get(chunks.size() - 1);
    StateTransferChunk c = last.getStateTransferChunk();
    chunks.set(chunks.size() - 1, last.toBuilder().setStateTransferChunk(c.toBuilder()
        .addLeases(LeaseRecord.newBuilder().setId(999).setTtlMs(0))).build());
    StateTransferReceiver r = receiver();
    deliver(r, chunks);
    ExecutionException e = assertThrows(ExecutionException.class, () -> r.result().get());
    assertTrue(e.getCause().getMessage().contains("lease 999 has TTL 0"), e.getCause().getMessage());
    assertEquals(0, target.leaseCount());
  }

  @Test
  void aChangedLeaseFailsTheDigestAndNothingIsInstalled() {
    List<PeerEnvelope> chunks = new ArrayList<>(chunks(1 << 20));
    for (int i = 0; i < chunks.size(); i++) {
      StateTransferChunk c = chunks.get(i).getStateTransferChunk();
      if (c.getLeasesCount() > 0) {
        LeaseRecord longer = c.getLeases(0).toBuilder().setDeadlineMs(c.getLeases(0).getDeadlineMs() + 60_000).build();
        chunks.set(i, chunks.get(i).toBuilder().setStateTransferChunk(c.toBuilder().setLeases(0, longer)).build());
        break;
      }
    }
    StateTransferReceiver r = receiver();
    deliver(r, chunks);
    ExecutionException e = assertThrows(ExecutionException.class, () -> r.result().get());
    assertInstanceOf(TransferFailedException.class, e.getCause());
    assertTrue(e.getCause().getMessage().contains("does not verify"), e.getCause().getMessage());
    assertTrue(target.installing(), "the marker stays: the next fetch starts over");
    assertEquals(0, target.leaseCount());
  }
}
