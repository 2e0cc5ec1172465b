package io.choir.client.spi;

/**
 * ClientScheduler is the client library's clock and timers. The default one is Netty's event loops and
 * {@link System#nanoTime()}; a deterministic simulator passes its own, so that the real client runs on
 * simulated time in one thread (FoundationDB-style simulation; STYLE.md habit 2: time is an argument).
 *
 * <p>Contract: {@link #nanoTime()} never goes backwards; a scheduled task runs at most once, not before
 * its delay has passed on this clock, and never inside the {@code schedule} call itself (the client
 * stores the returned handle after scheduling, and a task that ran inline would find it missing).
 * Tasks may run on any thread, but a single-threaded scheduler is fine: the client never waits for a
 * task inside another one.
 *
 * <p>For deterministic simulation and tests; not a stable API.
 */
public interface ClientScheduler {
  /**
   * The current time of this clock, in nanoseconds from an arbitrary origin.
   *
   * @return the time, never lower than an earlier answer
   */
  long nanoTime();

  /**
   * Runs task once after delayNs nanoseconds of this clock.
   *
   * @param task what to run
   * @param delayNs the delay, at least 0
   * @return a handle that cancels the task if it has not run yet
   * @throws java.util.concurrent.RejectedExecutionException when the scheduler is shut down
   */
  Timer schedule(Runnable task, long delayNs);

  /** Timer is a scheduled task that can still be called off. */
  interface Timer {
    /** Cancels the task if it has not started; does nothing otherwise. */
    void cancel();
  }
}
