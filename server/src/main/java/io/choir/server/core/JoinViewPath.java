package io.choir.server.core;

import io.choir.proto.StartView;
import io.choir.server.core.ReplicaCore.Mode;

/**
 * JoinViewPath owns how a replica joins a view whose primary is already normal (VR Revisited 4.2 step
 * 5): on START_VIEW, or on a PREPARE or HEARTBEAT of a newer view (it missed START_VIEW). It adopts the
 * view, keeping its entries above its commit as unverified (it must not forget what it acknowledged):
 * the new primary's entries confirm or replace them by NACK repair (BackupPath), and its last normal
 * view stays the old one until its log reaches what the new primary had, so it does not acknowledge
 * and a partial log never outranks a complete one in a later view change.
 */
final class JoinViewPath {
  private final CoreConfig config;
  private final int self;
  private final ViewState views;
  private final ReplicaLog log;
  private final Completeness completeness;
  private final ViewChange viewChange;
  private final LogFill fill;
  private final PreVote preVote;
  private final Resender resender;
  private final GapRepair repair;
  private final PrimaryWatch primaryWatch;
  private final ElectionTimeout timeouts;
  private final WritePath writes;
  private final BackupPath backups;
  private final Counters counters;

  JoinViewPath(CoreConfig config, ViewState views, ReplicaLog log, Completeness completeness,
      ViewChange viewChange, LogFill fill, PreVote preVote, Resender resender, GapRepair repair,
      PrimaryWatch primaryWatch, ElectionTimeout timeouts, WritePath writes, BackupPath backups,
      Counters counters) {
    this.config = config;
    this.self = config.replicaId();
    this.views = views;
    this.log = log;
    this.completeness = completeness;
    this.viewChange = viewChange;
    this.fill = fill;
    this.preVote = preVote;
    this.resender = resender;
    this.repair = repair;
    this.primaryWatch = primaryWatch;
    this.timeouts = timeouts;
    this.writes = writes;
    this.backups = backups;
    this.counters = counters;
  }

  /**
   * Adopts view v whose primary is already normal (VR 4.2; also a replica that missed START_VIEW): our
   * entries above commit may come from an abandoned view, so they stay unverified until the new
   * primary's entries confirm or replace them by NACK repair; the log is complete (and our last normal
   * view becomes v) once it reaches what the primary had.
   */
  void adoptView(long v, long nowNs, Effects out) {
    writes.stepDown(v, nowNs, out);
    views.adopt(v);
    resender.newView();
    preVote.clear();
    // Entries above commit are kept but unverified: the new primary's entries confirm or replace them.
    log.unverifyAboveCommit();
    repair.newView(log.commitOp());
    completeness.unknown();
    primaryWatch.restart(nowNs, timeouts.draw());
    viewChange.forget();
    fill.stop();
    views.countViewChange(nowNs);
    views.persistView(out);
  }

  /**
   * The switch to a new epoch left this replica a backup (or a learner) of its first view, with the log
   * every member that switches holds (DESIGN.md "Membership"): complete in it, no view change.
   */
  void startEpochAsBackup(long nowNs, Effects out) {
    resender.newView();
    preVote.clear();
    log.verifyAll();
    repair.newView(log.commitOp());
    completeness.complete();
    primaryWatch.restart(nowNs, timeouts.draw());
    viewChange.forget();
    fill.stop();
    views.countViewChange(nowNs);
    views.persistView(out);
    views.persistLastNormalView(out);
    if (views.members().current().contains(self)) {
      backups.announce(out);
    }
  }

  void onStartView(StartView sv, long v, long nowNs, Effects out) {
    if (v == views.view() && views.mode() == Mode.NORMAL && completeness.isComplete()) {
      primaryWatch.heard(nowNs);
      return; // already in this view with a complete log
    }
    if (views.members().primaryOf(v) == self) {
      counters.droppedUnexpected++;
      return;
    }
    if (!(v == views.view() && views.mode() == Mode.NORMAL)) {
      adoptView(v, nowNs, out);
    }
    primaryWatch.heard(nowNs);
    repair.learnLastOp(sv.getLastOp());
    if (!completeness.isComplete()) {
      backups.completeAt(sv.getLastOp(), out);
    }
    backups.drainOutOfOrder(nowNs, out);
    backups.learnCommit(sv.getCommit(), nowNs, out);
    backups.checkComplete(out);
    backups.scheduleNack(nowNs, out);
  }
}
