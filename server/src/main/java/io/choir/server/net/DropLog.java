package io.choir.server.net;

import java.util.HashMap;
import java.util.Map;

/**
 * DropLog decides when a dropped input is worth a log line: the first drop of a reason, then at most
 * one per interval per reason, with how many went unlogged in between. A flood of forged or corrupt
 * datagrams thus costs a line per reason per interval, not a line each. The reasons are the code's
 * own names (a fixed set), so the map is bounded. Time is an argument.
 */
final class DropLog {
  /** Default interval between two lines of one reason. */
  static final long DEFAULT_INTERVAL_NS = 10_000_000_000L;

  private final long intervalNs;
  private final Map<String, long[]> state = new HashMap<>(); // reason -> {last line at ns, unlogged}

  DropLog(long intervalNs) {
    this.intervalNs = intervalNs;
  }

  /**
   * Records one drop of reason at nowNs; returns -1 when it is not to be logged, else the drops of
   * reason not logged since the previous line (0 for the first).
   */
  synchronized long onDrop(String reason, long nowNs) {
    long[] s = state.get(reason);
    if (s == null) {
      state.put(reason, new long[] {nowNs, 0});
      return 0;
    }
    if (nowNs - s[0] >= intervalNs) {
      long unlogged = s[1];
      s[0] = nowNs;
      s[1] = 0;
      return unlogged;
    }
    s[1]++;
    return -1;
  }
}
