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
 * StorageStage is the one thread that writes to storage. It takes tasks from the replica loop in order
 * and groups everything that queued up while the previous write (and its fsync) ran: consecutive
 * persist tasks become one log write with one fsync (group commit, DESIGN.md "Normal case" step 3),
 * consecutive apply tasks one state-machine WriteBatch. It reports back with Event.Persisted and
 * Event.Applied. Any storage failure is fatal (fail-stop): the replica must not go on as if an entry it
 * could not write were durable.
 */
final class StorageStage implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StorageStage.class);

  private enum Kind {
    PERSIST,
    APPLY,
    TRUNCATE,
    RUN,
    STOP
  }

  private record Task(Kind kind, List<Entry> entries, long op, Runnable action) {}

  private final Storage storage;
  private final KvStateMachine stateMachine;
  private final boolean fsync;
  private final int maxBatchEntries;
  private final Consumer<Event> events;
  private final Consumer<Throwable> onFatal;
  private final BlockingQueue<Task> tasks;
  private final Thread thread;
  private volatile long fsyncs;

  StorageStage(Storage storage, KvStateMachine stateMachine, boolean fsync, int maxBatchEntries,
      int queueCapacity, Consumer<Event> events, Consumer<Throwable> onFatal) {
    this.storage = storage;
    this.stateMachine = stateMachine;
    this.fsync = fsync;
    this.maxBatchEntries = maxBatchEntries;
    this.events = events;
    this.onFatal = onFatal;
    this.tasks = new ArrayBlockingQueue<>(queueCapacity);
    this.thread = new Thread(this::run, "choir-storage");
    this.thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  /**
   * Queues entries to append to the log (blocks only if the bounded task queue is full); epoch is the
   * core's log epoch, reported back in Event.Persisted.
   */
  void persist(List<Entry> entries, long epoch) {
    put(new Task(Kind.PERSIST, List.copyOf(entries), epoch, null));
  }

  /** Queues removal of every log entry above op (a new view replaced an uncommitted suffix). */
  void truncateLogAfter(long op) {
    put(new Task(Kind.RUN, List.of(), 0, () -> storage.truncateLogAfter(op, fsync)));
  }

  /** Queues committed entries to apply. */
  void apply(List<Entry> entries) {
    put(new Task(Kind.APPLY, List.copyOf(entries), 0, null));
  }

  /** Queues removal of the log below op. */
  void truncateLogBefore(long op) {
    put(new Task(Kind.TRUNCATE, List.of(), op, null));
  }

  /** Runs action on the storage thread, in order with the other tasks (e.g. installing a snapshot). */
  void run(Runnable action) {
    put(new Task(Kind.RUN, List.of(), 0, action));
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
        drained.add(tasks.take());
        tasks.drainTo(drained);
        int i = 0;
        while (i < drained.size()) {
          Task t = drained.get(i);
          switch (t.kind()) {
            case STOP -> {
              return;
            }
            case TRUNCATE -> {
              storage.truncateLogBefore(t.op(), false);
              i++;
            }
            case RUN -> {
              t.action().run();
              i++;
            }
            case PERSIST, APPLY -> {
              int j = i;
              List<Entry> group = new ArrayList<>();
              while (j < drained.size() && drained.get(j).kind() == t.kind() && drained.get(j).op() == t.op()
                  && (group.isEmpty() || group.size() + drained.get(j).entries().size() <= maxBatchEntries)) {
                group.addAll(drained.get(j).entries());
                j++;
              }
              if (t.kind() == Kind.PERSIST) {
                persistGroup(group, t.op());
              } else {
                applyGroup(group);
              }
              i = j;
            }
          }
        }
        drained.clear();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable t) {
      log.atError().setCause(t).log("storage failed; stopping the replica (fail-stop)");
      onFatal.accept(t);
    }
  }

  private void persistGroup(List<Entry> group, long epoch) {
    storage.appendLog(group, fsync);
    if (fsync) {
      fsyncs++;
    }
    events.accept(new Event.Persisted(group.get(group.size() - 1).getOp(), epoch));
  }

  private void applyGroup(List<Entry> group) {
    List<Response> replies = stateMachine.apply(group, false);
    long last = group.get(group.size() - 1).getOp();
    events.accept(new Event.Applied(group.get(0).getOp(), last, replies, stateMachine.checksum()));
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
      if (!tasks.offer(new Task(Kind.STOP, List.of(), 0, null), timeoutMs, TimeUnit.MILLISECONDS)) {
        thread.interrupt();
      }
      thread.join(timeoutMs);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
