package io.choir.server.replica;

import io.choir.server.core.Event;
import io.choir.server.metrics.StorageTimers;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * StorageStage runs the storage stage's two lanes on two threads, each draining its own bounded queue
 * (queueCapacity tasks; a full queue blocks the replica loop, which the core's flow-control window
 * keeps from happening in practice): "choir-log" steps a {@link LogLane}, "choir-apply" an {@link
 * ApplyLane}. Each thread takes everything queued at once, works it off unit by unit, and takes again.
 *
 * <p>Applying never waits for an fsync in progress, and an fsync is never split by applies (the first
 * version had one thread for both, and the benchmark showed fsyncs split into twice as many as
 * needed). The one wait between them: an install's log truncation runs on the log lane, behind the
 * log writes queued before it, while the apply lane waits ({@link ApplyLaneStorage}). Any storage
 * failure is fatal (fail-stop): the replica must not go on as if an entry it could not write were
 * durable.
 */
final class StorageStage implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StorageStage.class);
  /** Sentinel that stops a lane's thread once everything before it is done. */
  private static final StorageLanes.Run STOP = new StorageLanes.Run("stop", () -> { });

  private final LaneThread logThread;
  private final LaneThread applyThread;
  private final LogLane logLane;
  private final StorageLanes lanes;
  private final LogLaneRunner logChanges;
  private final Consumer<Throwable> onFatal;
  private final StorageTimers timers;

  /**
   * @param fsync log writes are synced before they are reported persisted
   * @param combinedSync a log write and its fsync are one synced write (see LogLane)
   * @param logChanges runs the state machine's log changes; told to run them on the log lane at {@link #start}
   */
  StorageStage(Storage storage, KvStateMachine stateMachine, LogLaneRunner logChanges, boolean fsync,
      boolean combinedSync, int maxBatchEntries, int queueCapacity, Consumer<Event> events,
      Consumer<Throwable> onFatal) {
    this(storage, stateMachine, logChanges, fsync, combinedSync, maxBatchEntries, queueCapacity, events, onFatal,
        StorageTimers.none());
  }

  /** As above, timing each log write, fsync and apply with timers. */
  StorageStage(Storage storage, KvStateMachine stateMachine, LogLaneRunner logChanges, boolean fsync,
      boolean combinedSync, int maxBatchEntries, int queueCapacity, Consumer<Event> events,
      Consumer<Throwable> onFatal, StorageTimers timers) {
    this.onFatal = onFatal;
    this.logChanges = logChanges;
    this.timers = timers;
    this.logLane = new LogLane(storage, fsync, combinedSync, maxBatchEntries, events);
    ApplyLane applyLane = new ApplyLane(stateMachine, maxBatchEntries, events);
    this.logThread = new LaneThread("choir-log", queueCapacity, logLane::take, logLane::hasWork, logLane::step,
        logLane::next);
    this.applyThread = new LaneThread("choir-apply", queueCapacity, applyLane::take, applyLane::hasWork,
        applyLane::step, applyLane::next);
    this.lanes = new StorageLanes(storage, fsync, logThread::put, applyThread::put, events);
  }

  /** Starts both lanes; the state machine's log changes run on the log lane from now on. */
  void start() {
    logChanges.laneStarted(this::runOnLogLaneAndWait);
    logThread.thread.start();
    applyThread.thread.start();
  }

  /** The lanes' front, for the effect executor. */
  StorageLanes lanes() {
    return lanes;
  }

  /** Runs action on the apply lane, in order with the applies (e.g. a step of a state transfer). */
  void runApply(Runnable action) {
    lanes.runApply("install a state transfer", action);
  }

  long fsyncs() {
    return logLane.fsyncs();
  }

  /** Tasks queued for the log lane and not yet taken (any thread). */
  int logQueued() {
    return logThread.tasks.size();
  }

  /** Tasks queued for the apply lane and not yet taken (any thread). */
  int applyQueued() {
    return applyThread.tasks.size();
  }

  /**
   * Runs action on the log lane and waits for it (the apply lane, for an install's log truncation).
   * Fails when the log lane has stopped, rather than waiting forever.
   */
  private void runOnLogLaneAndWait(String what, Runnable action) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    logThread.put(new StorageLanes.Run(what, () -> {
      try {
        action.run();
        done.complete(null);
      } catch (RuntimeException | Error e) {
        done.completeExceptionally(e);
        throw e;
      }
    }));
    while (true) {
      try {
        done.get(100, TimeUnit.MILLISECONDS);
        return;
      } catch (TimeoutException e) {
        if (!logThread.thread.isAlive()) {
          throw new StorageException("cannot " + what + ": the log lane has stopped");
        }
      } catch (ExecutionException e) {
        throw new StorageException("cannot " + what + ": " + e.getCause().getMessage(), e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new StorageException("interrupted while waiting to " + what);
      }
    }
  }

  /** One thread stepping one lane over its bounded queue. */
  private final class LaneThread {
    final BlockingQueue<StorageLanes.Task> tasks;
    final Thread thread;
    final Consumer<List<StorageLanes.Task>> take;
    final BooleanSupplier hasWork;
    final Runnable step;
    final Supplier<StorageLanes.Unit> next;

    LaneThread(String name, int capacity, Consumer<List<StorageLanes.Task>> take, BooleanSupplier hasWork,
        Runnable step, Supplier<StorageLanes.Unit> next) {
      this.tasks = new ArrayBlockingQueue<>(capacity);
      this.take = take;
      this.hasWork = hasWork;
      this.step = step;
      this.next = next;
      this.thread = new Thread(this::loop, name);
      this.thread.setDaemon(true);
    }

    /** One unit of work; log writes, fsyncs and applies are timed (one sample per group of entries). */
    private void timedStep() {
      StorageLanes.Unit unit = next.get();
      long start = System.nanoTime();
      step.run();
      long nanos = System.nanoTime() - start;
      switch (unit) {
        case WRITE -> timers.logWrite(nanos);
        case SYNC -> timers.fsync(nanos);
        case APPLY -> timers.apply(nanos);
        default -> { }
      }
    }

    void put(StorageLanes.Task t) {
      try {
        tasks.put(t);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while queueing a storage task", e);
      }
    }

    private void loop() {
      List<StorageLanes.Task> drained = new ArrayList<>();
      try {
        while (true) {
          drained.add(tasks.take());
          tasks.drainTo(drained);
          int stop = drained.indexOf(STOP);
          take.accept(stop < 0 ? drained : drained.subList(0, stop));
          while (hasWork.getAsBoolean()) {
            timedStep();
          }
          if (stop >= 0) {
            return;
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
        if (!tasks.offer(STOP, timeoutMs, TimeUnit.MILLISECONDS)) {
          thread.interrupt();
        }
        thread.join(timeoutMs);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Finishes every queued task on both lanes, then stops them (waits at most timeoutMs each). */
  @Override
  public void close() {
    close(5000);
  }

  void close(long timeoutMs) {
    applyThread.close(timeoutMs);
    logThread.close(timeoutMs);
  }
}
