package io.choir.checker;

/**
 * Seeds is how the randomized tests of this module take their seed: from a system property, with a fixed
 * default (so a plain build always runs the same histories and a failure on CI replays on any machine),
 * printed at the start, and named with the command-line flag that replays it in every failure message.
 */
final class Seeds {
  /** PROPERTY is the system property that sets the seed: {@code -Dchoir.checker.seed=N}. */
  static final String PROPERTY = "choir.checker.seed";

  private Seeds() {}

  /** seed is the value of {@link #PROPERTY}, else {@code fallback}; prints it for {@code test}. */
  static long seed(String test, long fallback) {
    long seed = Long.getLong(PROPERTY, fallback);
    System.out.println(test + " " + replay(seed));
    return seed;
  }

  /** replay is the text a failure message starts with: the seed and how to run with it again. */
  static String replay(long seed) {
    return "seed " + seed + " (replay with -D" + PROPERTY + "=" + seed + ")";
  }
}
