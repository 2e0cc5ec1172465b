package io.choir.sim;

/**
 * SimConfig is one simulated run's shape, all derived from its seed so that the seed alone replays it.
 * Times are simulated nanoseconds.
 */
public record SimConfig(
    long seed,
    int replicas,
    int clients,
    int keys,
    int opsPerClient,
    double lossRate,
    double duplicateRate,
    long minDelayNs,
    long maxDelayNs,
    boolean faults,
    long faultPeriodNs,
    long logRetentionOps,
    boolean buffered) {

  static final long MS = 1_000_000L;

  /** The run of a seed: 3 or 5 replicas, 0-50% loss, duplication, reordering, and a fault schedule. */
  public static SimConfig fromSeed(long seed) {
    java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
    int replicas = r.nextInt(4) == 0 ? 5 : 3;
    double[] losses = {0.0, 0.01, 0.05, 0.2, 0.5};
    double loss = losses[r.nextInt(losses.length)];
    double dup = r.nextInt(3) == 0 ? 0.05 : 0.0;
    long maxDelay = (1 + r.nextInt(5)) * MS;
    return new SimConfig(seed, replicas, 3 + r.nextInt(4), 2 + r.nextInt(3), 30 + r.nextInt(40), loss, dup,
        50_000L, maxDelay, r.nextInt(5) != 0, (100 + r.nextInt(400)) * MS,
        // A short log in a third of the runs: a backup that was away must catch up by state transfer.
        r.nextInt(3) == 0 ? 10 + r.nextInt(40) : 1_000_000,
        // Buffered durability in a fifth of the runs: restarted replicas must run recovery (VR 4.3).
        r.nextInt(5) == 0);
  }

  @Override
  public String toString() {
    return "seed=" + seed + " replicas=" + replicas + " clients=" + clients + " keys=" + keys
        + " ops/client=" + opsPerClient + " loss=" + lossRate + " dup=" + duplicateRate
        + " delay=" + minDelayNs / 1000 + ".." + maxDelayNs / 1000 + "us faults=" + faults
        + " log_retention=" + logRetentionOps + (buffered ? " durability=buffered" : "");
  }
}
