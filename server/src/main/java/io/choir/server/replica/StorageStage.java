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
 * StorageStage writes to storage on two threads, each draining its own bounded queue in order:
 *
 * <ul>
 *   <li>the log lane ("choir-log") appends entries and syncs them, truncates the log and records the
 *       last normal view. Every persist task that queued up while the previous fsync ran becomes one log
 *       write with one fsync (group commit, DESIGN.md "Normal case" step 3), then reports
 *       Event.Persisted.
 *   <li>the apply lane ("choir-apply") applies committed entries to the state machine (one WriteBatch
 *       per drained group) and reports Event.Applied; state-transfer installs run there too, in order
 *       with the applies.
 * </ul>
 *
 * Applying never waits for an fsync in progress, and an fsync is never split by applies: a committed
 * entry is durable at a majority already, so the two need no ordering between them. Any storage
 * failure is fatal (fail-stop): the replica must not go on as if an entry it could not write were
 * durable.
 */
final class StorageStage implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StorageStage.class);

  private enum Kind {
    PERSIST,
    APPLY,
    RUN,
    STOP
  }

  private record Task(Kind kind, List<Entry> entries, long epoch, Runnable action) {}

  private final Storage storage;
  private final KvStateMachine stateMachine;
  private final boolean fsync;
  private final int maxBatchEntries;
  private final Consumer<Event> events;
  private final Consumer<Throwable> onFatal;
  private final Lane logLane;
  private final Lane applyLane;
  private volatile long fsyncs;

  StorageStage(Storage storage, KvStateMachine stateMachine, boolean fsync, int maxBatchEntries,
      int queueCapacity, Consumer<Event> events, Consumer<Throwable> onFatal) {
    this.storage = storage;
    this.stateMachine = stateMachine;
    this.fsync = fsync;
    this.maxBatchEntries = maxBatchEntries;
    this.events = events;
    this.onFatal = onFatal;
    this.logLane = new Lane("choir-log", queueCapacity);
    this.applyLane = new Lane("choir-apply", queueCapacity);
  }

  void start() {
    logLane.thread.start();
    applyLane.thread.start();
  }

  /**
   * Queues entries to append to the log (blocks only if the bounded queue is full); epoch is the core's
   * log epoch, reported back in Event.Persisted.
   */
  void persist(List<Entry> entries, long epoch) {
    logLane.put(new Task(Kind.PERSIST, List.copyOf(entries), epoch, null));
  }

  /** Queues removal of every log entry above op (a new view replaced an uncommitted suffix). */
  void truncateLogAfter(long op) {
    logLane.put(new Task(Kind.RUN, List.of(), 0, () -> storage.truncateLogAfter(op, fsync)));
  }

  /** Queues removal of the log below op. */
  void truncateLogBefore(long op) {
    logLane.put(new Task(Kind.RUN, List.of(), 0, () -> storage.truncateLogBefore(op, false)));
  }

  /** Runs action on the log lane, after every log write queued before it (e.g. the last normal view). */
  void run(Runnable action) {
    logLane.put(new Task(Kind.RUN, List.of(), 0, action));
  }

  /** Queues committed entries to apply. */
  void apply(List<Entry> entries) {
    applyLane.put(new Task(Kind.APPLY, List.copyOf(entries), 0, null));
  }

  /** Runs action on the apply lane, in order with the applies (e.g. installing a state transfer). */
  void runApply(Runnable action) {
    applyLane.put(new Task(Kind.RUN, List.of(), 0, action));
  }

  long fsyncs() {
    return fsyncs;
  }

  /** One thread draining one bounded queue. */
  private final class Lane {
    final BlockingQueue<Task> tasks;
    final Thread thread;

    Lane(String name, int capacity) {
      this.tasks = new ArrayBlockingQueue<>(capacity);
      this.thread = new Thread(this::loop, name);
      this.thread.setDaemon(true);
    }

    void put(Task t) {
      try {
        tasks.put(t);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while queueing a storage task", e);
      }
    }

    private void loop() {
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
              case RUN -> {
                t.action().run();
                i++;
              }
              case PERSIST, APPLY -> {
                int j = i;
                List<Entry> group = new ArrayList<>();
                while (j < drained.size() && drained.get(j).kind() == t.kind()
                    && drained.get(j).epoch() == t.epoch()
                    && (group.isEmpty() || group.size() + drained.get(j).entries().size() <= maxBatchEntries)) {
                  group.addAll(drained.get(j).entries());
                  j++;
                }
                if (t.kind() == Kind.PERSIST) {
                  persistGroup(group, t.epoch());
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
        log.atError().setCause(t).addKeyValue("lane", thread.getName())
            .log("storage failed; stopping the replica (fail-stop)");
        onFatal.accept(t);
      }
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

  /** Finishes every queued task on both lanes, then stops them (waits at most timeoutMs each). */
  @Override
  public void close() {
    close(5000);
  }

  void close(long timeoutMs) {
    applyLane.close(timeoutMs);
    logLane.close(timeoutMs);
  }
}
