package io.choir.sim;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongFunction;

/**
 * MembershipRuns runs one plan of membership changes ({@link MembershipDriver}) over many seeds of the
 * simulator, or replays one: each seed is printed, checked (the simulator's invariants, the driver's
 * membership invariants, linearizability) and measured; the summary line gives the seeds run, the seeds
 * that completed the plan, the epoch switches measured and their unavailability (simulated time).
 *
 * @param name what the plan does, for the summary line ("3 -> 5 -> 3 voters")
 * @param key the seed properties' name: choir.sim.KEY.seed replays one seed, choir.sim.KEY.seeds runs
 *     that many (30 by default)
 * @param test the test to name in the replay command (Class#method)
 * @param replicas the simulated replica processes (the bootstrap voters and the joiners)
 * @param bootstrapVoters replicas 1..bootstrapVoters form epoch 1; the others start empty as joiners
 * @param opsFactor the seed's operations per client times this (long enough for the plan to complete)
 * @param alwaysFaults faults in every seed (false: in the seeds whose shape has them, four in five)
 * @param plan the plan of a seed
 */
record MembershipRuns(String name, String key, String test, int replicas, int bootstrapVoters, int opsFactor,
    boolean alwaysFaults, LongFunction<List<MembershipDriver.Step>> plan) {
  private static final long MS = 1_000_000L;

  /** What the seeds gave. */
  record Outcome(int seeds, int completed, List<Long> unavailableNs, List<Long> afterCrashNs, List<String> failures,
      Map<String, Long> totals) {
    String summary(String name) {
      String line = String.format("membership simulation (%s): %d seeds, %d completed the plan, %d epoch switches"
          + " measured, unavailability mean %d ms, worst %d ms (simulated); crashes by the faults: %d of the"
          + " primary, %d of a new primary, %d of a backup voter, %d of a learner or joiner", name, seeds, completed,
          unavailableNs.size(), mean(unavailableNs) / MS, worst(unavailableNs) / MS, total("fault_crash_primary"),
          total("fault_crash_new_primary"), total("fault_crash_backup"), total("fault_crash_non_voter"));
      if (!afterCrashNs.isEmpty()) {
        line += String.format("; after the crash for good, the next commit: mean %d ms, worst %d ms",
            mean(afterCrashNs) / MS, worst(afterCrashNs) / MS);
      }
      return line;
    }

    long total(String stat) {
      return totals.getOrDefault(stat, 0L);
    }

    private static long mean(List<Long> ns) {
      return ns.isEmpty() ? 0 : ns.stream().mapToLong(Long::longValue).sum() / ns.size();
    }

    private static long worst(List<Long> ns) {
      return ns.stream().mapToLong(Long::longValue).max().orElse(0);
    }
  }

  /** Runs the seeds (or the one to replay), prints each and the summary, and returns the outcome. */
  Outcome run() {
    String one = System.getProperty("choir.sim." + key + ".seed", "");
    int count = Integer.getInteger("choir.sim." + key + ".seeds", 30);
    List<Long> seeds = new ArrayList<>();
    if (!one.isBlank()) {
      seeds.add(Long.parseLong(one.trim()));
    } else {
      for (long s = 1; s <= count; s++) {
        seeds.add(s);
      }
    }
    long start = System.nanoTime();
    ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    long cpuStart = threads.getCurrentThreadCpuTime();
    List<String> failures = new ArrayList<>();
    List<Long> unavailable = new ArrayList<>();
    List<Long> afterCrash = new ArrayList<>();
    int completed = 0;
    Map<String, Long> totals = new TreeMap<>();
    for (long seed : seeds) {
      System.out.println("membership simulation (" + name + ") seed " + seed);
      SimConfig cfg = config(seed);
      MembershipDriver driver = new MembershipDriver(plan.apply(seed));
      SimResult r = new Simulation(cfg, bootstrapVoters, driver).run();
      List<String> problems = new ArrayList<>(r.violations());
      problems.addAll(driver.violations);
      problems.addAll(SimChecks.linearizability(r));
      if (!problems.isEmpty()) {
        failures.add("seed " + seed + " (" + cfg + "): " + String.join("; ", problems)
            + "\n  replay: mvn -pl tests/simulator test -Dtest=" + test + " -Dchoir.sim." + key + ".seed=" + seed
            + r.nodes());
      }
      r.stats().forEach((k, v) -> totals.merge(k, v, Long::sum));
      unavailable.addAll(driver.unavailableNs);
      afterCrash.addAll(driver.afterCrashNs);
      if (driver.completed()) {
        completed++;
      } else {
        System.out.println("membership simulation (" + name + ") seed " + seed + " ended before the plan's step "
            + (driver.step + 1) + " of " + plan.apply(seed).size() + " (" + plan.apply(seed).get(driver.step) + ") was done");
      }
    }
    Outcome o = new Outcome(seeds.size(), completed, unavailable, afterCrash, failures, totals);
    System.out.println(o.summary(name));
    System.out.printf("membership simulation (%s): %.1f s, %.1f s of CPU on this thread%n", name,
        (System.nanoTime() - start) / 1e9, (threads.getCurrentThreadCpuTime() - cpuStart) / 1e9);
    return o;
  }

  /**
   * The seed's shape with these replicas, at most 10% loss, opsFactor times the operations, and faults
   * always when alwaysFaults.
   */
  SimConfig config(long seed) {
    SimConfig b = SimConfig.fromSeed(seed);
    return new SimConfig(seed, replicas, b.clients(), b.keys(), b.opsPerClient() * opsFactor, Math.min(b.lossRate(), 0.1),
        b.duplicateRate(), b.minDelayNs(), b.maxDelayNs(), alwaysFaults || b.faults(), b.faultPeriodNs(), b.logRetentionOps(),
        b.buffered(), b.maxClientSessions(), b.sessionTimeoutMs(), b.slowDisk(), b.faultPlan(), b.valueBytes(),
        b.maxInFlightBytes(), b.clientAttemptTimeoutMs(), b.clientRequestTimeoutMs());
  }
}
