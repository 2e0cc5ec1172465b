package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.Response;
import java.util.ArrayList;
import java.util.List;

/**
 * StoragePath is what the core does when storage reports back: a log write reached the disk
 * ({@link #onPersisted}), the last normal view did ({@link #onLastNormalViewPersisted}), or the state
 * machine applied a run of entries ({@link #onApplied}). Each may let the primary commit by its quorum,
 * a backup acknowledge, replies go to clients, reads waiting for the applied number go ahead, and the
 * log be truncated below what every replica has.
 */
final class StoragePath {
  private final CoreConfig config;
  private final ViewState views;
  private final ReplicaLog log;
  private final LogRetention retention;
  private final Intake intake;
  private final QuorumTracker quorum;
  private final CatchUp catchUp;
  private final WritePath writes;
  private final ReadPath reads;
  private final BackupPath backups;
  private final MembershipPath memberships;

  StoragePath(CoreConfig config, ViewState views, ReplicaLog log, LogRetention retention, Intake intake,
      QuorumTracker quorum, CatchUp catchUp, WritePath writes, ReadPath reads, BackupPath backups,
      MembershipPath memberships) {
    this.config = config;
    this.views = views;
    this.log = log;
    this.retention = retention;
    this.intake = intake;
    this.quorum = quorum;
    this.catchUp = catchUp;
    this.writes = writes;
    this.reads = reads;
    this.backups = backups;
    this.memberships = memberships;
  }

  void onPersisted(Event.Persisted event, long nowNs, Effects out) {
    if (!log.persisted(event.epoch(), event.op())) {
      return;
    }
    quorum.selfPersisted(log.persistedOp());
    if (!catchUp.pending() && log.applyPending()) {
      log.requestApply(out); // committed entries that waited for their own log write
    }
    if (views.isPrimary()) {
      writes.commitByQuorum(nowNs, out);
    } else {
      backups.sendPrepareOk(out);
    }
  }

  void onLastNormalViewPersisted(Event.LastNormalViewPersisted event, long nowNs, Effects out) {
    views.lastNormalViewDurable(event.lastNormalView());
    if (views.isPrimary()) {
      writes.commitByQuorum(nowNs, out); // its own copy counts from now on
    } else {
      backups.sendPrepareOk(out);
    }
  }

  void onApplied(Event.Applied event, long nowNs, Effects out) {
    if (event.op() <= log.appliedOp()) {
      return; // superseded by a state transfer
    }
    log.checkApplied(event.firstOp(), event.op(), event.replies().size());
    List<Entry> configuration = new ArrayList<>();
    for (long op = event.firstOp(); op <= event.op(); op++) {
      Response reply = event.replies().get((int) (op - event.firstOp()));
      intake.applied(log.entry(op), reply, out);
      if (Membership.isConfiguration(log.entry(op))) {
        configuration.add(log.entry(op));
      }
    }
    log.applied(event.firstOp(), event.op(), event.checksum());
    for (Entry e : configuration) {
      memberships.applied(e, nowNs, out); // in log order; nothing of the old epoch follows an EpochChange
    }
    reads.releaseReads(out);
    maybeTruncate(out);
  }

  void onStateInstalled(Event.StateInstalled s, long nowNs, Effects out) {
    backups.onStateInstalled(s, nowNs, out);
    if (s.membership() != null) {
      memberships.installed(Membership.fromRecord(s.membership(), config.bootstrapMembership()), nowNs, out);
    }
  }

  /**
   * Truncates the log below the low watermark (the lowest op every replica has), keeping at least
   * log_retention_min ops behind commit, and at most log_retention_max so a dead replica cannot make the
   * log grow forever; never an unapplied entry (needed to recover after a crash).
   */
  private void maybeTruncate(Effects out) {
    long lowWatermark = views.isPrimary() ? quorum.lowWatermark() : log.appliedOp();
    retention.truncate(lowWatermark, log.commitOp(), log.appliedOp()).ifPresent(op -> out.truncateLogBefore(op));
  }
}
