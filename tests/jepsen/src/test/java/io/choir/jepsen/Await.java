package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Await waits for a condition, not for a time: it checks every few milliseconds and fails, saying what
 * it waited for, when the deadline passes first. The deadline only bounds a broken run; a healthy one
 * goes on as soon as the condition holds, however slow or busy the machine.
 */
final class Await {
  private static final long POLL_MS = 5;

  private Await() {}

  /** until returns once {@code condition} holds, or fails with {@code what} after {@code timeout}. */
  static void until(BooleanSupplier condition, Duration timeout, Supplier<String> what) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - deadline > 0) {
        fail("waited " + timeout.toMillis() + " ms in vain for " + what.get());
      }
      Thread.sleep(POLL_MS);
    }
  }
}
