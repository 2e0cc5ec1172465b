package io.choir.server.core;

/**
 * PrimaryWatch owns a backup's view of its primary's liveness (VR Revisited 4.2 step 1): when it last
 * heard from the primary, and its election timeout, randomized in [T, 2T) so that backups rarely time
 * out together. A primary counts as alive while heard within the fixed timeout T (pre-votes, leader
 * stickiness, NOT_PRIMARY hints). It also owns the quiet start: for the fixed timeout T after its
 * process starts, a replica has forgotten when it last heard its primary, so it acts as if it had just
 * heard it (DESIGN.md "Lease reads (issue 14)").
 */
final class PrimaryWatch {
  private final long quorumTimeoutNs;
  private long lastHeardNs;
  private long electionTimeoutNs;
  /** The first step's time (MIN_VALUE: none yet). */
  private long startedNs = Long.MIN_VALUE;

  PrimaryWatch(long quorumTimeoutNs) {
    this.quorumTimeoutNs = quorumTimeoutNs;
  }

  /** The primary was heard from at nowNs. */
  void heard(long nowNs) {
    lastHeardNs = nowNs;
  }

  /** A new primary (or the first step): heard at nowNs, with a fresh randomized election timeout. */
  void restart(long nowNs, long electionTimeoutNs) {
    this.lastHeardNs = nowNs;
    this.electionTimeoutNs = electionTimeoutNs;
  }

  /** The process's first step, at nowNs: as {@link #restart}, and the quiet start begins. */
  void firstStep(long nowNs, long electionTimeoutNs) {
    restart(nowNs, electionTimeoutNs);
    startedNs = nowNs;
  }

  /**
   * True for the fixed timeout T after the first step: before its restart this replica may have answered
   * a round of a primary that still holds its lease, and it no longer knows when.
   */
  boolean justStarted(long nowNs) {
    return startedNs == Long.MIN_VALUE || nowNs - startedNs < quorumTimeoutNs;
  }

  long silentNs(long nowNs) {
    return nowNs - lastHeardNs;
  }

  /** True while the primary was heard within the (fixed) timeout T. */
  boolean alive(long nowNs) {
    return nowNs - lastHeardNs < quorumTimeoutNs;
  }

  /** True once the primary has been silent for the randomized election timeout. */
  boolean electionDue(long nowNs) {
    return nowNs - lastHeardNs >= electionTimeoutNs;
  }

  /** When the election timeout runs out unless the primary is heard. */
  long electionAtNs() {
    return lastHeardNs + electionTimeoutNs;
  }
}
