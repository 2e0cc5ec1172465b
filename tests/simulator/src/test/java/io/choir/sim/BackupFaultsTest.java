package io.choir.sim;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * BackupFaultsTest is the simulator's counter for hole 2d (PreVote and leader stickiness): runs whose
 * only faults are a backup of a healthy primary cut off (both ways, or one way) for several election
 * timeouts and then healed, or crashed (kill -9 or power loss) and restarted, with clients writing
 * all along ({@link SimConfig#backupFaultsFromSeed}). A healed or restarted backup must cause 0 view
 * changes: no replica may complete or start one, and the view must stay the first one. Every run must
 * also pass the usual checks (invariants, convergence, linearizability). {@code -Dchoir.sim.seeds2d=N}
 * runs N seeds from {@code -Dchoir.sim.base} (default 1); {@code -Dchoir.sim.seed2d=S} replays one.
 */
class BackupFaultsTest {
  @Test
  void shouldCauseNoViewChangeWhenOnlyABackupIsCutOffOrRestarted() {
    String one = System.getProperty("choir.sim.seed2d", "");
    long base = Long.getLong("choir.sim.base", 1L);
    int count = Integer.getInteger("choir.sim.seeds2d", 200);
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
    List<String> failures = new ArrayList<>();
    for (long seed : seeds) {
      SimConfig cfg = SimConfig.backupFaultsFromSeed(seed);
      SimResult r = new Simulation(cfg).run();
      r.stats().forEach((k, v) -> totals.merge(k, v, Long::sum));
      List<String> problems = new ArrayList<>(r.violations());
      problems.addAll(SimChecks.linearizability(r));
      long completed = r.stats().getOrDefault("view_changes", 0L);
      long started = r.stats().getOrDefault("view_changes_started", 0L);
      long maxView = r.stats().getOrDefault("max_view", 0L);
      if (completed > 0 || started > 0 || maxView > 0) {
        problems.add("2d: " + completed + " view changes completed, " + started + " started, highest view "
            + maxView + " (" + r.stats().getOrDefault("2d_isolations", 0L) + " isolations, "
            + r.stats().getOrDefault("2d_restarts", 0L) + " restarts)");
      }
      if (!problems.isEmpty()) {
        failures.add("seed " + seed + " (" + cfg + "): " + String.join("; ", problems)
            + "\n  replay: mvn -pl tests/simulator test -Dtest=BackupFaultsTest -Dchoir.sim.seed2d=" + seed + r.nodes());
        if (failures.size() >= 5) {
          break;
        }
      }
    }
    double secs = (System.nanoTime() - start) / 1e9;
    System.out.printf("2d: %,d runs (first %d), %,d backup isolations (%,d both ways, %,d deaf, %,d mute), %,d restarts"
            + " (%,d kill -9, %,d power loss), %,d view changes (%,d started, %,d pre-votes, %,d proposals dropped"
            + " by stickiness), %.1f s%n",
        seeds.size(), seeds.get(0), totals.getOrDefault("2d_isolations", 0L),
        totals.getOrDefault("2d_isolations_both_ways", 0L), totals.getOrDefault("2d_isolations_deaf", 0L),
        totals.getOrDefault("2d_isolations_mute", 0L), totals.getOrDefault("2d_restarts", 0L),
        totals.getOrDefault("2d_restarts_process_crash", 0L), totals.getOrDefault("2d_restarts_power_loss", 0L),
        totals.getOrDefault("view_changes", 0L), totals.getOrDefault("view_changes_started", 0L),
        totals.getOrDefault("pre_votes_started", 0L), totals.getOrDefault("dropped_sticky", 0L), secs);
    if (!failures.isEmpty()) {
      fail(failures.size() + " failing seed(s):\n" + String.join("\n", failures));
    }
  }
}
