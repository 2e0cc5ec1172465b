package io.choir.server.core;

import io.choir.proto.MessageType;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.server.core.ReplicaCore.Mode;

/**
 * RecoveryPath owns the recovery protocol's handlers (VR Revisited 4.3): a replica restarted with
 * buffered durability may have lost entries it acknowledged; it answers nothing and votes for nothing
 * until f+1 replicas, the primary of the newest view among them included, have answered its RECOVERY
 * (RecoveryProtocol counts them). It then rejoins as a backup that must catch up (mustCatchUp), as does
 * a replica whose interrupted state-transfer install was wiped: until its log is complete again
 * (BackupPath) it neither votes, nor grants pre-votes, nor acknowledges, and its log ranks below every
 * other one. A replica in normal status answers others' RECOVERY.
 */
final class RecoveryPath {
  private final ViewState views;
  private final ReplicaLog log;
  private final RecoveryProtocol recovery;
  private final GapRepair repair;
  private final Completeness completeness;
  private final PrimaryWatch primaryWatch;
  private final ElectionTimeout timeouts;
  private final BackupPath backups;

  RecoveryPath(ViewState views, ReplicaLog log, RecoveryProtocol recovery, GapRepair repair,
      Completeness completeness, PrimaryWatch primaryWatch, ElectionTimeout timeouts, BackupPath backups) {
    this.views = views;
    this.log = log;
    this.recovery = recovery;
    this.repair = repair;
    this.completeness = completeness;
    this.primaryWatch = primaryWatch;
    this.timeouts = timeouts;
    this.backups = backups;
  }

  void onRecovery(int from, Recovery r, Effects out) {
    if (views.mode() != Mode.NORMAL) {
      return; // only replicas in normal status answer
    }
    out.send(from, views.view(), MessageType.RECOVERY_RESPONSE,
        RecoveryProtocol.answer(r, views.isPrimary(), log.lastOp(), log.commitOp()));
  }

  void onRecoveryResponse(int from, long v, RecoveryResponse r, long nowNs, Effects out) {
    RecoveryProtocol.Outcome outcome = recovery.answered(from, v, r).orElse(null);
    if (outcome == null) {
      return;
    }
    long maxView = outcome.view();
    RecoveryResponse fromPrimary = outcome.fromPrimary();
    // Rejoin as a backup of maxView: keep only what is committed for sure (the applied state), and
    // count our log as older than any other until it has caught up. It may have lost entries it
    // acknowledged: no vote and no acknowledgement until it has caught up.
    views.rejoinAfterRecovery(maxView);
    log.commitApplied();
    log.unverifyAboveCommit();
    // Our own tail above commit may be gone: what we know of the log is what the primary said.
    repair.rejoin(Math.max(log.commitOp(), fromPrimary.getLastOp()), fromPrimary.getCommit());
    completeness.unknown();
    backups.completeAt(fromPrimary.getLastOp(), out);
    primaryWatch.restart(nowNs, timeouts.draw());
    views.persistView(out);
    views.persistLastNormalView(out);
    backups.checkComplete(out);
    backups.scheduleNack(nowNs, out);
  }

  /** The timer while RECOVERING: RECOVERY is resent until answered. */
  void tick(long nowNs, Effects out) {
    recovery.tick(nowNs, views.view(), out);
  }
}
