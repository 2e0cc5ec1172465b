package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * BrokenProtocolTest proves that the simulator's checks can fail: with {@code unsafeLocalReads} (the
 * core of the server setting {@code test_unsafe_reads: local}) every replica answers linearizable reads
 * from its own state, and seeded histories must then be found non-linearizable.
 */
class BrokenProtocolTest {
  @Test
  void shouldFindStaleReadsWhenReplicasAnswerReadsLocally() {
    long base = Long.getLong("choir.sim.base", 1L);
    int seeds = 200;
    List<Long> caught = new ArrayList<>();
    for (long seed = base; seed < base + seeds; seed++) {
      SimResult r = new Simulation(SimConfig.fromSeed(seed), b -> b.unsafeLocalReads(true)).run();
      if (!SimChecks.linearizability(r).isEmpty()) {
        caught.add(seed);
      }
    }
    System.out.printf("broken protocol: %d of %d seeds (from %d) non-linearizable, e.g. %s%n", caught.size(), seeds,
        base, caught.subList(0, Math.min(5, caught.size())));
    assertTrue(caught.size() >= 5, "stale local reads went unnoticed: only seeds " + caught + " of " + seeds
        + " from " + base + " were found non-linearizable");
  }
}
