package io.choir.server.core;

/**
 * HeartbeatTimer owns when the primary multicasts a HEARTBEAT (VR Revisited 4.1; DESIGN.md "Loss, repair
 * and flow"): once per heartbeat interval without other multicast (a PREPARE that fits one datagram
 * stands in for it), and sooner, after a tenth of the interval, when the commit number advanced after
 * the last multicast, so backups apply (and serve sequential reads) promptly when the load stops.
 */
final class HeartbeatTimer {
  private final long intervalNs;
  private long lastMulticastNs = Long.MIN_VALUE / 2;
  private long commitAtLastMulticast;

  HeartbeatTimer(long intervalNs) {
    this.intervalNs = intervalNs;
  }

  /** A multicast that tells backups the primary is alive, and commitOp, went out at nowNs. */
  void multicast(long nowNs, long commitOp) {
    lastMulticastNs = nowNs;
    commitAtLastMulticast = commitOp;
  }

  /** True when a heartbeat is due at nowNs with the commit number at commitOp. */
  boolean due(long nowNs, long commitOp) {
    boolean idle = nowNs - lastMulticastNs >= intervalNs;
    boolean commitNews = commitOp > commitAtLastMulticast && nowNs - lastMulticastNs >= intervalNs / 10;
    return idle || commitNews;
  }

  /** When the next heartbeat is due at the latest. */
  long nextNs() {
    return lastMulticastNs + intervalNs;
  }
}
