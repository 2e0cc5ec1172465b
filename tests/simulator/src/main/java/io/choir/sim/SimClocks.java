package io.choir.sim;

import java.util.SplittableRandom;

/**
 * SimClocks draws each simulated replica's monotonic clock rate from the seed (SimReplica's clock is
 * offset + rate x simulated time), so that the lease reads (DESIGN.md "Lease reads (issue 14)") run
 * on clocks that disagree as much as the documented drift bound allows.
 */
final class SimClocks {
  private SimClocks() {
  }

  /**
   * A replica's clock rate (its clock's seconds per real second). The lease needs the ratio of any two
   * replicas' rates within (1 + d) / (1 - d) for the drift bound d (CoreConfig.leaseDurationNs); rates
   * in [(1 - d) / (1 + d), 1] give every ratio up to exactly that (a third of the replicas at each end,
   * the rest between). No clock runs fast: the replicated clock, which stamps the entries that expire
   * session leases (issue 13), assumes the primary's clock never runs ahead of real time. Beyond the
   * bound (CLOCK_DRIFT_BEYOND_BOUND): rates in [0.25, 1].
   */
  static double rate(SplittableRandom r, long driftPpm) {
    double d = driftPpm / 1e6;
    double slowest = (1 - d) / (1 + d);
    return switch (r.nextInt(3)) {
      case 0 -> slowest;
      case 1 -> 1.0;
      default -> slowest + (1 - slowest) * r.nextDouble();
    };
  }
}
