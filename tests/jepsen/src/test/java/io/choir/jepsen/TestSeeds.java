package io.choir.jepsen;

/**
 * TestSeeds is how the randomized unit tests of the harness take their seed: from a system property with
 * a fixed default (a plain build runs the same ops and faults every time), printed, and named with the
 * flag that replays it in every failure message. Runs driven by {@code runInterleaved} replay exactly;
 * runs on real worker threads replay the op mix and the faults, not the interleaving, so their assertions
 * hold for every interleaving.
 */
final class TestSeeds {
  /** PROPERTY sets the seed: {@code -Dchoir.jepsen.test.seed=N}. */
  static final String PROPERTY = "choir.jepsen.test.seed";

  private TestSeeds() {}

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
