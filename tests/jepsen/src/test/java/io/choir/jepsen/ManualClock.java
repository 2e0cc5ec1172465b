package io.choir.jepsen;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/** ManualClock is a {@link Clock} for tests: it stands still until something sleeps, which advances it at once. */
final class ManualClock implements Clock {
  private final AtomicLong now = new AtomicLong();

  @Override
  public long nanoTime() {
    return now.get();
  }

  @Override
  public void sleepNanos(long nanos) {
    if (nanos > 0) {
      now.addAndGet(nanos);
    }
  }

  /** ticking is a recorder clock that moves 1 µs at every read: distinct, replayable timestamps. */
  static LongSupplier ticking() {
    AtomicLong t = new AtomicLong();
    return () -> t.addAndGet(1_000);
  }
}
