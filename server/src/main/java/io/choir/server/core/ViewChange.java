package io.choir.server.core;

import io.choir.proto.DoViewChange;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * ViewChange owns the state of one view change at this replica (VR Revisited 4.2 steps 2-3): who sent
 * START_VIEW_CHANGE, whether this replica sent its DO_VIEW_CHANGE, the DO_VIEW_CHANGEs the new primary
 * collected and the log it chose from them (the largest last normal view, then op), and the view
 * change's timers: when it started or last made progress, its randomized timeout, and when its
 * messages were last resent. Fetching the chosen log is {@link LogFill}'s job; moving between views
 * is the core's.
 */
final class ViewChange {
  /** The log chosen from f+1 DO_VIEW_CHANGEs: replica best's (described by log), and the highest commit among them. */
  record Choice(int best, DoViewChange log, long maxCommit) {}

  private final Set<Integer> startViewChangeFrom = new HashSet<>();
  private final Map<Integer, DoViewChange> doViewChanges = new HashMap<>();
  private long startedNs;
  private long timeoutNs;
  private long lastResendNs;
  private boolean doViewChangeSent;
  /** The log chosen, while it is being fetched and installed, or null. */
  private DoViewChange chosen;
  private long chosenCommit;

  /** Starts the timers at nowNs with a timeout of timeoutNs (first step, and each new view change). */
  void startTimers(long nowNs, long timeoutNs) {
    this.startedNs = nowNs;
    this.timeoutNs = timeoutNs;
    this.lastResendNs = nowNs;
  }

  /** A new view change: nothing collected, nothing sent, nothing chosen. */
  void begin(long nowNs, long timeoutNs) {
    startViewChangeFrom.clear();
    doViewChanges.clear();
    doViewChangeSent = false;
    chosen = null;
    startTimers(nowNs, timeoutNs);
  }

  /** The view was adopted from its primary: what was collected for it is of no use. */
  void forget() {
    startViewChangeFrom.clear();
    doViewChanges.clear();
    chosen = null;
  }

  /** True once the view change has made no progress for its timeout. */
  boolean stalled(long nowNs) {
    return nowNs - startedNs >= timeoutNs;
  }

  /** When the view change times out unless it makes progress. */
  long timeoutAtNs() {
    return startedNs + timeoutNs;
  }

  /** The view change made progress (or its new primary is alive): its timeout starts again. */
  void progressed(long nowNs) {
    startedNs = nowNs;
  }

  /** Gives the view change up at once: it counts as stalled from now. */
  void giveUp(long nowNs) {
    startedNs = nowNs - timeoutNs;
  }

  /** True (and noted) when the view change's messages are due to be resent, every intervalNs. */
  boolean resendDue(long nowNs, long intervalNs) {
    if (nowNs - lastResendNs >= intervalNs) {
      lastResendNs = nowNs;
      return true;
    }
    return false;
  }

  long lastResendNs() {
    return lastResendNs;
  }

  void startViewChangeFrom(int from) {
    startViewChangeFrom.add(from);
  }

  /** True once, when f others sent START_VIEW_CHANGE: this replica sends its DO_VIEW_CHANGE now. */
  boolean readyForDoViewChange(int f) {
    if (doViewChangeSent || startViewChangeFrom.size() < f) {
      return false;
    }
    doViewChangeSent = true;
    return true;
  }

  boolean doViewChangeSent() {
    return doViewChangeSent;
  }

  void doViewChange(int from, DoViewChange dvc) {
    doViewChanges.put(from, dvc);
  }

  /** Only this replica's own DO_VIEW_CHANGE counts from now on (the others are refused). */
  void onlyOwn(int self, DoViewChange own) {
    doViewChanges.clear();
    doViewChanges.put(self, own);
  }

  /** This replica's own DO_VIEW_CHANGE as collected, or null. */
  DoViewChange own(int self) {
    return doViewChanges.get(self);
  }

  /**
   * The log to choose (VR 4.2 step 3) once quorum DO_VIEW_CHANGEs, this replica's own among them, are
   * in and none is chosen yet, else null: the largest (last normal view, last op), this replica's own
   * on a tie.
   */
  Choice choose(int self, int quorum) {
    if (chosen != null || doViewChanges.size() < quorum || !doViewChanges.containsKey(self)) {
      return null;
    }
    int best = -1;
    DoViewChange bestDvc = null;
    long maxCommit = 0;
    for (Map.Entry<Integer, DoViewChange> e : doViewChanges.entrySet()) {
      DoViewChange d = e.getValue();
      maxCommit = Math.max(maxCommit, d.getCommit());
      if (bestDvc == null || d.getLastNormalView() > bestDvc.getLastNormalView()
          || (d.getLastNormalView() == bestDvc.getLastNormalView() && d.getLastOp() > bestDvc.getLastOp())
          || (d.getLastNormalView() == bestDvc.getLastNormalView() && d.getLastOp() == bestDvc.getLastOp()
              && e.getKey() == self)) {
        best = e.getKey();
        bestDvc = d;
      }
    }
    return new Choice(best, bestDvc, maxCommit);
  }

  /** The log described by c is the one this view starts from. */
  void chose(Choice c) {
    chosen = c.log();
    chosenCommit = c.maxCommit();
  }

  /** The log chosen, or null. */
  DoViewChange chosen() {
    return chosen;
  }

  /** The highest commit number the DO_VIEW_CHANGEs of the chosen log's quorum named. */
  long chosenCommit() {
    return chosenCommit;
  }

  void clearChosen() {
    chosen = null;
  }

  /** The most members any of the collected sets holds (bounded by the members). */
  int size() {
    return Math.max(startViewChangeFrom.size(), doViewChanges.size());
  }
}
