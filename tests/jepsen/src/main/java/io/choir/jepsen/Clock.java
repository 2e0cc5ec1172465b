package io.choir.jepsen;

import java.util.concurrent.TimeUnit;

/**
 * Clock is the time the workloads pace themselves and spend their budgets by: the system's monotonic
 * clock in a run, a manual one in unit tests (sleeping advances it at once), so that a test of a retry
 * budget or a pause neither waits for real time nor depends on how fast a shared machine runs.
 */
public interface Clock {
  /** SYSTEM is {@link System#nanoTime()} and {@link TimeUnit#sleep}. */
  Clock SYSTEM = new Clock() {
    @Override
    public long nanoTime() {
      return System.nanoTime();
    }

    @Override
    public void sleepNanos(long nanos) throws InterruptedException {
      TimeUnit.NANOSECONDS.sleep(nanos);
    }
  };

  /** nanoTime is a monotonic time in nanoseconds (only differences mean anything). */
  long nanoTime();

  /** sleepNanos waits {@code nanos} (nothing when not positive). */
  void sleepNanos(long nanos) throws InterruptedException;
}
