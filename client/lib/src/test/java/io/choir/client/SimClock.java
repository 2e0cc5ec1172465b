package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import java.util.PriorityQueue;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;

/**
 * SimClock is a simulated clock and timer queue for single-threaded client tests: time moves only when
 * the test steps it, to the next task's time, so a run is a pure function of its seed. Ties run in
 * scheduling order.
 */
final class SimClock implements ClientScheduler {
  private static final class Task implements Timer {
    final long atNs;
    final long seq;
    final Runnable run;
    boolean cancelled;

    Task(long atNs, long seq, Runnable run) {
      this.atNs = atNs;
      this.seq = seq;
      this.run = run;
    }

    @Override
    public void cancel() {
      cancelled = true;
    }
  }

  private final PriorityQueue<Task> queue = new PriorityQueue<>((a, b) ->
      a.atNs != b.atNs ? Long.compare(a.atNs, b.atNs) : Long.compare(a.seq, b.seq));
  private long nowNs = 1_000_000_000L; // not 0: the dispatcher uses 0 as "no attempt under way"
  private long seq;
  private long steps;

  @Override
  public long nanoTime() {
    return nowNs;
  }

  @Override
  public Timer schedule(Runnable task, long delayNs) {
    if (delayNs < 0) {
      throw new IllegalArgumentException("negative delay " + delayNs);
    }
    Task t = new Task(nowNs + delayNs, seq++, task);
    queue.add(t);
    return t;
  }

  /** Runs the next task that is not cancelled; false when none is left. */
  boolean step() {
    Task t;
    do {
      t = queue.poll();
      if (t == null) {
        return false;
      }
    } while (t.cancelled);
    nowNs = t.atNs;
    steps++;
    t.run.run();
    return true;
  }

  /** Runs tasks until done holds, the queue is empty, or simulated time passes limitNs; returns done. */
  boolean runUntil(BooleanSupplier done, long limitNs) {
    while (!done.getAsBoolean()) {
      Task next = peek();
      if (next == null || next.atNs > limitNs) {
        return done.getAsBoolean();
      }
      step();
    }
    return true;
  }

  /** Runs until f completes (or nothing is left to run, or 10 simulated minutes pass). */
  <T> CompletableFuture<T> runUntilDone(CompletableFuture<T> f) {
    runUntil(f::isDone, nowNs + 600_000_000_000L);
    return f;
  }

  /** Runs every task due within the next durationNs, then sets the clock to the end of it. */
  void advance(long durationNs) {
    long end = nowNs + durationNs;
    runUntil(() -> false, end);
    nowNs = Math.max(nowNs, end);
  }

  long steps() {
    return steps;
  }

  private Task peek() {
    while (!queue.isEmpty() && queue.peek().cancelled) {
      queue.poll();
    }
    return queue.peek();
  }
}
