package io.choir.client;

import java.util.Random;

/**
 * Backoff computes the pause before a retry: exponential from {@link #MIN_DELAY_MS} to a cap, with
 * "equal jitter" (half fixed, half random; AWS Architecture Blog, "Exponential Backoff and Jitter",
 * 2015). The random half spreads the retries of many clients after a primary failure so they do not
 * hit the new primary in one wave; the fixed half keeps a retry from coming back at once.
 *
 * <p>The cap is {@link #MAX_DELAY_MS}, lowered to a quarter of the attempt timeout when that is less
 * ({@link #capMs}): the attempt timeout is derived from the replicas' election timeout, and a client
 * that backs off for longer than half an election timeout would notice a newly elected primary
 * later than the election itself takes (with the defaults: a 1 s attempt timeout, pauses up to 250 ms).
 */
final class Backoff {
  /** Cap of the first retry's pause. */
  static final long MIN_DELAY_MS = 10;
  /** Cap of every later pause: long enough to ride out a view change, short enough to notice its end. */
  static final long MAX_DELAY_MS = 500;

  private Backoff() {}

  /** The cap of the pauses of a client with this attempt timeout: in [MIN_DELAY_MS, MAX_DELAY_MS]. */
  static long capMs(long attemptTimeoutMs) {
    return Math.max(MIN_DELAY_MS, Math.min(MAX_DELAY_MS, attemptTimeoutMs / 4));
  }

  /** {@link #delayMs(int, long, Random)} with the cap {@link #MAX_DELAY_MS}. */
  static long delayMs(int retry, Random random) {
    return delayMs(retry, MAX_DELAY_MS, random);
  }

  /**
   * The pause before retry number {@code retry} (1 for the first retry), in [cap/2, cap] where cap is
   * MIN_DELAY_MS doubled per retry up to maxMs.
   */
  static long delayMs(int retry, long maxMs, Random random) {
    int doublings = Math.min(Math.max(retry - 1, 0), 16);
    long cap = Math.min(maxMs, MIN_DELAY_MS << doublings);
    long half = cap / 2;
    return cap - half + random.nextInt((int) half + 1);
  }
}
