package io.choir.client;

import java.util.Random;

/**
 * Backoff computes the pause before a retry: exponential from {@link #MIN_DELAY_MS} to
 * {@link #MAX_DELAY_MS}, with "equal jitter" (half fixed, half random; AWS Architecture Blog,
 * "Exponential Backoff and Jitter", 2015). The random half spreads the retries of many clients after a
 * primary failure so they do not hit the new primary in one wave; the fixed half keeps a retry from
 * coming back at once.
 */
final class Backoff {
  /** Cap of the first retry's pause. */
  static final long MIN_DELAY_MS = 10;
  /** Cap of every later pause: long enough to ride out a view change, short enough to notice its end. */
  static final long MAX_DELAY_MS = 500;

  private Backoff() {}

  /**
   * The pause before retry number {@code retry} (1 for the first retry), in [cap/2, cap] where cap is
   * MIN_DELAY_MS doubled per retry up to MAX_DELAY_MS.
   */
  static long delayMs(int retry, Random random) {
    int doublings = Math.min(Math.max(retry - 1, 0), 16);
    long cap = Math.min(MAX_DELAY_MS, MIN_DELAY_MS << doublings);
    long half = cap / 2;
    return cap - half + random.nextInt((int) half + 1);
  }
}
