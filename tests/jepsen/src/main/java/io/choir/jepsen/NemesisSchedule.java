package io.choir.jepsen;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * NemesisSchedule is the plan of a run's faults, made from a seed alone: when each fault starts, which
 * one, how long it holds, and the seed its targets are drawn with. The same seed, faults and time limit
 * give the same plan, so a run is replayed with {@code --seed}; only targets that depend on the cluster's
 * state (the primary) can differ.
 *
 * <p>Shape (Jepsen's usual cycle): a quiet period, a fault held for a while, a quiet period, ... Faults
 * never overlap, and the last one stops before the time limit.
 *
 * @param seed the seed the plan was made from
 * @param steps the faults in time order
 */
public record NemesisSchedule(long seed, List<Step> steps) {
  /**
   * Step is one fault of the plan.
   *
   * @param atMillis when it starts, in ms after the workload started
   * @param fault the fault's name
   * @param holdMillis how long it stays before it is stopped
   * @param seed the seed its targets are drawn with
   */
  public record Step(long atMillis, String fault, long holdMillis, long seed) {}

  /** Timing of a plan: quiet and hold periods are drawn uniformly from their ranges. */
  public record Timing(Duration quietMin, Duration quietMax, Duration holdMin, Duration holdMax) {
    /** defaults: quiet 4-8 s, faults held 6-12 s. */
    public static Timing defaults() {
      return new Timing(Duration.ofSeconds(4), Duration.ofSeconds(8), Duration.ofSeconds(6), Duration.ofSeconds(12));
    }
  }

  /** NemesisSchedule copies the steps. */
  public NemesisSchedule {
    steps = List.copyOf(steps);
  }

  /** plan makes the schedule of {@code faults} for {@code timeLimit}, from {@code seed}. */
  public static NemesisSchedule plan(long seed, List<String> faults, Duration timeLimit, Timing timing) {
    Random random = new Random(seed);
    List<Step> steps = new ArrayList<>();
    if (faults.isEmpty()) {
      return new NemesisSchedule(seed, steps);
    }
    long limit = timeLimit.toMillis();
    long t = between(random, timing.quietMin(), timing.quietMax());
    while (true) {
      String fault = faults.get(random.nextInt(faults.size()));
      long hold = between(random, timing.holdMin(), timing.holdMax());
      long stepSeed = random.nextLong();
      if (t + hold > limit) {
        break;
      }
      steps.add(new Step(t, fault, hold, stepSeed));
      t += hold + between(random, timing.quietMin(), timing.quietMax());
    }
    return new NemesisSchedule(seed, steps);
  }

  private static long between(Random random, Duration min, Duration max) {
    long lo = min.toMillis();
    long hi = Math.max(lo, max.toMillis());
    return lo + (hi == lo ? 0 : (long) (random.nextDouble() * (hi - lo)));
  }

  /** describe is the plan, one step per line. */
  public String describe() {
    StringBuilder sb = new StringBuilder("nemesis plan (seed " + seed + "):");
    if (steps.isEmpty()) {
      sb.append(" no faults");
    }
    for (Step s : steps) {
      sb.append(String.format("%n  at %6.1f s  %-26s for %5.1f s", s.atMillis() / 1000.0, s.fault(), s.holdMillis() / 1000.0));
    }
    return sb.toString();
  }
}
