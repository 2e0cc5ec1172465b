package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import java.util.List;

/**
 * BackupPath is a backup's side of the normal case (VR Revisited 4.1) and of repair: it accepts entries
 * only in op order, persists them and sends cumulative PREPARE_OKs once its log is complete in this view
 * and that is on disk ({@link #sendPrepareOk}); it learns commit numbers from every PREPARE and
 * HEARTBEAT. It owns when its log becomes complete in a view (Completeness): a replica that adopted a
 * view keeps its entries above its commit as unverified and repairs from the new primary; until its log
 * reaches what the new primary had, its last normal view stays the old one and it does not acknowledge,
 * so a partial log never outranks a complete one in a later view change (VR 4.2 step 5).
 *
 * <p>Repair (DESIGN.md "Loss, repair and flow"): it finds gaps from out-of-order entries and from
 * heartbeats whose last op is beyond its own (loss of the last datagram), waits a random delay from the
 * seeded source, NACKs every gap (capped), and repeats with exponential backoff until filled (RFC 5401
 * style; GapRepair). A backup that needs ops the primary's log no longer holds asks for a state transfer
 * (VR Revisited 5.2; CatchUp).
 */
final class BackupPath {
  private final ViewState views;
  private final ReplicaLog log;
  private final Completeness completeness;
  private final LogRetention retention;
  private final GapRepair repair;
  private final CatchUp catchUp;
  private final PrimaryWatch primaryWatch;
  private final Resender resender;
  private final Intake intake;
  private final QuorumTracker quorum;
  private final ReplicatedClock clock;
  private final WritePath writes;
  private final Counters counters;

  BackupPath(ViewState views, ReplicaLog log, Completeness completeness, LogRetention retention,
      GapRepair repair, CatchUp catchUp, PrimaryWatch primaryWatch, Resender resender, Intake intake,
      QuorumTracker quorum, ReplicatedClock clock, WritePath writes, Counters counters) {
    this.views = views;
    this.log = log;
    this.completeness = completeness;
    this.retention = retention;
    this.repair = repair;
    this.catchUp = catchUp;
    this.primaryWatch = primaryWatch;
    this.resender = resender;
    this.intake = intake;
    this.quorum = quorum;
    this.clock = clock;
    this.writes = writes;
    this.counters = counters;
  }

  /** The first step of a backup: a primary gone quiet for want of a quorum speaks again when it hears us. */
  void announce(Effects out) {
    out.send(views.primary(), views.view(), MessageType.HEARTBEAT_OK,
        HeartbeatOk.newBuilder().setOp(ackableOp()).build());
  }

  void onPrepare(Prepare prepare, long nowNs, Effects out) {
    primaryWatch.heard(nowNs);
    List<Entry> entries = prepare.getEntriesList();
    for (int i = 0; i < entries.size(); i++) {
      Entry e = entries.get(i);
      if (e.getOp() != prepare.getFirstOp() + i) {
        counters.droppedUnexpected++;
        return; // malformed: entries of a PREPARE are consecutive
      }
    }
    if (!entries.isEmpty()) {
      Entry newest = entries.get(entries.size() - 1);
      repair.learnLastOp(newest.getOp());
      if (completeness.isUnknown() && newest.getView() == views.view()) {
        // An entry made in this view lies beyond the log this view started with, which holds every op
        // committed before it. A resend of older entries (the answer to a NACK) says nothing of the
        // primary's log: wait for one of this view's entries, a HEARTBEAT or START_VIEW.
        completeness.at(repair.knownLastOp());
      }
    }
    long before = log.verifiedOp();
    for (Entry e : entries) {
      acceptEntry(e, nowNs, out);
    }
    drainOutOfOrder(nowNs, out);
    learnCommit(prepare.getCommit(), nowNs, out);
    checkComplete(out);
    if (log.verifiedOp() > before && repair.knownLastOp() > log.verifiedOp()) {
      repair.progressed(nowNs); // a repair arriving piece by piece: ask for the next piece soon
    }
    scheduleNack(nowNs, out);
  }

  /**
   * Places e when it is the next op to verify or append, buffers it (bounded) when it is beyond a gap.
   */
  private void acceptEntry(Entry e, long nowNs, Effects out) {
    long op = e.getOp();
    if (!EntryBytes.canonical(e)) {
      counters.nonCanonicalEntries++; // it would be stored and hashed differently here (see EntryBytes)
      return;
    }
    if (op <= log.verifiedOp() || repair.buffered(op)) {
      counters.duplicateEntries++;
      return;
    }
    if (op == log.verifiedOp() + 1 && !catchUp.pending()) {
      place(e, nowNs, out);
      return;
    }
    repair.buffer(e, counters);
  }

  /** Puts the current view's entry for op verifiedOp + 1 in the log (ReplicaLog.place). */
  void place(Entry e, long nowNs, Effects out) {
    ReplicaLog.Placed how = log.place(e, out);
    if (how == ReplicaLog.Placed.REPLACED) {
      truncated(e.getOp() - 1);
    }
    if (how != ReplicaLog.Placed.CONFIRMED) {
      clock.follow(e.getTimeMs(), nowNs); // placed last in the log: the newest entry
    }
  }

  /** Places the buffered entries that now follow the verified log. */
  void drainOutOfOrder(long nowNs, Effects out) {
    if (catchUp.pending()) {
      return;
    }
    for (Entry next = repair.takeNext(log.verifiedOp()); next != null; next = repair.takeNext(log.verifiedOp())) {
      place(next, nowNs, out);
    }
  }

  /** The primary's commit number: committed as far as the verified log reaches. */
  void learnCommit(long commit, long nowNs, Effects out) {
    long primaryCommit = repair.learnPrimaryCommit(commit);
    if (!catchUp.pending()) {
      writes.advanceCommit(Math.min(primaryCommit, log.verifiedOp()), nowNs, out);
    }
  }

  /**
   * Sets the op this backup's log must reach to be complete in this view (what the primary had when we
   * learned of the view); an idle cluster's primary may have nothing, so it can be complete at once.
   */
  void completeAt(long op, Effects out) {
    if (op <= log.verifiedOp() && !catchUp.pending()) {
      becomeComplete(out);
    } else {
      completeness.at(op);
      checkComplete(out);
    }
  }

  void checkComplete(Effects out) {
    if (completeness.hasTarget() && log.verifiedOp() >= completeness.targetOp() && !catchUp.pending()) {
      becomeComplete(out);
    }
  }

  /**
   * A backup's log is complete in this view once its verified part reaches what the primary had when
   * the backup learned of the view; anything of an older view beyond that is not committed (the new
   * primary's log holds every committed op) and goes. Only then does its last normal view become this
   * view, recorded after the log writes.
   */
  private void becomeComplete(Effects out) {
    if (log.lastOp() > log.verifiedOp()) {
      truncateAfter(log.verifiedOp(), out);
    }
    completeness.complete();
    views.logComplete();
    views.persistLastNormalView(out);
    // Caught up: storage clears its catching-up marker with the last normal view (a no-op when unset).
    out.caughtUp();
  }

  void onHeartbeat(Heartbeat hb, long nowNs, Effects out) {
    primaryWatch.heard(nowNs);
    repair.learnLastOp(hb.getLastOp());
    if (completeness.isUnknown()) {
      completeAt(hb.getLastOp(), out);
    }
    repair.learnPrimaryLogFirstOp(hb.getLowWatermark());
    learnCommit(hb.getCommit(), nowNs, out);
    checkComplete(out);
    out.send(views.primary(), views.view(), MessageType.HEARTBEAT_OK,
        HeartbeatOk.newBuilder().setRound(hb.getRound()).setOp(ackableOp()).build());
    if (needsStateTransfer()) {
      requestStateTransfer(nowNs, out);
    }
    scheduleNack(nowNs, out);
  }

  /** True when the ops this backup lacks are below what the primary's log still holds. */
  private boolean needsStateTransfer() {
    return catchUp.pending() || repair.belowPrimaryLog(log.verifiedOp());
  }

  private void requestStateTransfer(long nowNs, Effects out) {
    if (!catchUp.start(nowNs)) {
      return;
    }
    counters.stateTransfers++;
    out.fetchStateFrom(views.primary());
  }

  void onStateInstalled(Event.StateInstalled s, long nowNs, Effects out) {
    catchUp.installed();
    if (s.op() <= log.appliedOp()) {
      return;
    }
    // The snapshot holds every op up to s.op(); this replica's log held less (it needed ops below the
    // primary's log), so nothing it acknowledged is lost by replacing its log.
    log.installed(s.op(), s.checksum()); // the install emptied the log: no earlier write survives in it
    retention.installed(s.op());
    quorum.selfPersisted(log.persistedOp());
    drainOutOfOrder(nowNs, out);
    learnCommit(repair.primaryCommit(), nowNs, out);
    checkComplete(out);
    scheduleNack(nowNs, out);
  }

  void scheduleNack(long nowNs, Effects out) {
    boolean gap = views.isBackup() && !catchUp.pending() && repair.knownLastOp() > log.verifiedOp();
    repair.schedule(gap, nowNs, counters, out);
  }

  private void sendNackIfDue(long nowNs, Effects out) {
    List<OpRange> ranges = repair.dueNack(nowNs, log.verifiedOp());
    if (ranges.isEmpty()) {
      return;
    }
    out.send(views.primary(), views.view(), MessageType.NACK,
        resender.padded(Nack.newBuilder().addAllRanges(ranges)));
    counters.nacksSent++;
  }

  /**
   * A backup's cumulative ack: every op up to it is durable here and in this view's log (VR 4.1 step
   * 4). Only once the log is complete in this view and that is on disk too (the last normal view): a
   * replica whose ack counted toward a commit must come back from a crash ranking its log by this view,
   * or a later view change could prefer a log that lacks the op.
   */
  void sendPrepareOk(Effects out) {
    if (views.isBackup() && completeness.isComplete() && views.lnvDurable()) {
      out.send(views.primary(), views.view(), MessageType.PREPARE_OK,
          PrepareOk.newBuilder().setOp(Math.min(log.persistedOp(), log.verifiedOp())).build());
    }
  }

  /** The op a backup may acknowledge now (0 while its log is incomplete or its last normal view is not durable). */
  private long ackableOp() {
    return completeness.isComplete() && views.lnvDurable() ? Math.min(log.persistedOp(), log.verifiedOp()) : 0;
  }

  /** Drops every entry above op (in memory, and in storage before this step's appends). */
  void truncateAfter(long op, Effects out) {
    if (log.truncateAfter(op, out)) {
      truncated(op);
    }
  }

  /** The log lost every op above op: the parts that track it follow. */
  private void truncated(long op) {
    intake.truncatedAfter(op);
    quorum.selfPersisted(log.persistedOp());
  }

  /** A backup's timer after its election part (PreVotePath.electionTick): NACKs and state transfer due. */
  void tick(long nowNs, Effects out) {
    sendNackIfDue(nowNs, out);
    if (needsStateTransfer()) {
      requestStateTransfer(nowNs, out);
    }
    if (catchUp.retryAtNs().isPresent()) {
      out.tickBy(catchUp.retryAtNs().getAsLong());
    }
    if (repair.nackDueNs().isPresent()) {
      out.tickBy(repair.nackDueNs().getAsLong());
    }
  }
}
