package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * WatchLeaseSimulationTest runs the seeds' mixed-fault runs with watchers and lease holders added
 * ({@link SimConfig#watchLeasesFromSeed}): the watch checker ({@link SimWatches}) and the lease checker
 * ({@link SimLeases}) on top of every usual check (invariants, convergence, linearizability).
 * {@code -Dchoir.sim.seedsWL=N} runs N seeds from {@code -Dchoir.sim.base} (default 1);
 * {@code -Dchoir.sim.seedWL=S} replays one. It also proves both checkers fail on a deliberate bug.
 */
class WatchLeaseSimulationTest {
  @Test
  void everyWatcherSeesTheCommittedChangesAndNoLeaseEndsEarlyOrTooLate() {
    String one = System.getProperty("choir.sim.seedWL", "");
    long base = Long.getLong("choir.sim.base", 1L);
    int count = Integer.getInteger("choir.sim.seedsWL", 300);
    List<Long> seeds = new ArrayList<>();
    if (!one.isBlank()) {
      seeds.add(Long.parseLong(one.trim()));
    } else {
      for (int i = 0; i < count; i++) {
        seeds.add(base + i);
      }
    }
    long start = System.nanoTime();
    TreeMap<String, Long> totals = new TreeMap<>();
    long maxLate = Long.MIN_VALUE;
    long maxLateQuiet = Long.MIN_VALUE;
    List<String> failures = new ArrayList<>();
    for (long seed : seeds) {
      SimConfig cfg = SimConfig.watchLeasesFromSeed(seed);
      SimResult r = new Simulation(cfg).run();
      r.stats().forEach((k, v) -> totals.merge(k, v, Long::sum));
      maxLate = Math.max(maxLate, r.stats().getOrDefault("lease_max_late_ms", Long.MIN_VALUE));
      maxLateQuiet = Math.max(maxLateQuiet, r.stats().getOrDefault("lease_max_late_quiet_ms", Long.MIN_VALUE));
      List<String> problems = new ArrayList<>(r.violations());
      problems.addAll(SimChecks.linearizability(r));
      if (!problems.isEmpty()) {
        failures.add("seed " + seed + " (" + cfg + "): " + String.join("; ", problems)
            + "\n  replay: mvn -pl tests/simulator test -Dtest=WatchLeaseSimulationTest -Dchoir.sim.seedWL=" + seed
            + r.nodes());
        if (failures.size() >= 5) {
          break;
        }
      }
    }
    double secs = (System.nanoTime() - start) / 1e9;
    System.out.printf("watches+leases: %,d runs (first %d), %,d events; %,d watchers, %,d watch events delivered,"
            + " %,d checked over %,d revisions (%,d unverified: applied only by state transfer), %,d resumes"
            + " (%,d cut off, %,d compacted refusals, %,d compacted ends); %,d leases checked (%,d expired,"
            + " %,d revoked, %,d unmeasured), %,d lease keys checked, max lateness after the deadline %d ms"
            + " (%d ms in runs without faults), %.1f s%n",
        seeds.size(), seeds.get(0), totals.getOrDefault("events", 0L), totals.getOrDefault("watchers", 0L),
        totals.getOrDefault("watch_events_delivered", 0L), totals.getOrDefault("watch_events_checked", 0L),
        totals.getOrDefault("watch_revisions_checked", 0L), totals.getOrDefault("watch_revisions_unverified", 0L),
        totals.getOrDefault("watch_resumes", 0L), totals.getOrDefault("watch_cut_offs", 0L),
        totals.getOrDefault("watch_compacted_refusals", 0L), totals.getOrDefault("watch_compacted_ends", 0L),
        totals.getOrDefault("leases_checked", 0L), totals.getOrDefault("leases_expired", 0L),
        totals.getOrDefault("leases_revoked", 0L), totals.getOrDefault("leases_unmeasured", 0L),
        totals.getOrDefault("lease_keys_checked", 0L), maxLate, maxLateQuiet, secs);
    if (!failures.isEmpty()) {
      fail(failures.size() + " failing seed(s):\n" + String.join("\n", failures));
    }
    assertTrue(totals.getOrDefault("watch_events_checked", 0L) > 0, "no watch event was checked");
    assertTrue(totals.getOrDefault("leases_expired", 0L) > 0, "no lease expired");
  }

  @Test
  void aWatchLeaseRunReplaysFromItsSeed() {
    for (long seed : new long[] {3, 117}) {
      SimResult first = new Simulation(SimConfig.watchLeasesFromSeed(seed)).run();
      new Simulation(SimConfig.watchLeasesFromSeed(seed + 1)).run(); // nothing carries over between runs
      SimResult again = new Simulation(SimConfig.watchLeasesFromSeed(seed)).run();
      assertEquals(first.history().events, again.history().events, "seed " + seed + ": history differs");
      assertEquals(first.stats(), again.stats(), "seed " + seed + ": statistics differ between two runs");
      assertTrue(first.stats().getOrDefault("watch_events_checked", 0L) > 0, "seed " + seed + ": no watch event");
    }
  }

  @Test
  void theWatchCheckerCatchesALostEvent() {
    assertCaught(Simulation.SimBreakage.WATCH_DROPS_EVENT, "watcher 0");
  }

  @Test
  void theLeaseCheckerCatchesAnEarlyDeletion() {
    assertCaught(Simulation.SimBreakage.LEASE_EXPIRES_EARLY, "before its deadline");
  }

  /** Some seed of the first 20 runs with breakage must fail with a violation mentioning what. */
  private static void assertCaught(Simulation.SimBreakage breakage, String what) {
    for (long seed = 1; seed <= 20; seed++) {
      SimResult r = new Simulation(SimConfig.watchLeasesFromSeed(seed), breakage).run();
      for (String v : r.violations()) {
        if (v.contains(what)) {
          System.out.println(breakage + " caught at seed " + seed + ": " + v);
          return;
        }
      }
    }
    fail(breakage + " was not caught in 20 seeds");
  }
}
