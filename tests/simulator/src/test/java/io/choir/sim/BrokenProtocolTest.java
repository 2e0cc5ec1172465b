package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.core.CoreConfig;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * BrokenProtocolTest proves that the simulator's checks can fail: with a deliberate bug in the core
 * (the server setting {@code test_break_protocol}), seeded histories must be found invalid, by the
 * linearizability checker or by the invariants (ACK_BEFORE_FSYNC: the storage lanes report log writes
 * persisted before their fsync, which the durability check and power losses catch). {@code
 * -Dchoir.sim.base=B} starts at another seed.
 */
class BrokenProtocolTest {
  private static final int SEEDS = 200;

  @ParameterizedTest
  @EnumSource(value = CoreConfig.Breakage.class, names = {"LOCAL_READS", "COMMIT_ALONE", "ACK_BEFORE_FSYNC"})
  void shouldFindInvalidHistoriesWhenTheProtocolIsBroken(CoreConfig.Breakage breakage) {
    long base = Long.getLong("choir.sim.base", 1L);
    List<Long> caught = new ArrayList<>();
    for (long seed = base; seed < base + SEEDS; seed++) {
      SimResult r = new Simulation(SimConfig.fromSeed(seed), b -> b.breakage(breakage)).run();
      if (!r.violations().isEmpty() || !SimChecks.linearizability(r).isEmpty()) {
        caught.add(seed);
      }
    }
    System.out.printf("broken protocol (%s): %d of %d seeds from %d invalid, e.g. %s%n", breakage, caught.size(),
        SEEDS, base, caught.subList(0, Math.min(5, caught.size())));
    assertTrue(caught.size() >= 5, breakage + " went unnoticed: only seeds " + caught + " of " + SEEDS + " from "
        + base + " were found invalid");
  }
}
