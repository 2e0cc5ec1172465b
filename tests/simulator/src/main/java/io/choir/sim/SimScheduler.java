package io.choir.sim;

import java.util.PriorityQueue;

/**
 * SimScheduler is the simulation's clock and agenda: actions at simulated times, run one at a time in
 * time order (ties in the order they were scheduled), so one seed gives one run, event for event. An
 * action may belong to a replica process; it is dropped when that process crashed after it was
 * scheduled (a dead process does nothing more).
 */
final class SimScheduler {
  private record Scheduled(long atNs, long seq, SimReplica owner, int incarnation, Runnable action) {}

  private final PriorityQueue<Scheduled> queue = new PriorityQueue<>(
      (a, b) -> a.atNs != b.atNs ? Long.compare(a.atNs, b.atNs) : Long.compare(a.seq, b.seq));
  private long seq;
  private long now;
  private long ran;

  /** The simulated time, in nanoseconds from the start of the run. */
  long now() {
    return now;
  }

  /** Actions run so far. */
  long ran() {
    return ran;
  }

  /** Runs action delayNs from now (negative delays mean now). */
  void after(long delayNs, Runnable action) {
    queue.add(new Scheduled(now + Math.max(0, delayNs), seq++, null, 0, action));
  }

  /** Runs action delayNs from now unless owner's process has crashed (or restarted) by then. */
  void after(long delayNs, SimReplica owner, Runnable action) {
    queue.add(new Scheduled(now + Math.max(0, delayNs), seq++, owner, owner.incarnation, action));
  }

  /** Runs the next live action; false when nothing is left. */
  boolean runNext() {
    while (true) {
      Scheduled s = queue.poll();
      if (s == null) {
        return false;
      }
      now = s.atNs;
      if (s.owner != null && (!s.owner.up || s.owner.incarnation != s.incarnation)) {
        continue; // scheduled for a process that has since crashed
      }
      ran++;
      s.action.run();
      return true;
    }
  }
}
