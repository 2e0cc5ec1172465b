package io.choir.server.core;

/**
 * ReplicatedClock owns the clock entries are stamped with (Entry.time_ms; the Raft thesis 6.3 session
 * clock): the time of the newest entry this replica knows, and the step time at which it learned it.
 * It runs on from there at the local monotonic rate, so entry times never decrease along the log and
 * never run ahead of the real time elapsed since the first entry (an entry is learned after it was made).
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

  /** Moves the clock up to an entry's time timeMs, learned at nowNs, when it is newer than the clock says. */
  void learn(long timeMs, long nowNs) {
    if (timeMs > nowMs(nowNs)) {
      baseMs = timeMs;
      baseNs = nowNs;
    }
  }
}
