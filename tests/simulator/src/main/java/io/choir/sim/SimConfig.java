package io.choir.sim;

import java.util.SplittableRandom;

/**
 * SimConfig is one simulated run's shape, all derived from its seed so that the seed alone replays it.
 * Times are simulated nanoseconds.
 *
 * @param faultPlan which faults the run injects ({@link FaultPlan})
 * @param valueBytes size of the values written (small decimal numbers when below 64)
 * @param maxInFlightBytes the primary's flow-control window in bytes (CoreConfig.maxInFlightBytes)
 * @param clientAttemptTimeoutMs every client's attempt timeout, or 0: each client draws its own
 * @param clientRequestTimeoutMs the most of every client's request timeout, or 0: each draws its own
 * @param unicast the replicas run peer_transport unicast: a send to all is one unicast copy per member
 * @param watchLeases the run adds watchers and lease clients and checks them ({@link SimWatches},
 *     {@link SimLeases}); off in every plan but {@link #watchLeasesFromSeed}
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
    boolean buffered,
    int maxClientSessions,
    long sessionTimeoutMs,
    boolean slowDisk,
    FaultPlan faultPlan,
    int valueBytes,
    long maxInFlightBytes,
    long clientAttemptTimeoutMs,
    long clientRequestTimeoutMs,
    boolean unicast,
    boolean watchLeases) {

  static final long MS = 1_000_000L;
  /** The server's default flow-control window. */
  static final long DEFAULT_WINDOW_BYTES = 64L << 20;

  /** A run over the multicast transport (the shape every run had before peer_transport unicast). */
  public SimConfig(long seed, int replicas, int clients, int keys, int opsPerClient, double lossRate,
      double duplicateRate, long minDelayNs, long maxDelayNs, boolean faults, long faultPeriodNs,
      long logRetentionOps, boolean buffered, int maxClientSessions, long sessionTimeoutMs, boolean slowDisk,
      FaultPlan faultPlan, int valueBytes, long maxInFlightBytes, long clientAttemptTimeoutMs,
      long clientRequestTimeoutMs) {
    this(seed, replicas, clients, keys, opsPerClient, lossRate, duplicateRate, minDelayNs, maxDelayNs, faults,
        faultPeriodNs, logRetentionOps, buffered, maxClientSessions, sessionTimeoutMs, slowDisk, faultPlan,
        valueBytes, maxInFlightBytes, clientAttemptTimeoutMs, clientRequestTimeoutMs, false);
  }

  /** A run without watchers and lease clients. */
  public SimConfig(long seed, int replicas, int clients, int keys, int opsPerClient, double lossRate,
      double duplicateRate, long minDelayNs, long maxDelayNs, boolean faults, long faultPeriodNs,
      long logRetentionOps, boolean buffered, int maxClientSessions, long sessionTimeoutMs, boolean slowDisk,
      FaultPlan faultPlan, int valueBytes, long maxInFlightBytes, long clientAttemptTimeoutMs,
      long clientRequestTimeoutMs, boolean unicast) {
    this(seed, replicas, clients, keys, opsPerClient, lossRate, duplicateRate, minDelayNs, maxDelayNs, faults,
        faultPeriodNs, logRetentionOps, buffered, maxClientSessions, sessionTimeoutMs, slowDisk, faultPlan,
        valueBytes, maxInFlightBytes, clientAttemptTimeoutMs, clientRequestTimeoutMs, unicast, false);
  }

  /**
   * The run of a seed ({@link #fromSeed}) with watchers and lease clients added and checked
   * ({@link SimWatches}, {@link SimLeases}): the same shape and faults otherwise.
   */
  public static SimConfig watchLeasesFromSeed(long seed) {
    SimConfig c = fromSeed(seed);
    return new SimConfig(seed, c.replicas, c.clients, c.keys, c.opsPerClient, c.lossRate, c.duplicateRate,
        c.minDelayNs, c.maxDelayNs, c.faults, c.faultPeriodNs, c.logRetentionOps, c.buffered, c.maxClientSessions,
        c.sessionTimeoutMs, c.slowDisk, c.faultPlan, c.valueBytes, c.maxInFlightBytes, c.clientAttemptTimeoutMs,
        c.clientRequestTimeoutMs, c.unicast, true);
  }

  /**
   * The run of a seed ({@link #fromSeed}) with the replicas on peer_transport unicast: the same shape,
   * every send to all delivered as one independent unicast copy per member.
   */
  public static SimConfig unicastFromSeed(long seed) {
    return fromSeed(seed).withUnicast();
  }

  /** This run over the unicast transport. */
  public SimConfig withUnicast() {
    return new SimConfig(seed, replicas, clients, keys, opsPerClient, lossRate, duplicateRate, minDelayNs,
        maxDelayNs, faults, faultPeriodNs, logRetentionOps, buffered, maxClientSessions, sessionTimeoutMs,
        slowDisk, faultPlan, valueBytes, maxInFlightBytes, clientAttemptTimeoutMs, clientRequestTimeoutMs, true,
        watchLeases);
  }

  /** Which faults a run injects. */
  public enum FaultPlan {
    /** Every kind of fault SimFaults knows, the primary's included. */
    MIXED,
    /**
     * Only faults of one backup that must not disturb a healthy primary (hole 2d): cut off (both ways
     * or one way) for several election timeouts and healed, or crashed (kill -9 or power loss) and
     * restarted. A run of this plan must end without a single view change.
     */
    BACKUPS_ONLY,
    /**
     * The full-window view change of hole 2e: clients only write (big values) until the primary's
     * flow-control window is full, then the scenario ({@code SimFullWindow}) crashes or isolates the
     * primary itself; no other fault.
     */
    FULL_WINDOW,
    /**
     * Primaries that step down while writes they logged wait (hole 2a): the primary stops hearing the
     * backups (they still hear it) for about the time the others take to start a view change, then
     * hears again, and learns of the new view while its waiters wait. With long attempt timeouts and
     * short request timeouts, the step-down answer decides what a call's failure promises.
     */
    STEP_DOWNS
  }

  /**
   * The run of a seed: 3 or 5 replicas, 0-50% loss, duplication, reordering, a fault schedule, and in
   * some runs a short log, buffered durability, a small client table with a short session timeout, or
   * a slow log disk.
   */
  public static SimConfig fromSeed(long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int replicas = r.nextInt(4) == 0 ? 5 : 3;
    double[] losses = {0.0, 0.01, 0.05, 0.2, 0.5};
    double loss = losses[r.nextInt(losses.length)];
    double dup = r.nextInt(3) == 0 ? 0.05 : 0.0;
    long maxDelay = (1 + r.nextInt(5)) * MS;
    int clients = 3 + r.nextInt(4);
    int keys = 2 + r.nextInt(3);
    int opsPerClient = 30 + r.nextInt(40);
    boolean faults = r.nextInt(5) != 0;
    long faultPeriodNs = (100 + r.nextInt(400)) * MS;
    // A short log in a third of the runs: a backup that was away must catch up by state transfer.
    long logRetentionOps = r.nextInt(3) == 0 ? 10 + r.nextInt(40) : 1_000_000;
    // Buffered durability in a fifth of the runs: restarted replicas must run recovery (VR 4.3).
    boolean buffered = r.nextInt(5) == 0;
    // A small client table and a short session timeout in a fifth of the runs: registrations are
    // refused while the table is full, and sessions of clients that wait too long expire.
    boolean smallTable = r.nextInt(5) == 0;
    int maxClientSessions = smallTable ? Math.max(1, clients - 1 - r.nextInt(2)) : 10_000;
    long sessionTimeoutMs = smallTable ? 150 + r.nextInt(1000) : 60_000;
    // A slow log disk in a quarter of the runs: the apply lane and the loop run far ahead of it.
    boolean slowDisk = r.nextInt(4) == 0;
    // Values bigger than a datagram in an eighth of the runs: PREPAREs travel as fragments (lost when
    // any one is) and resends over the peer streams, as the transport routes them.
    int valueBytes = r.nextInt(8) == 0 ? 1_500 + r.nextInt(6_000) : 0;
    // A small flow-control window in a sixth of the runs (a few dozen entries): the primary fills it,
    // queues writes and pauses client intake, and the connections wait until it drains.
    long window = r.nextInt(6) == 0 ? (valueBytes > 0 ? 4L * valueBytes : 1_000 + r.nextInt(2_000))
        : DEFAULT_WINDOW_BYTES;
    return new SimConfig(seed, replicas, clients, keys, opsPerClient, loss, dup, 50_000L, maxDelay, faults,
        faultPeriodNs, logRetentionOps, buffered, maxClientSessions, sessionTimeoutMs, slowDisk,
        FaultPlan.MIXED, valueBytes, window, 0, 0);
  }

  /**
   * A run of the hole-2d family: the seed's shape with low loss (at most 5%: a healthy primary's
   * heartbeats get through, so any view change is the faulty backup's doing), always faults, and only
   * the faults of {@link FaultPlan#BACKUPS_ONLY}, each lasting several election timeouts.
   */
  public static SimConfig backupFaultsFromSeed(long seed) {
    SimConfig c = fromSeed(seed);
    SplittableRandom r = new SplittableRandom(seed ^ 0x2DL);
    double[] losses = {0.0, 0.01, 0.05};
    // Longer runs than the mixed ones (100 to 200 operations per client), so several faults come and go.
    return new SimConfig(seed, c.replicas, c.clients, c.keys, 100 + r.nextInt(100), losses[r.nextInt(losses.length)],
        c.duplicateRate, c.minDelayNs, c.maxDelayNs, true, (200 + r.nextInt(600)) * MS, c.logRetentionOps,
        c.buffered, 10_000, 60_000, c.slowDisk, FaultPlan.BACKUPS_ONLY, c.valueBytes, DEFAULT_WINDOW_BYTES, 0, 0);
  }

  /**
   * A run of {@link FaultPlan#STEP_DOWNS}: the seed's shape with at most 5% loss, always faults, attempt
   * timeouts of 3 s (longer than a step-down takes) and request timeouts of 1 to 2.5 s (so some calls
   * end while the next view is still forming).
   */
  public static SimConfig stepDownsFromSeed(long seed) {
    SimConfig c = fromSeed(seed);
    SplittableRandom r = new SplittableRandom(seed ^ 0x2AL);
    double[] losses = {0.0, 0.01, 0.05};
    return new SimConfig(seed, c.replicas, c.clients + 2, c.keys + 4, c.opsPerClient * 2,
        losses[r.nextInt(losses.length)], c.duplicateRate, c.minDelayNs, c.maxDelayNs, true, 2_000 * MS,
        c.logRetentionOps, c.buffered, 10_000, 60_000, c.slowDisk, FaultPlan.STEP_DOWNS, c.valueBytes,
        DEFAULT_WINDOW_BYTES, 3_000, 2_500);
  }

  /**
   * The replicas' resend_amplification_limit, drawn from the seed apart from the shape so that older
   * seeds keep theirs: 0 (a keyed cluster), 10 (a cluster without a key, the server's default then) or
   * 2 (credit so scarce that answers are cut often), a third of the runs each; 0 in the full-window
   * scenario.
   */
  public int resendAmplificationLimit() {
    if (faultPlan == FaultPlan.FULL_WINDOW) {
      // Its values (1 MiB) all go over the peer streams, which need no credit: the credit rule is
      // exercised by the other plans, and this scenario keeps the histories its figures were measured on.
      return 0;
    }
    int[] limits = {0, 10, 2};
    return limits[new SplittableRandom(seed ^ 0xA3A3L).nextInt(limits.length)];
  }

  /** True when values are big (padded), not small decimal numbers. */
  boolean bigValues() {
    return valueBytes >= 64;
  }

  /** True when the clients only write (and read each key back at the end). */
  boolean writesOnly() {
    return faultPlan == FaultPlan.FULL_WINDOW;
  }

  @Override
  public String toString() {
    return "seed=" + seed + " replicas=" + replicas + " clients=" + clients + " keys=" + keys
        + " ops/client=" + opsPerClient + " loss=" + lossRate + " dup=" + duplicateRate
        + " delay=" + minDelayNs / 1000 + ".." + maxDelayNs / 1000 + "us faults=" + faults
        + (faultPlan != FaultPlan.MIXED ? " plan=" + faultPlan : "")
        + " log_retention=" + logRetentionOps + (buffered ? " durability=buffered" : "")
        + (maxClientSessions < 10_000 ? " max_sessions=" + maxClientSessions + " session_timeout="
            + sessionTimeoutMs + "ms" : "")
        + (slowDisk ? " slow_disk" : "")
        + (resendAmplificationLimit() > 0 ? " amplification_limit=" + resendAmplificationLimit() : "")
        + (bigValues() ? " values=" + valueBytes + "B" : "")
        + (maxInFlightBytes != DEFAULT_WINDOW_BYTES ? " window=" + maxInFlightBytes + "B" : "")
        + (clientAttemptTimeoutMs > 0 ? " attempt_timeout=" + clientAttemptTimeoutMs + "ms" : "")
        + (clientRequestTimeoutMs > 0 ? " request_timeout<=" + clientRequestTimeoutMs + "ms" : "")
        + (unicast ? " transport=unicast" : "") + (watchLeases ? " watches+leases" : "");
  }
}
