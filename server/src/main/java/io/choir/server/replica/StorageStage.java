package io.choir.server.replica;

import io.choir.proto.Entry;
import io.choir.proto.Response;
import io.choir.server.core.Event;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Storage;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * StorageStage is the one thread that writes to storage. It takes persist and apply tasks from the
 * replica loop, and groups everything that queued up while the previous write (and its fsync) ran:
 * consecutive persist tasks become one log write with one fsync (group commit, DESIGN.md "Normal case"
 * step 3), consecutive apply tasks one state-machine WriteBatch. It reports back with Event.Persisted and
 * Event.Applied. Any storage failure is fatal (fail-stop): the replica must not go on as if an entry it
 * could not write were durable.
 */
final class StorageStage implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StorageStage.class);

  private record Task(boolean persist, List<Entry> entries) {}

  private static final Task STOP = new Task(false, List.of());

  private final Storage storage;
  private final KvStateMachine stateMachine;
  private final boolean fsync;
  private final int maxBatchEntries;
  private final int logRetentionOps;
  private final Consumer<Event> events;
  private final Consumer<Throwable> onFatal;
  private final BlockingQueue<Task> tasks;
  private final Thread thread;
  private volatile long fsyncs;
  private long lastTruncateAt;

  StorageStage(Storage storage, KvStateMachine stateMachine, boolean fsync, int maxBatchEntries,
      int logRetentionOps, int queueCapacity, Consumer<Event> events, Consumer<Throwable> onFatal) {
    this.storage = storage;
    this.stateMachine = stateMachine;
    this.fsync = fsync;
    this.maxBatchEntries = maxBatchEntries;
    this.logRetentionOps = logRetentionOps;
    this.events = events;
    this.onFatal = onFatal;
    this.tasks = new ArrayBlockingQueue<>(queueCapacity);
    this.thread = new Thread(this::run, "choir-storage");
    this.thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  /** Queues entries to append to the log (blocks only if the bounded task queue is full). */
  void persist(List<Entry> entries) {
    put(new Task(true, List.copyOf(entries)));
  }

  /** Queues committed entries to apply. */
  void apply(List<Entry> entries) {
    put(new Task(false, List.copyOf(entries)));
  }

  long fsyncs() {
    return fsyncs;
  }

  private void put(Task t) {
    try {
      tasks.put(t);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while queueing a storage task", e);
    }
  }

  private void run() {
    List<Task> drained = new ArrayList<>();
    try {
      while (true) {
        Task first = tasks.take();
        drained.add(first);
        tasks.drainTo(drained);
        boolean stop = false;
        int i = 0;
        while (i < drained.size()) {
          Task t = drained.get(i);
          if (t == STOP) {
            stop = true;
            break;
          }
          int j = i;
          List<Entry> group = new ArrayList<>();
          while (j < drained.size() && drained.get(j) != STOP && drained.get(j).persist() == t.persist()
              && (group.isEmpty() || group.size() + drained.get(j).entries().size() <= maxBatchEntries)) {
            group.addAll(drained.get(j).entries());
            j++;
          }
          if (t.persist()) {
            persistGroup(group);
          } else {
            applyGroup(group);
          }
          i = j;
        }
        drained.clear();
        if (stop) {
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable t) {
      log.atError().setCause(t).log("storage failed; stopping the replica (fail-stop)");
      onFatal.accept(t);
    }
  }

  private void persistGroup(List<Entry> group) {
    storage.appendLog(group, fsync);
    if (fsync) {
      fsyncs++;
    }
    events.accept(new Event.Persisted(group.get(group.size() - 1).getOp()));
  }

  private void applyGroup(List<Entry> group) {
    List<Response> replies = stateMachine.apply(group, false);
    long last = group.get(group.size() - 1).getOp();
    events.accept(new Event.Applied(group.get(0).getOp(), last, replies, stateMachine.checksum()));
    // Keep log_retention_ops applied entries for repair and catch-up; truncate in steps, not per batch.
    if (last - lastTruncateAt >= Math.max(1000, logRetentionOps / 10) && last > logRetentionOps) {
      storage.truncateLogBefore(last - logRetentionOps, false);
      lastTruncateAt = last;
    }
  }

  /** Finishes every queued task, then stops the thread (waits at most timeoutMs). */
  @Override
  public void close() {
    close(5000);
  }

  void close(long timeoutMs) {
    if (!thread.isAlive()) {
      return;
    }
    try {
      if (!tasks.offer(STOP, timeoutMs, TimeUnit.MILLISECONDS)) {
        thread.interrupt();
      }
      thread.join(timeoutMs);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
