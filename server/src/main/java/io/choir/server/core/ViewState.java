package io.choir.server.core;

import io.choir.server.core.ReplicaCore.Mode;
import java.util.OptionalLong;

/**
 * ViewState owns the replica's place in VR's view protocol (VR Revisited 4.2, figure 2): its view and
 * status (mode), its last normal view (the last view in which its log was complete, which orders logs
 * in a view change) and the one storage has recorded, whether it takes no part in forming the current
 * view (restartLimbo) or must catch up first (mustCatchUp), and the count of completed view changes.
 * Every role of the replica asks it who leads; only the named transitions below change it, so the
 * places where a replica moves between views read as the protocol's steps.
 */
final class ViewState {
  private final Members members;
  private final int self;
  private long view;
  private Mode mode;
  /** The last view in which this replica's log was complete: it orders logs in a view change. */
  private long lastNormalView;
  /** The last normal view storage has recorded (Event.LastNormalViewPersisted); acks wait for it. */
  private long durableLastNormalView;
  /**
   * Takes no part in forming the current view: restarted into VIEW_CHANGE (see the constructor), or
   * must catch up first (mustCatchUp). Such a replica sends no START_VIEW_CHANGE or DO_VIEW_CHANGE and
   * waits to hear from a primary; it may ask for a view change by pre-vote when that stays silent.
   */
  private boolean restartLimbo;
  /**
   * This replica lost state it may have acknowledged (an interrupted state-transfer install wiped it,
   * or a crash under buffered durability lost unsynced log writes, VR 4.3): until its log is complete
   * again in some view it neither votes in a view change nor acknowledges entries, else it could count
   * toward a quorum that lacks a committed op (issue 9, 2b). Cleared when the log is complete, which
   * tells storage to clear its marker (Effects.caughtUp).
   */
  private boolean mustCatchUp;
  /** The highest view whose start this replica counted in viewChanges. */
  private long lastCountedView;
  private long viewChanges;
  /** When the last counted view change completed (the step clock); empty before the first. */
  private OptionalLong lastViewChangeNs = OptionalLong.empty();

  ViewState(Members members, RecoveredState recovered) {
    this.members = members;
    this.self = members.self();
    int n = members.voterCount();
    this.view = recovered.view();
    this.lastNormalView = Math.min(recovered.lastNormalView(), recovered.view());
    // A replica that is no member of its epoch (retired, or a joiner not added yet) has acknowledged
    // nothing that counts and no voter would answer its RECOVERY: it skips recovery, and catches up
    // before it acknowledges anything once it is a member (DESIGN.md "Membership").
    boolean recovers = recovered.recovering() && n > 1;
    boolean member = members.selfRole() != Membership.Role.NONE;
    this.mode = recovers && member ? Mode.RECOVERING : Mode.NORMAL;
    if (mode == Mode.NORMAL && n > 1 && recovered.restarted()
        && (lastNormalView < view || members.primaryOf(view) == self)) {
      // Restarted in the middle of a view change, or before its log was complete in this view: entries
      // above its commit may be from an abandoned view. It rejoins as in a view change, and adopts the
      // view (dropping those entries) when it hears from that view's primary.
      // A restarted primary never resumes its view either: its PREPAREs may have reached backups before
      // its own fsync did, so its log can lack entries they hold, and reusing those op numbers would
      // fork the log. A view change picks the longest log instead.
      this.mode = Mode.VIEW_CHANGE;
      // It never helps to form this same view again (its log may differ from what it said before the
      // crash): it waits to hear from this view's primary, or joins a view change to a newer view.
      this.restartLimbo = true;
    }
    this.durableLastNormalView = lastNormalView;
    this.lastCountedView = recovered.view();
    this.mustCatchUp = (recovered.mustCatchUp() || recovers && !member) && n > 1;
    if (mustCatchUp) {
      // What its log says it has is not what it acknowledged: it votes for nothing and acknowledges
      // nothing until it has caught up from a primary, and its log ranks below every other one.
      this.restartLimbo = mode == Mode.VIEW_CHANGE || restartLimbo;
    }
    if (mode == Mode.RECOVERING || mustCatchUp) {
      this.lastNormalView = 0;
    }
  }

  /** The current membership (epoch, voters, learners): who leads, votes and counts. */
  Members members() {
    return members;
  }

  long view() {
    return view;
  }

  Mode mode() {
    return mode;
  }

  long lastNormalView() {
    return lastNormalView;
  }

  boolean restartLimbo() {
    return restartLimbo;
  }

  boolean mustCatchUp() {
    return mustCatchUp;
  }

  boolean isPrimary() {
    return mode == Mode.NORMAL && members.primaryOf(view) == self;
  }

  boolean isBackup() {
    return mode == Mode.NORMAL && members.primaryOf(view) != self;
  }

  /** The primary of the current view (in a view change: the new primary). */
  int primary() {
    return members.primaryOf(view);
  }

  /** True when this view's primary is this replica (NORMAL or not). */
  boolean leadsView() {
    return members.primaryOf(view) == self;
  }

  /** True when storage has recorded the current last normal view: only then do acks and own copies count. */
  boolean lnvDurable() {
    return durableLastNormalView == lastNormalView;
  }

  void persistView(Effects out) {
    out.persistView(view);
  }

  void persistLastNormalView(Effects out) {
    out.persistLastNormalView(lastNormalView);
  }

  /** Storage recorded lastNormalView (Event.LastNormalViewPersisted). */
  void lastNormalViewDurable(long recorded) {
    durableLastNormalView = recorded;
  }

  /** Moves to newView in VIEW_CHANGE (VR 4.2 step 1); a replica that must catch up takes no part in it. */
  void enterViewChange(long newView) {
    restartLimbo = mustCatchUp;
    view = newView;
    mode = Mode.VIEW_CHANGE;
  }

  /** The new primary installed the chosen log: NORMAL, and its log is complete in this view (VR 4.2 step 4). */
  void normalAsNewPrimary() {
    mode = Mode.NORMAL;
    lastNormalView = view;
  }

  /** Adopts view v whose primary is normal (VR 4.2 step 5): NORMAL, its log not yet complete in it. */
  void adopt(long v) {
    view = v;
    mode = Mode.NORMAL;
    restartLimbo = false;
  }

  /** A backup's log reached what the primary had: its last normal view becomes this view, and it has caught up. */
  void logComplete() {
    lastNormalView = view;
    mustCatchUp = false;
  }

  /**
   * Rejoins as a backup of view v after recovery (VR 4.3 step 3): its log counts as older than any
   * other, and it may have lost entries it acknowledged, so no vote and no acknowledgement until it has
   * caught up.
   */
  void rejoinAfterRecovery(long v) {
    view = v;
    mode = Mode.NORMAL;
    lastNormalView = 0;
    mustCatchUp = true;
  }

  /**
   * A committed EpochChange was applied (DESIGN.md "Membership"): the new epoch's first view, status
   * normal, its log complete in it (every member that switches holds the same log through the entry).
   */
  void enterEpoch(long startView) {
    view = startView;
    mode = Mode.NORMAL;
    lastNormalView = startView;
    restartLimbo = false;
  }

  /** Counts the completion of a view change into this view, once per view (not a rejoin of the same). */
  void countViewChange(long nowNs) {
    if (view > lastCountedView) {
      lastCountedView = view;
      viewChanges++;
      lastViewChangeNs = OptionalLong.of(nowNs);
    }
  }

  long viewChanges() {
    return viewChanges;
  }

  OptionalLong lastViewChangeNs() {
    return lastViewChangeNs;
  }
}
