package io.choir.server.core;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ResendTracker remembers, per op, when and to whom the primary last resent it, to decide each NACKed
 * op's fate (DESIGN.md "Loss, repair and flow"): skip it when it went to the same replica (or to all)
 * within resend_suppress, multicast it when another replica asked for it within the multicast window
 * (several replicas lost the same datagram: one send repairs them all), unicast it otherwise. Pure data,
 * bounded: the oldest records are dropped beyond maxRecords.
 */
final class ResendTracker {
  /** What to do with one requested op. */
  enum Decision {
    SKIP,
    UNICAST,
    MULTICAST
  }

  private static final int ALL = -1;

  private record Resend(long atNs, int to) {}

  private final long suppressNs;
  private final long multicastWindowNs;
  private final int maxRecords;
  private final LinkedHashMap<Long, Resend> recent;

  ResendTracker(long suppressNs, long multicastWindowNs, int maxRecords) {
    this.suppressNs = suppressNs;
    this.multicastWindowNs = multicastWindowNs;
    this.maxRecords = maxRecords;
    this.recent = new LinkedHashMap<>(16, 0.75f, false) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<Long, Resend> eldest) {
        return size() > ResendTracker.this.maxRecords;
      }
    };
  }

  /** Decides for op requested by replica from at nowNs, and records the resend it decides. */
  Decision decide(long op, int from, long nowNs) {
    return decide(op, from, nowNs, suppressNs);
  }

  /** As {@link #decide(long, int, long)}, with a suppression window of its own. */
  Decision decide(long op, int from, long nowNs, long suppressNs) {
    Resend r = recent.get(op);
    if (r != null) {
      long age = nowNs - r.atNs();
      if ((r.to() == from || r.to() == ALL) && age < suppressNs) {
        return Decision.SKIP;
      }
      if (r.to() != from && r.to() != ALL && age < multicastWindowNs) {
        recent.remove(op);
        recent.put(op, new Resend(nowNs, ALL));
        return Decision.MULTICAST;
      }
    }
    recent.remove(op);
    recent.put(op, new Resend(nowNs, from));
    return Decision.UNICAST;
  }

  int size() {
    return recent.size();
  }
}
