package io.choir.checker;

/**
 * Outcome is how an {@link Invocation} ended, which decides how the checker treats it: OK operations must
 * be linearized inside their interval, FAIL ones are dropped, INFO ones may be linearized at any point
 * after their invocation or not at all.
 */
public enum Outcome {
  /** OK: completed and took effect. */
  OK,
  /** FAIL: completed and definitely did not take effect. */
  FAIL,
  /** INFO: unknown, either completed with info or never completed before the history ended. */
  INFO
}
