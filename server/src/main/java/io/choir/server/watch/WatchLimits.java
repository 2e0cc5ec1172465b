package io.choir.server.watch;

/**
 * WatchLimits are the bounds of a replica's watches (the settings of the same names, docs/watch.md):
 * the history kept in memory, the unwritten bytes a watch may hold, and how many watches there may be.
 */
public record WatchLimits(int historyEvents, long historyBytes, long bufferBytes, int maxWatchers,
    int maxWatchersPerConnection, int maxKeyBytes) {
  /** Most bytes of events one Response carries (it may hold more when one revision is larger). */
  public static final int MESSAGE_BYTES = 64 << 10;

  public WatchLimits {
    if (historyEvents < 1 || historyBytes < 1 || bufferBytes < 1 || maxWatchers < 1 || maxWatchersPerConnection < 1
        || maxKeyBytes < 1) {
      throw new IllegalArgumentException("bad watch limits: " + this);
    }
  }

  /** Keys of any size (tests). */
  public WatchLimits(int historyEvents, long historyBytes, long bufferBytes, int maxWatchers,
      int maxWatchersPerConnection) {
    this(historyEvents, historyBytes, bufferBytes, maxWatchers, maxWatchersPerConnection, Integer.MAX_VALUE);
  }
}
