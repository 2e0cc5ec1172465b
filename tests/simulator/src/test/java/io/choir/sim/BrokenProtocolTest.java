package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.core.CoreConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
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
  /** The lease breakages' runs: a stale read needs a client still reading at a cut-off primary, which is rarer. */
  private static final int LEASE_SEEDS = Integer.getInteger("choir.sim.lease_broken_seeds", 1000);

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

  /**
   * A lease that outlives the backups' stickiness (STALE_LEASE: twenty election timeouts, not ended by
   * CheckQuorum): a primary cut off from the backups but not from the clients answers linearizable
   * reads after the others have formed a newer view and acknowledged writes in it. The checker must
   * find a stale read at some seed (LEASE_SEEDS, {@code -Dchoir.sim.lease_broken_seeds=N}).
   */
  @Test
  void shouldFindAStaleReadWhenTheLeaseOutlivesTheBackupsStickiness() {
    List<Long> caught = leaseBreakageCaught(cfg -> new Simulation(cfg, b -> b.breakage(CoreConfig.Breakage.STALE_LEASE)),
        null, "STALE_LEASE");
    assertTrue(!caught.isEmpty(), "STALE_LEASE went unnoticed in " + LEASE_SEEDS + " seeds");
  }

  /** The seeds of LEASE_SEEDS whose broken run is invalid; each must pass as control (when given). */
  private static List<Long> leaseBreakageCaught(Function<SimConfig, Simulation> broken,
      Function<SimConfig, Simulation> control, String label) {
    long base = Long.getLong("choir.sim.base", 1L);
    List<Long> caught = new ArrayList<>();
    List<String> controlFailures = new ArrayList<>();
    for (long seed = base; seed < base + LEASE_SEEDS; seed++) {
      SimConfig cfg = SimConfig.fromSeed(seed);
      SimResult r = broken.apply(cfg).run();
      if (!r.violations().isEmpty() || !SimChecks.linearizability(r).isEmpty()) {
        caught.add(seed);
        if (control != null) {
          SimResult c = control.apply(cfg).run();
          List<String> problems = new ArrayList<>(c.violations());
          problems.addAll(SimChecks.linearizability(c));
          if (!problems.isEmpty()) {
            controlFailures.add("seed " + seed + ": " + String.join("; ", problems));
          }
        }
      }
    }
    System.out.printf("broken protocol (%s): %d of %d seeds from %d invalid, e.g. %s%s%n", label, caught.size(),
        LEASE_SEEDS, base, caught.subList(0, Math.min(5, caught.size())),
        control == null ? "" : "; " + controlFailures.size() + " of them invalid in read_index mode");
    assertTrue(controlFailures.isEmpty(), label + ": the control fails too:\n" + String.join("\n", controlFailures));
    return caught;
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
