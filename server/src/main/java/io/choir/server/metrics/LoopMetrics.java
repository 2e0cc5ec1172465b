package io.choir.server.metrics;

import io.choir.server.core.ReplicaCore;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * LoopMetrics is what the replica loop measures around the pure core, which has no clock of its own:
 * after each burst it looks at the core's numbers and records
 * <ul>
 *   <li>choir.commit.latency: at the primary, from the end of the burst that logged and sent new entries to the
 *       end of the burst in which the commit number passed the last of them (one sample per burst of
 *       new entries; a ring of {@link #RING} pending bursts, preallocated: nothing allocated per write);
 *   <li>choir.view_change: the time this replica spent out of a normal view, from the burst it entered
 *       view-change mode to the burst it was normal again;
 * </ul>
 * and it keeps, per sender id, when the loop last took a peer message from it (what /ready asks of a
 * backup: that it hears its primary). The loop's thread only.
 */
public final class LoopMetrics {
  /** Bursts of new entries awaiting commit that are timed at once; more go untimed. */
  static final int RING = 4096;
  private static final int MAX_ID = 256;

  private final Timer commit;
  private final Timer viewChange;
  private final long[] ringOps = new long[RING];
  private final long[] ringNs = new long[RING];
  private int head;
  private int size;
  private final long[] heardNs = new long[MAX_ID];
  private long lastOp = -1;
  private long view = -1;
  private ReplicaCore.Mode mode;
  private long viewChangeStartNs;
  private boolean inViewChange;

  public LoopMetrics(MeterRegistry registry) {
    this.commit = LatencyTimers.timer(registry, "choir.commit.latency",
        "At the primary: from logging and sending new entries to learning they are committed");
    this.viewChange = LatencyTimers.timer(registry, "choir.view_change",
        "Time this replica spent in view-change mode before it was in a normal view again");
    Arrays.fill(heardNs, Long.MIN_VALUE);
  }

  /** The loop took a peer message from replica from at nowNs. */
  public void peerMessage(int from, long nowNs) {
    if (from >= 0 && from < MAX_ID) {
      heardNs[from] = nowNs;
    }
  }

  /** When the loop last took a peer message from replica id, or Long.MIN_VALUE: never. */
  public long heardNs(int id) {
    return id >= 0 && id < MAX_ID ? heardNs[id] : Long.MIN_VALUE;
  }

  /** After a burst at nowNs: what changed in core since the last one. */
  public void afterBurst(ReplicaCore core, long nowNs) {
    ReplicaCore.Mode m = core.mode();
    if (m != mode) {
      if (m == ReplicaCore.Mode.VIEW_CHANGE && !inViewChange) {
        inViewChange = true;
        viewChangeStartNs = nowNs;
      } else if (m == ReplicaCore.Mode.NORMAL && inViewChange) {
        inViewChange = false;
        viewChange.record(nowNs - viewChangeStartNs, TimeUnit.NANOSECONDS);
      }
      mode = m;
    }
    boolean primary = m == ReplicaCore.Mode.NORMAL && core.isPrimary();
    long v = core.view();
    long last = core.lastOp();
    if (!primary || v != view) {
      size = 0; // a new view or role: what was pending is no longer this primary's to time
      view = v;
    } else if (last > lastOp && size < RING) {
      int tail = (head + size) % RING;
      ringOps[tail] = last;
      ringNs[tail] = nowNs;
      size++;
    }
    lastOp = last;
    long committed = core.commitOp();
    while (size > 0 && ringOps[head] <= committed) {
      commit.record(nowNs - ringNs[head], TimeUnit.NANOSECONDS);
      head = (head + 1) % RING;
      size--;
    }
  }
}
