package io.choir.server.core;

/**
 * ReplicatedClock owns the clock entries are stamped with (Entry.time_ms; the Raft thesis 6.3 session
 * clock): the time of the newest entry of this replica's log, and the step time at which it was placed.
 * It runs on from there at the local monotonic rate, so entry times never decrease along the log and
 * never run ahead of the real time elapsed since the first entry (an entry is learned after it was made).
 *
 * <p>It follows the newest entry even when that entry's time is below what this replica's own estimate
 * says (the primary that stamped it lagged, having learned its own newest entry late). So the clock
 * never advances faster than real time across primaries either: a time stamped at admission plus a TTL
 * is never reached sooner, in real time, than that TTL after the admission. Taking the larger of the two
 * instead (as this class once did) let a new primary whose estimate came from an older, promptly learned
 * entry jump ahead of a lagging predecessor's stamps, and expire a lease up to that lag early
 * (WatchLeaseSimulationTest seeds 165, 272, 637, which now fail any such deletion). Following costs
 * lateness, never safety: the lag a view change adds is how late the new primary placed the newest
 * entry.
 */
final class ReplicatedClock {
  private long baseMs;
  private long baseNs;
  private boolean started;

  /** Starts the clock at step time nowNs (the first step). */
  void start(long nowNs) {
    baseNs = nowNs;
    started = true;
  }

  /** The restarted log's newest entry was made at timeMs. */
  void restartedAt(long timeMs) {
    baseMs = timeMs;
  }

  /** The replicated clock at step time nowNs. */
  long nowMs(long nowNs) {
    if (!started) {
      started = true;
      baseNs = nowNs;
    }
    return baseMs + Math.max(0, nowNs - baseNs) / 1_000_000L;
  }

  /**
   * The log's newest entry is now one of another replica's primary, made at timeMs and placed at step
   * time nowNs: the clock runs on from it, whether it is ahead of or behind the clock's estimate.
   */
  void follow(long timeMs, long nowNs) {
    started = true;
    baseMs = timeMs;
    baseNs = nowNs;
  }
}
