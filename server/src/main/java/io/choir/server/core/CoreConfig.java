package io.choir.server.core;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * CoreConfig is what the pure core needs to know: the membership and every bound and timer it applies.
 * Built from the server configuration or, by tests and the simulator, from the settings' declared
 * defaults (both by io.choir.server.config.CoreSettings, which owns which setting feeds which bound).
 * Durations are nanoseconds of whatever clock the caller passes to step().
 */
public final class CoreConfig {
  private final int replicaId;
  private final List<Integer> replicaIds;
  private final Map<Integer, String> clientAddresses;
  private final Membership bootstrap;
  public final int maxKeyBytes;
  public final int maxValueBytes;
  public final int maxBatchOps;
  public final int maxInFlightOps;
  public final long maxInFlightBytes;
  public final int maxQueuedRequests;
  public final int maxBatchEntries;
  public final int maxBatchBytes;
  public final long readTimeoutNs;
  /** Largest PREPARE body the core packs (the transport fragments a bigger single entry). */
  public final int maxDatagramBytes;
  public final long heartbeatIntervalNs;
  /** A primary that heard from fewer than f backups for this long refuses writes (CheckQuorum). */
  public final long quorumTimeoutNs;
  /** First NACK after a gap waits a random delay in [0, nackDelayNs) (RFC 5401 NORM-style suppression). */
  public final long nackDelayNs;
  public final long nackBackoffMaxNs;
  public final int maxNackRanges;
  public final int maxOutOfOrderEntries;
  /** Applied entries every replica keeps in memory for fast retransmission. */
  public final int retransmitRingEntries;
  /** A second replica asking for the same op within this window gets a multicast resend. */
  public final long multicastRetransmitWindowNs;
  /** The primary ignores a NACK for an op it resent to the same replica this recently. */
  public final long resendSuppressNs;
  public final int maxRetransmitEntriesPerNack;
  public final long logRetentionMinOps;
  public final long logRetentionMaxOps;
  /** Resend bytes one NACK may cause at most (the rest waits for the next NACK): bounds bursts. */
  public final long maxRetransmitBytesPerNack;
  /** Bytes of applied entries kept in memory for fast resends (besides retransmitRingEntries). */
  public final long retransmitRingBytes;
  /**
   * Resend bytes one asker may cause per second, a token bucket holding ResendBudget.BURST_MS of it
   * (issue 10, item 6); 0 or less: unbounded (only the per-NACK bounds apply).
   */
  public final long resendBytesPerPeerPerSec;
  /**
   * Anti-amplification for clusters without a key (issue 10, item 6): when above 0, resends by
   * datagram to an asker are at most this many times the bytes received from it (every message
   * counts), and this replica pads its NACKs so that asking earns the answer (QUIC's rule, RFC 9000
   * 8.1). 0: off (with a cluster key only members can send, and the byte budget suffices).
   */
  public final int resendAmplificationLimit;
  /** Session inactivity timeout the primary writes into RegisterSession entries. */
  public final long sessionTimeoutMs;
  /** Most client sessions, written by the primary into RegisterSession entries. */
  public final int maxClientSessions;
  /** Seed of the core's random source (NACK delays); a run replays from it. */
  public final long seed;
  /** How the primary confirms a linearizable read (server setting linearizable_reads). */
  public final ReadMode readMode;
  /**
   * The bound on how far any replica's monotonic clock may run from real time, in parts per million
   * (server setting lease_clock_drift_ppm): a clock measures a real duration d as between d(1 - drift)
   * and d(1 + drift).
   */
  public final long leaseClockDriftPpm;
  /**
   * How long a primary's lease lasts from the moment it decided to send a heartbeat round that f backups
   * answered (PrimaryLease): {@link #leaseDurationNs(long, long)} of the election timeout and the drift.
   */
  public final long leaseDurationNs;
  /** TEST ONLY: a deliberate protocol bug, so tests can prove that their checks catch one. */
  public final Breakage breakage;

  /** How the primary confirms that it still leads before it answers a linearizable read. */
  public enum ReadMode {
    /**
     * A read arriving while the primary's lease holds needs no round (DESIGN.md "Lease reads (issue
     * 14)"); otherwise, and outside a lease, as READ_INDEX.
     */
    LEASE,
    /** Every linearizable read waits for a heartbeat round sent after it arrived (shared by all waiting). */
    READ_INDEX
  }

  /** A lease a little shorter than the margin on the slack drift allows; never negative. */
  public static final long LEASE_MARGIN_NS = 1_000_000L;

  /**
   * The lease for election timeout T and clock drift bound d (ppm): T (1 - d) / (1 + d) - 1 ms. A backup
   * that answered a round keeps to its primary for T of its own clock after it last heard it, at least
   * T / (1 + d) of real time; the primary's lease of L on its own clock lasts at most L / (1 - d) of real
   * time, from a moment before the backup heard that round. So L / (1 - d) <= T / (1 + d) is enough.
   */
  public static long leaseDurationNs(long electionTimeoutNs, long driftPpm) {
    long ppm = 1_000_000L;
    long l = (long) (electionTimeoutNs * ((double) (ppm - driftPpm) / (ppm + driftPpm))) - LEASE_MARGIN_NS;
    return Math.max(0, l);
  }

  /**
   * Breakage is a deliberate protocol bug (server setting {@code test_break_protocol}); the simulator's
   * and the failure-injection harness's checks must report the histories it produces as invalid.
   */
  public enum Breakage {
    /** The protocol as designed. */
    NONE,
    /** Every replica answers every read, linearizable ones included, from its own applied state at once. */
    LOCAL_READS,
    /**
     * The primary commits, applies and acknowledges a write once it alone has persisted it, without
     * waiting for f backups: a primary cut off from the others acknowledges writes the next view loses.
     */
    COMMIT_ALONE,
    /**
     * Not a core bug but the storage stage's (server setting {@code ack-before-fsync}): log writes are
     * reported persisted before they are fsynced, so a power loss loses acknowledged writes.
     */
    ACK_BEFORE_FSYNC,
    /**
     * The primary's lease outlives the backups' stickiness: it lasts twenty election timeouts and is not
     * bounded by CheckQuorum, so a primary cut off from the others still answers linearizable reads
     * from its own state after they have elected a new primary that accepts writes.
     */
    STALE_LEASE
  }

  private CoreConfig(Builder b) {
    this.replicaId = b.replicaId;
    this.replicaIds = List.copyOf(b.replicaIds.stream().sorted().toList());
    // A replica not among them is a joiner (DESIGN.md "Membership"): it starts as no member of the
    // bootstrap membership and learns its own from the log or a state transfer once it is added.
    this.clientAddresses = Map.copyOf(new TreeMap<>(b.clientAddresses));
    this.bootstrap = Membership.bootstrap(replicaIds, clientAddresses);
    this.maxKeyBytes = b.maxKeyBytes;
    this.maxValueBytes = b.maxValueBytes;
    this.maxBatchOps = b.maxBatchOps;
    this.maxInFlightOps = b.maxInFlightOps;
    this.maxInFlightBytes = b.maxInFlightBytes;
    this.maxQueuedRequests = b.maxQueuedRequests;
    this.maxBatchEntries = b.maxBatchEntries;
    this.maxBatchBytes = b.maxBatchBytes;
    this.readTimeoutNs = b.readTimeoutNs;
    this.maxDatagramBytes = b.maxDatagramBytes;
    this.heartbeatIntervalNs = b.heartbeatIntervalNs;
    this.quorumTimeoutNs = b.quorumTimeoutNs;
    this.nackDelayNs = b.nackDelayNs;
    this.nackBackoffMaxNs = b.nackBackoffMaxNs;
    this.maxNackRanges = b.maxNackRanges;
    this.maxOutOfOrderEntries = b.maxOutOfOrderEntries;
    this.retransmitRingEntries = b.retransmitRingEntries;
    this.multicastRetransmitWindowNs = b.multicastRetransmitWindowNs;
    this.resendSuppressNs = b.resendSuppressNs;
    this.maxRetransmitEntriesPerNack = b.maxRetransmitEntriesPerNack;
    this.logRetentionMinOps = b.logRetentionMinOps;
    this.logRetentionMaxOps = Math.max(b.logRetentionMaxOps, b.logRetentionMinOps);
    this.maxRetransmitBytesPerNack = b.maxRetransmitBytesPerNack;
    this.retransmitRingBytes = b.retransmitRingBytes;
    this.resendBytesPerPeerPerSec = b.resendBytesPerPeerPerSec;
    this.resendAmplificationLimit = b.resendAmplificationLimit;
    this.sessionTimeoutMs = b.sessionTimeoutMs;
    this.maxClientSessions = b.maxClientSessions;
    this.seed = b.seed;
    this.breakage = Objects.requireNonNull(b.breakage, "breakage: start from CoreSettings.defaults");
    this.readMode = Objects.requireNonNull(b.readMode, "readMode: start from CoreSettings.defaults");
    this.leaseClockDriftPpm = b.leaseClockDriftPpm;
    this.leaseDurationNs = breakage == Breakage.STALE_LEASE ? 20 * quorumTimeoutNs
        : leaseDurationNs(quorumTimeoutNs, leaseClockDriftPpm);
  }

  /** An empty builder: CoreSettings fills the values that a setting declares (see {@link Builder}). */
  public static Builder builder(int replicaId, List<Integer> replicaIds) {
    return new Builder(replicaId, replicaIds);
  }

  public int replicaId() {
    return replicaId;
  }

  public List<Integer> replicaIds() {
    return replicaIds;
  }

  /** The client address of replica id (for NOT_PRIMARY hints), or "" when unknown. */
  public String clientAddress(int id) {
    return clientAddresses.getOrDefault(id, "");
  }

  /**
   * Epoch 1: the configured replicas, all voters (DESIGN.md "Membership"). A replica with empty state
   * starts in it; afterwards its membership comes from its own durable state (RecoveredState), and
   * the configured list only seeds addresses.
   */
  public Membership bootstrapMembership() {
    return bootstrap;
  }

  /** f+1 of the bootstrap membership's voters (tests and the simulator; the core asks its Members). */
  public int quorum() {
    return bootstrap.quorum();
  }

  /** The primary of view under the bootstrap membership (tests and the simulator; the core asks its Members). */
  public int primaryOf(long view) {
    return bootstrap.primaryOf(view);
  }

  /**
   * Builder of a CoreConfig. The bounds and timers that a server setting declares (max_key_bytes,
   * heartbeat_interval_ms, ...; see io.choir.server.config.CoreSettings, which maps them) have no
   * default here: their default lives once, in the setting's declaration, and CoreSettings.defaults
   * returns a builder filled from the declarations. The core's own tuning that no setting exposes
   * (NACK delays and bounds, retransmit rings and windows, the seed) keeps its default here.
   */
  public static final class Builder {
    private final int replicaId;
    private final List<Integer> replicaIds;
    private Map<Integer, String> clientAddresses = Map.of();
    // Declared by a server setting: CoreSettings fills them.
    private int maxKeyBytes;
    private int maxValueBytes;
    private int maxBatchOps;
    private int maxInFlightOps;
    private long maxInFlightBytes;
    private int maxQueuedRequests;
    private int maxBatchEntries;
    private int maxBatchBytes;
    private long readTimeoutNs;
    private int maxDatagramBytes;
    private long heartbeatIntervalNs;
    private long quorumTimeoutNs;
    private long logRetentionMinOps;
    private long logRetentionMaxOps;
    private long resendBytesPerPeerPerSec;
    private int resendAmplificationLimit;
    private long sessionTimeoutMs;
    private int maxClientSessions;
    private Breakage breakage;
    private ReadMode readMode;
    private long leaseClockDriftPpm;
    // The core's own tuning, no setting: the defaults are here.
    private long nackDelayNs = 2_000_000L;
    private long nackBackoffMaxNs = 100_000_000L;
    private int maxNackRanges = 64;
    private int maxOutOfOrderEntries = 16_384;
    private int retransmitRingEntries = 8192;
    private long multicastRetransmitWindowNs = 5_000_000L;
    private long resendSuppressNs = 5_000_000L;
    private int maxRetransmitEntriesPerNack = 4096;
    private long maxRetransmitBytesPerNack = 4L << 20;
    private long retransmitRingBytes = 64L << 20;
    private long seed = 1;

    private Builder(int replicaId, List<Integer> replicaIds) {
      this.replicaId = replicaId;
      this.replicaIds = replicaIds;
    }

    public Builder clientAddresses(Map<Integer, String> v) { clientAddresses = v; return this; }
    public Builder maxKeyBytes(int v) { maxKeyBytes = v; return this; }
    public Builder maxValueBytes(int v) { maxValueBytes = v; return this; }
    public Builder maxBatchOps(int v) { maxBatchOps = v; return this; }
    public Builder maxInFlightOps(int v) { maxInFlightOps = v; return this; }
    public Builder maxInFlightBytes(long v) { maxInFlightBytes = v; return this; }
    public Builder maxQueuedRequests(int v) { maxQueuedRequests = v; return this; }
    public Builder maxBatchEntries(int v) { maxBatchEntries = v; return this; }
    public Builder maxBatchBytes(int v) { maxBatchBytes = v; return this; }
    public Builder readTimeoutNs(long v) { readTimeoutNs = v; return this; }
    public Builder maxDatagramBytes(int v) { maxDatagramBytes = v; return this; }
    public Builder heartbeatIntervalNs(long v) { heartbeatIntervalNs = v; return this; }
    public Builder quorumTimeoutNs(long v) { quorumTimeoutNs = v; return this; }
    public Builder nackDelayNs(long v) { nackDelayNs = v; return this; }
    public Builder nackBackoffMaxNs(long v) { nackBackoffMaxNs = v; return this; }
    public Builder maxNackRanges(int v) { maxNackRanges = v; return this; }
    public Builder maxOutOfOrderEntries(int v) { maxOutOfOrderEntries = v; return this; }
    public Builder retransmitRingEntries(int v) { retransmitRingEntries = v; return this; }
    public Builder multicastRetransmitWindowNs(long v) { multicastRetransmitWindowNs = v; return this; }
    public Builder resendSuppressNs(long v) { resendSuppressNs = v; return this; }
    public Builder maxRetransmitEntriesPerNack(int v) { maxRetransmitEntriesPerNack = v; return this; }
    public Builder logRetentionMinOps(long v) { logRetentionMinOps = v; return this; }
    public Builder logRetentionMaxOps(long v) { logRetentionMaxOps = v; return this; }
    public Builder maxRetransmitBytesPerNack(long v) { maxRetransmitBytesPerNack = v; return this; }
    public Builder retransmitRingBytes(long v) { retransmitRingBytes = v; return this; }
    public Builder resendBytesPerPeerPerSec(long v) { resendBytesPerPeerPerSec = v; return this; }
    public Builder resendAmplificationLimit(int v) { resendAmplificationLimit = v; return this; }
    public Builder sessionTimeoutMs(long v) { sessionTimeoutMs = v; return this; }
    public Builder maxClientSessions(int v) { maxClientSessions = v; return this; }
    public Builder seed(long v) { seed = v; return this; }
    public Builder breakage(Breakage v) { breakage = v; return this; }
    public Builder readMode(ReadMode v) { readMode = v; return this; }
    public Builder leaseClockDriftPpm(long v) { leaseClockDriftPpm = v; return this; }

    public CoreConfig build() {
      return new CoreConfig(this);
    }
  }
}
