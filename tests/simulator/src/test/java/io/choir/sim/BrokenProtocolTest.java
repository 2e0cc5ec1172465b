package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.core.CoreConfig;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
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
  @EnumSource(value = CoreConfig.Breakage.class, names = {"LOCAL_READS", "COMMIT_ALONE", "ACK_BEFORE_FSYNC",
      "STALE_LEASE"})
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

  /**
   * Lease reads on clocks that drift beyond lease_clock_drift_ppm (rates from 0.5 to 1 of real time,
   * {@link Simulation.SimBreakage#CLOCK_DRIFT_BEYOND_BOUND}): a primary whose clock runs slow keeps
   * its lease after the backups, on true clocks, have formed a newer view, and the linearizability
   * checker must find a stale read at some seed. Each seed found is run again with the same clocks in
   * read_index mode, which does not depend on clock rates and must pass: what is caught is the lease.
   */
  @Test
  void shouldFindAStaleLeaseReadWhenClocksDriftBeyondTheBound() {
    long base = Long.getLong("choir.sim.base", 1L);
    List<Long> caught = new ArrayList<>();
    List<String> readIndexFailures = new ArrayList<>();
    for (long seed = base; seed < base + SEEDS; seed++) {
      SimConfig cfg = SimConfig.fromSeed(seed);
      SimResult r = new Simulation(cfg, Simulation.SimBreakage.CLOCK_DRIFT_BEYOND_BOUND).run();
      if (!r.violations().isEmpty() || !SimChecks.linearizability(r).isEmpty()) {
        caught.add(seed);
        SimResult control = new Simulation(cfg, b -> b.readMode(CoreConfig.ReadMode.READ_INDEX),
            Simulation.SimBreakage.CLOCK_DRIFT_BEYOND_BOUND).run();
        List<String> problems = new ArrayList<>(control.violations());
        problems.addAll(SimChecks.linearizability(control));
        if (!problems.isEmpty()) {
          readIndexFailures.add("seed " + seed + ": " + String.join("; ", problems));
        }
      }
    }
    System.out.printf("clock drift beyond the bound: %d of %d seeds from %d invalid with lease reads, e.g. %s;"
        + " %d of them invalid in read_index mode%n", caught.size(), SEEDS, base,
        caught.subList(0, Math.min(5, caught.size())), readIndexFailures.size());
    assertTrue(readIndexFailures.isEmpty(), "read_index fails on drifting clocks:\n" + String.join("\n", readIndexFailures));
    assertTrue(!caught.isEmpty(), "lease reads on clocks beyond the drift bound went unnoticed in " + SEEDS
        + " seeds from " + base);
  }

  /**
   * A replica's client endpoint that drops outcome_unknown (a primary stepping down answers the writes
   * it had logged with a plain NOT_PRIMARY, as before hole 2a was closed): the client then ends some
   * calls in UnavailableException, "never executed", for writes that did execute, and the history
   * (which records that promise as a fail) must be found invalid. The runs are of the step-down plan
   * ({@link SimConfig#stepDownsFromSeed}); each one must also pass without the breakage, so what is
   * caught is the breakage and nothing else.
   */
  @Test
  void shouldFindInvalidHistoriesWhenAReplicaHidesThatALoggedRequestMayStillCommit() {
    long base = Long.getLong("choir.sim.base", 1L);
    List<Long> caught = new ArrayList<>();
    List<String> honestFailures = new ArrayList<>();
    long stripped = 0;
    for (long seed = base; seed < base + SEEDS; seed++) {
      SimConfig cfg = SimConfig.stepDownsFromSeed(seed);
      SimResult honest = new Simulation(cfg).run();
      List<String> problems = new ArrayList<>(honest.violations());
      problems.addAll(SimChecks.linearizability(honest));
      if (!problems.isEmpty()) {
        honestFailures.add("seed " + seed + " (" + cfg + "): " + String.join("; ", problems));
      }
      SimResult r = new Simulation(cfg, Simulation.SimBreakage.PLAIN_NOT_PRIMARY).run();
      stripped += r.stats().getOrDefault("replies_outcome_unknown", 0L);
      if (!r.violations().isEmpty() || !SimChecks.linearizability(r).isEmpty()) {
        caught.add(seed);
      }
    }
    System.out.printf("broken protocol (PLAIN_NOT_PRIMARY): %d of %d step-down seeds from %d invalid, e.g. %s (%d"
        + " outcome_unknown flags dropped); without the breakage %d invalid%n", caught.size(), SEEDS, base,
        caught.subList(0, Math.min(5, caught.size())), stripped, honestFailures.size());
    assertTrue(honestFailures.isEmpty(), "step-down seeds fail without the breakage:\n"
        + String.join("\n", honestFailures));
    assertTrue(caught.size() >= 5, "PLAIN_NOT_PRIMARY went unnoticed: only seeds " + caught + " of " + SEEDS
        + " from " + base + " were found invalid");
  }
}
