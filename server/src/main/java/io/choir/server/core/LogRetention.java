package io.choir.server.core;

import java.util.OptionalLong;

/**
 * LogRetention owns the old end of the log: the first op the log still holds, and when to ask storage to
 * drop the entries below a new first op. It keeps at least log_retention_min ops behind commit (so a
 * backup that fell a little behind repairs from the log rather than by state transfer), at most
 * log_retention_max (so a dead replica cannot make the log grow forever), and never an unapplied entry
 * (it is needed to recover after a crash). Requests come in steps of a tenth of the minimum, so the
 * log is not truncated on every applied op.
 */
final class LogRetention {
  private final long minOps;
  private final long maxOps;
  /** The first op the log holds (ops below it are only in the applied state). */
  private long firstOp;
  /** The first op of the last truncation asked for (0: none yet). */
  private long lastRequest;

  LogRetention(long firstOp, long minOps, long maxOps) {
    this.firstOp = firstOp;
    this.minOps = minOps;
    this.maxOps = maxOps;
  }

  long firstOp() {
    return firstOp;
  }

  /**
   * The op to truncate the log before, when it is time to (the log then starts there), given the
   * lowest op every replica that matters has (lowWatermark) and the commit and applied numbers.
   */
  OptionalLong truncate(long lowWatermark, long commitOp, long appliedOp) {
    long keepFrom = Math.min(lowWatermark + 1, commitOp - minOps + 1);
    keepFrom = Math.max(keepFrom, commitOp - maxOps + 1);
    keepFrom = Math.min(keepFrom, appliedOp + 1);
    long step = Math.max(1, minOps / 10);
    if (keepFrom > firstOp && keepFrom - Math.max(lastRequest, firstOp) >= step) {
      firstOp = keepFrom;
      lastRequest = keepFrom;
      return OptionalLong.of(keepFrom);
    }
    return OptionalLong.empty();
  }

  /** A state transfer installed a snapshot of every op up to op: the (empty) log starts after it. */
  void installed(long op) {
    firstOp = op + 1;
  }
}
