package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Entry;
import io.choir.server.core.Event;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.ForwardingStorage;
import io.choir.server.storage.MemoryStorage;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * StorageStageTest runs the two lanes on their real threads: group commit reports only durable
 * entries, ack-before-fsync reports them unsynced, and an install's log truncation runs on the log
 * lane after the log writes queued before it, even while one of them is stuck (hole 2f).
 */
class StorageStageTest {
  private static final long WAIT_S = 30;

  private final LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>();

  private KvStateMachine stateMachine;

  private StorageStage stage(MemoryStorage memory, ForwardingStorage storage, boolean fsync) {
    LogLaneRunner logChanges = new LogLaneRunner();
    stateMachine = new KvStateMachine(new ApplyLaneStorage(storage, logChanges), 100, 10);
    stateMachine.load();
    StorageStage stage = new StorageStage(storage, stateMachine, logChanges, fsync, false, 100, 1024,
        events::add, t -> events.add(new Event.StateTransferFailed("fatal: " + t)));
    stage.start();
    return stage;
  }

  private Event next() throws InterruptedException {
    Event e = events.poll(WAIT_S, TimeUnit.SECONDS);
    if (e == null) {
      throw new AssertionError("no event within " + WAIT_S + " s");
    }
    return e;
  }

  @Test
  void shouldReportPersistedOnlyOnceTheEntriesAreSynced() throws Exception {
    MemoryStorage memory = new MemoryStorage();
    ForwardingStorage storage = new ForwardingStorage(memory) { };
    try (StorageStage stage = stage(memory, storage, true)) {
      stage.lanes().persist(RecoveryTest.entries(1, 3), 0);

      assertEquals(new Event.Persisted(3, 0), next());
      assertEquals(0, memory.unsyncedWriteCount());
      assertEquals(1, stage.fsyncs());
    }
  }

  @Test
  void shouldReportPersistedWithoutAnFsyncWhenBrokenOnPurpose() throws Exception {
    // test_break_protocol: ack-before-fsync gives the stage fsync = false.
    MemoryStorage memory = new MemoryStorage();
    ForwardingStorage storage = new ForwardingStorage(memory) { };
    try (StorageStage stage = stage(memory, storage, false)) {
      stage.lanes().persist(RecoveryTest.entries(1, 3), 0);

      assertEquals(new Event.Persisted(3, 0), next());
      assertEquals(0, stage.fsyncs());
      assertTrue(memory.unsyncedWriteCount() > 0, "reported persisted while a power loss would lose it");
    }
  }

  @Test
  void shouldTruncateForAnInstallOnTheLogLaneAfterTheAppendsQueuedBeforeIt() throws Exception {
    MemoryStorage memory = new MemoryStorage();
    CountDownLatch releaseAppend = new CountDownLatch(1);
    List<String> calls = new CopyOnWriteArrayList<>();
    ForwardingStorage storage = new ForwardingStorage(memory) {
      @Override
      public void appendLog(List<Entry> entries, boolean sync) {
        calls.add("append " + entries.get(0).getOp() + " on " + Thread.currentThread().getName());
        try {
          releaseAppend.await(WAIT_S, TimeUnit.SECONDS); // a slow disk
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        super.appendLog(entries, sync);
      }

      @Override
      public void truncateLogAfter(long op, boolean sync) {
        calls.add("truncate after " + op + " on " + Thread.currentThread().getName());
        super.truncateLogAfter(op, sync);
      }
    };
    try (StorageStage stage = stage(memory, storage, true)) {
      // The log lane is stuck writing ops 5..6 (queued before the replica asked for a transfer).
      stage.lanes().persist(RecoveryTest.entries(5, 6), 0);
      CompletableFuture<Void> installed = new CompletableFuture<>();
      KvStateMachine target = stateMachine;
      stage.runApply(() -> {
        target.beginInstall();
        target.installSnapshot(100, 77, List.of());
        installed.complete(null);
      });
      while (calls.isEmpty()) {
        Thread.onSpinWait(); // until the log lane is inside the append
      }
      releaseAppend.countDown();
      installed.get(WAIT_S, TimeUnit.SECONDS);

      assertEquals(List.of("append 5 on choir-log", "truncate after 0 on choir-log"), calls);
      assertEquals(0, memory.lastLogOp());
      assertEquals(100, target.applied());
    }
  }
}
