package io.choir.sim;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SimScheduler is the simulation's clock and agenda: actions at simulated times, run one at a time in
 * time order (ties in the order they were scheduled), so one seed gives one run, event for event. An
 * action may belong to a replica process; it is dropped when that process crashed after it was
 * scheduled (a dead process does nothing more).
 */
final class SimScheduler {
  private static final class Scheduled implements Timer {
    final long atNs;
    final long seq;
    final SimReplica owner;
    final int incarnation;
    final Runnable action;
    boolean cancelled;

    Scheduled(long atNs, long seq, SimReplica owner, int incarnation, Runnable action) {
      this.atNs = atNs;
      this.seq = seq;
      this.owner = owner;
      this.incarnation = incarnation;
      this.action = action;
    }

    @Override
    public void cancel() {
      cancelled = true;
    }
  }

  /** A scheduled action that can still be called off (the client library's ClientScheduler.Timer). */
  interface Timer {
    /** Calls the action off if it has not run yet; does nothing otherwise. */
    void cancel();
  }

  /** Actions of paused processes, held in the order they were due until the process resumes. */
  private final Map<SimReplica, ArrayList<Scheduled>> held = new HashMap<>();

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

  /** Runs action delayNs from now (negative delays mean now), never inside this call. */
  Timer after(long delayNs, Runnable action) {
    Scheduled s = new Scheduled(now + Math.max(0, delayNs), seq++, null, 0, action);
    queue.add(s);
    return s;
  }

  /** Runs action delayNs from now unless owner's process has crashed (or restarted) by then. */
  Timer after(long delayNs, SimReplica owner, Runnable action) {
    Scheduled s = new Scheduled(now + Math.max(0, delayNs), seq++, owner, owner.incarnation, action);
    queue.add(s);
    return s;
  }

  /**
   * owner's process resumes (SIGCONT): everything that fell due while it was paused runs now, in the
   * order it was due.
   */
  void resume(SimReplica owner) {
    List<Scheduled> due = held.remove(owner);
    if (due == null) {
      return;
    }
    for (Scheduled s : due) {
      Scheduled again = new Scheduled(now, seq++, s.owner, s.incarnation, s.action);
      queue.add(again);
    }
  }

  /** Runs the next live action; false when nothing is left. */
  boolean runNext() {
    while (true) {
      Scheduled s = queue.poll();
      if (s == null) {
        return false;
      }
      now = s.atNs;
      if (s.cancelled) {
        continue;
      }
      if (s.owner != null && (!s.owner.up || s.owner.incarnation != s.incarnation)) {
        continue; // scheduled for a process that has since crashed
      }
      if (s.owner != null && s.owner.paused) {
        held.computeIfAbsent(s.owner, k -> new ArrayList<>()).add(s); // a stopped process does nothing
        continue;
      }
      ran++;
      s.action.run();
      return true;
    }
  }
}
