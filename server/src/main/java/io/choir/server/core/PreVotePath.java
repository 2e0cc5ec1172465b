package io.choir.server.core;

import io.choir.proto.MessageType;
import io.choir.proto.PreViewChangeOk;
import io.choir.server.core.ReplicaCore.Mode;

/**
 * PreVotePath owns the step before a view change (VR Revisited 4.2 step 1 behind the pre-vote of the
 * Raft thesis 9.6): a backup that hears nothing from its primary for a randomized election timeout
 * first asks the others whether they would support view v+1 (PRE_VIEW_CHANGE). Only a backup that has
 * not heard its primary for the election timeout, or a replica already in a view change that has
 * stalled, grants; the primary never does, nor does a replica that must catch up. With f grants the
 * caller moves to view v+1 (ViewChangePath), so a replica that alone cannot hear the primary (cut off,
 * or just restarted) never raises its view. It also answers whether the primary is alive, for leader
 * stickiness (Raft thesis 4.2.3). A replica grants nothing in the election timeout after its process
 * started (it may have answered a lease round before and forgotten when: DESIGN.md "Lease reads").
 */
final class PreVotePath {
  private final CoreConfig config;
  private final ViewState views;
  private final QuorumTracker quorum;
  private final PrimaryWatch primaryWatch;
  private final PreVote preVote;
  private final ViewChange viewChange;
  private final WritePath writes;
  private final Counters counters;

  PreVotePath(CoreConfig config, ViewState views, QuorumTracker quorum, PrimaryWatch primaryWatch,
      PreVote preVote, ViewChange viewChange, WritePath writes, Counters counters) {
    this.config = config;
    this.views = views;
    this.quorum = quorum;
    this.primaryWatch = primaryWatch;
    this.preVote = preVote;
    this.viewChange = viewChange;
    this.writes = writes;
    this.counters = counters;
  }

  /**
   * True when this replica is NORMAL and its primary is alive: as a backup it heard the primary within
   * the election timeout; as the primary it heard from a quorum within it.
   */
  boolean hearsLivePrimary(long nowNs) {
    if (views.mode() != Mode.NORMAL || views.members().voterCount() == 1) {
      return false;
    }
    return views.isPrimary() ? quorum.live(nowNs) >= views.members().quorum()
        : primaryWatch.alive(nowNs);
  }

  /**
   * True when this replica must not help form a view newer than its own, whoever proposes it (the
   * lease's side at the backups, DESIGN.md "Lease reads (issue 14)"): it is a backup that heard its
   * primary within the election timeout, or its process started less than that ago (it may have
   * answered a round before and no longer knows when).
   */
  boolean keepsToPrimary(long nowNs) {
    return (views.isBackup() && primaryWatch.alive(nowNs)) || primaryWatch.justStarted(nowNs);
  }

  /** True for the election timeout after this process's first step (PrimaryWatch.justStarted). */
  boolean justStarted(long nowNs) {
    return primaryWatch.justStarted(nowNs);
  }

  /**
   * Asks the others whether they would support a view change to view + 1, instead of starting one: a
   * replica that alone cannot hear the primary (cut off, or just restarted) then never raises its view
   * and never deposes a healthy primary when it comes back (issue 9, 2d). Resent until granted by f
   * others or the primary is heard again.
   */
  void startPreVote(long nowNs, Effects out) {
    if (views.mustCatchUp() || !views.members().selfVotes()) {
      return; // it takes no part in forming a view (or is a learner, or retired); the others ask for themselves
    }
    long view = views.view();
    if (view >= PeerMessageChecks.MAX_NUMBER || view + 1 >= Membership.epochBase(views.members().epoch() + 1)) {
      return; // no view beyond: the others would drop the proposal (never reached but by lying members)
    }
    preVote.ask(view + 1, view, nowNs, counters, out);
  }

  /**
   * Grants a pre-vote for proposed when this replica would itself support it: it is in a view change
   * already, or it is a backup that has not heard its primary for the (fixed) election timeout. The
   * primary never grants. A replica that must catch up grants nothing (it does not vote).
   */
  void onPreViewChange(int from, long proposed, long nowNs, Effects out) {
    if (views.mustCatchUp() || !views.members().selfVotes()) {
      return;
    }
    long view = views.view();
    if (proposed <= view) {
      // The asker is behind: if we lead a newer view, our heartbeat brings it in.
      if (views.isPrimary()) {
        out.send(from, view, MessageType.HEARTBEAT, writes.heartbeat());
      }
      return;
    }
    // In a view change it grants only once its own has stalled: a view change making progress (a
    // long fetch of the chosen log) must not be cut short by one replica's impatience.
    // Never in the election timeout after a start: it may have answered a lease round before.
    boolean grant = !primaryWatch.justStarted(nowNs)
        && ((views.mode() == Mode.VIEW_CHANGE && viewChange.stalled(nowNs))
            || (views.isBackup() && !primaryWatch.alive(nowNs)));
    if (grant) {
      counters.preVotesGranted++;
      out.send(from, view, MessageType.PRE_VIEW_CHANGE_OK,
          PreViewChangeOk.newBuilder().setView(proposed).build());
    }
  }

  /**
   * A grant for proposed: true when, with it, f others and this replica want the view change (a
   * majority), so the caller starts it.
   */
  boolean onPreViewChangeOk(int from, long proposed, long nowNs) {
    if (!preVote.asksFor(proposed) || proposed <= views.view()) {
      return false;
    }
    if (hearsLivePrimary(nowNs)) {
      preVote.clear(); // a late grant: our primary spoke again meanwhile
      return false;
    }
    return preVote.granted(from);
  }

  /** A backup's election timer: the primary is silent, so ask for a view change (VR 4.2 step 1, behind a pre-vote). */
  void electionTick(long nowNs, Effects out) {
    if (primaryWatch.electionDue(nowNs)) {
      startPreVote(nowNs, out);
    } else {
      preVote.clear();
      out.tickBy(primaryWatch.electionAtNs());
    }
  }
}
