package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.Prepare;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;

/**
 * WritePath is the primary's side of the normal case (Viewstamped Replication Revisited, Liskov &amp;
 * Cowling 2012, section 4.1, with PREPAREs multicast): it orders writes into entries with consecutive op
 * numbers (each stamped with the replicated clock, see ReplicatedClock), groups a burst into one log
 * write and as few PREPARE datagrams as fit (group commit), counts its own durable copy toward the f+1
 * quorum, commits when f+1 replicas have persisted an op and answers each client after its entry is
 * applied (Intake). Commit numbers ride on every PREPARE and HEARTBEAT; every replica applies a
 * committed entry only once its own log write of it is done, so the apply lane's writes never overtake
 * the log lane's in the shared write-ahead log ({@link #advanceCommit}, shared by every role).
 *
 * <p>Repair, the primary's half (DESIGN.md "Loss, repair and flow"): it resends at most
 * maxRetransmitEntriesPerNack entries and about maxRetransmitBytesPerNack bytes per NACK, from memory
 * or, for older ops, asks its caller to read the log; by unicast, or by multicast when several replicas
 * asked for the same op within a short window ({@link ResendTracker}), except that an entry too big for
 * one datagram always goes by unicast (the transport carries it over TCP). Its heartbeats tell backups
 * the last op (loss of the last datagram), the commit and where its log starts.
 *
 * <p>CheckQuorum: a primary that has heard from fewer than f backups within the election timeout
 * refuses writes (UNAVAILABLE) and stops heartbeating (see {@link #tick}).
 *
 * <p>Exactly-once: a retry of a request whose entry is still in flight waits for that entry; a retry of
 * an applied request gets a new entry whose application returns the saved reply (KvStateMachine). A
 * primary that steps down answers the requests whose entries it logged NOT_PRIMARY with
 * outcome_unknown (the entry may still commit in the next view), and those it never logged plain
 * NOT_PRIMARY ({@link #stepDown}).
 */
final class WritePath {
  private final CoreConfig config;
  private final int self;
  private final ViewState views;
  private final ReplicaLog log;
  private final LogRetention retention;
  private final Intake intake;
  private final QuorumTracker quorum;
  private final HeartbeatTimer heartbeats;
  private final ReadIndex readIndex;
  private final Resender resender;
  private final CatchUp catchUp;
  private final ReplicatedClock clock;
  private final Redirect redirect;
  private final Counters counters;

  WritePath(CoreConfig config, ViewState views, ReplicaLog log, LogRetention retention, Intake intake,
      QuorumTracker quorum, HeartbeatTimer heartbeats, ReadIndex readIndex, Resender resender,
      CatchUp catchUp, ReplicatedClock clock, Redirect redirect, Counters counters) {
    this.config = config;
    this.self = config.replicaId();
    this.views = views;
    this.log = log;
    this.retention = retention;
    this.intake = intake;
    this.quorum = quorum;
    this.heartbeats = heartbeats;
    this.readIndex = readIndex;
    this.resender = resender;
    this.catchUp = catchUp;
    this.clock = clock;
    this.redirect = redirect;
    this.counters = counters;
  }

  void onWrite(Event.ClientRequest event, long nowNs, Effects out) {
    counters.writes++;
    Request request = event.request();
    if (!views.isPrimary()) {
      out.reply(event.connectionId(), redirect.notPrimary(request, nowNs));
      return;
    }
    if (intake.joinInFlight(event)) {
      counters.duplicates++;
      return;
    }
    int live = quorum.live(nowNs);
    if (live < views.members().quorum()) {
      out.reply(event.connectionId(), redirect.noQuorum(request, live));
      return;
    }
    if (intake.mustQueue(log.lastOp() - log.commitOp()) || log.pendingEpochChangeOp() != 0) {
      // An EpochChange in the log: no op may follow it in this epoch, so the write waits for the switch
      // (DESIGN.md "Membership") and is then served, or redirected, in the new epoch.
      intake.queue(event, counters, out);
      return;
    }
    admit(event, nowNs, out);
  }

  /**
   * Appends a configuration entry (AddLearner or EpochChange) for a member change the caller checked;
   * the client is answered once it is applied (Intake), or told that the outcome is unknown.
   */
  void admitConfiguration(Event.ClientRequest event, Entry.Builder command, long nowNs, Effects out) {
    if (joinInFlight(event)) {
      return;
    }
    int live = quorum.live(nowNs);
    if (live < views.members().quorum()) {
      out.reply(event.connectionId(), redirect.noQuorum(event.request(), live));
      return;
    }
    Request request = event.request();
    Entry entry = command.setOp(log.lastOp() + 1).setView(views.view()).setClientId(request.getClientId())
        .setRequestId(request.getRequestId()).setFirstIncomplete(request.getFirstIncomplete())
        .setTimeMs(clock.nowMs(nowNs)).build();
    if (intake.batchFull(entry.getSerializedSize())) {
      flushBatch(nowNs, out);
    }
    log.appendOwn(entry);
    intake.admitted(entry, entry.getSerializedSize(), event);
    flushBatch(nowNs, out);
  }

  /** A retry of a request in flight (same client and request id) waits for that op's reply: true (counted). */
  boolean joinInFlight(Event.ClientRequest event) {
    if (intake.joinInFlight(event)) {
      counters.duplicates++;
      return true;
    }
    return false;
  }

  /** The switch to a new epoch left this replica the primary: queued writes go on in the new epoch. */
  void resumeAfterSwitch(long nowNs, Effects out) {
    admitQueued(nowNs, out);
  }

  private void admit(Event.ClientRequest event, long nowNs, Effects out) {
    Request request = event.request();
    Entry entry = Intake.entryFor(event, log.lastOp() + 1, views.view(), clock.nowMs(nowNs), config);
    int size = entry.getSerializedSize();
    if (size > config.maxBatchBytes) {
      counters.tooLarge++;
      out.reply(event.connectionId(), RequestValidator.refuse(request,
          Status.TOO_LARGE, "the write's log entry has " + size + " bytes, more than max_batch_bytes "
              + config.maxBatchBytes));
      return;
    }
    if (intake.batchFull(size)) {
      flushBatch(nowNs, out);
    }
    log.appendOwn(entry);
    intake.admitted(entry, size, event);
  }

  /** Hands the burst's batch to storage and, with backups, multicasts it (VR 4.1 step 3). */
  void flushBatch(long nowNs, Effects out) {
    if (!intake.hasBatch()) {
      return;
    }
    List<Entry> batch = intake.takeBatch();
    out.persistAll(batch);
    counters.batches++;
    if (views.members().ids().size() > 1) {
      sendPrepares(Effects.MULTICAST, batch, nowNs, out);
    }
  }

  /** Packs entries (consecutive ops) into as few PREPAREs as fit max_datagram_bytes. */
  private void sendPrepares(int to, List<Entry> entries, long nowNs, Effects out) {
    for (Prepare.Builder p : ReplicaCore.packPrepares(entries, config.maxDatagramBytes)) {
      emitPrepare(to, p, nowNs, out);
    }
  }

  private void emitPrepare(int to, Prepare.Builder p, long nowNs, Effects out) {
    p.setCommit(log.commitOp());
    Prepare prepare = p.build();
    out.send(to, views.view(), MessageType.PREPARE, prepare);
    counters.preparesSent++;
    // A multicast PREPARE stands in for a heartbeat only when it fits one datagram: one that travels as
    // fragments reaches a backup only if every fragment does (under loss, 1 MiB values may hardly ever
    // arrive whole), and backups that hear nothing whole would depose a primary that is busy, not dead.
    if (to == Effects.MULTICAST
        && prepare.getSerializedSize() + ReplicaCore.PREPARE_OVERHEAD_BYTES <= config.maxDatagramBytes) {
      noteMulticast(nowNs);
    }
  }

  /** A multicast that backups count as a heartbeat went out at nowNs. */
  void noteMulticast(long nowNs) {
    heartbeats.multicast(nowNs, log.commitOp());
  }

  /** Advances the commit number to what the acks (and, once durable, its own copy) allow. */
  void commitByQuorum(long nowNs, Effects out) {
    advanceCommit(quorum.commit(views.lnvDurable(), log.lastOp()), nowNs, out);
  }

  /**
   * Commits up to newCommit (at most the last op), applying only what the own log write holds, and at
   * the primary frees window space and admits queued writes. Every role learns commits through here.
   */
  void advanceCommit(long newCommit, long nowNs, Effects out) {
    newCommit = Math.min(newCommit, log.lastOp());
    if (newCommit <= log.commitOp()) {
      return;
    }
    if (views.isPrimary()) {
      for (long op = Math.max(log.commitOp() + 1, log.windowBase() + 1); op <= newCommit; op++) {
        intake.committed(log.entry(op).getSerializedSize());
      }
    }
    boolean endsEpoch = views.isPrimary() && log.pendingEpochChangeOp() != 0 && log.pendingEpochChangeOp() <= newCommit;
    log.commitUpTo(newCommit);
    if (endsEpoch) {
      // The epoch's last op committed: tell the backups at once, in this epoch's view, so that they switch
      // with us rather than hear of the next epoch first.
      out.send(Effects.MULTICAST, views.view(), MessageType.HEARTBEAT, heartbeat());
      counters.heartbeatsSent++;
    }
    if (!catchUp.pending()) {
      log.requestApply(out);
    }
    if (views.isPrimary()) {
      admitQueued(nowNs, out);
    }
  }

  private void admitQueued(long nowNs, Effects out) {
    if (log.pendingEpochChangeOp() != 0) {
      return; // they wait for the switch to the new epoch
    }
    for (Event.ClientRequest next = intake.nextQueued(log.lastOp() - log.commitOp()); next != null;
        next = intake.nextQueued(log.lastOp() - log.commitOp())) {
      if (!intake.joinInFlight(next)) {
        admit(next, nowNs, out);
      }
    }
    intake.maybeResume(log.lastOp() - log.commitOp(), out);
  }

  /** A backup's cumulative ack (PREPARE_OK, or the op on a HEARTBEAT_OK): VR 4.1 step 5. */
  void onAck(int fromIndex, long op, long nowNs, Effects out) {
    resender.acknowledged(fromIndex, op);
    if (quorum.ack(fromIndex, op, log.lastOp())) {
      commitByQuorum(nowNs, out);
    }
  }

  /** Answers a NACK with what the resend budget allows (Resender), and tells an asker below the log where it starts. */
  void onNack(int from, Nack nack, long nowNs, Effects out) {
    counters.nacksReceived++;
    Resender.Answer a = resender.answer(from, views.members().indexOf(from), nack, nowNs, views.isPrimary(),
        retention.firstOp(), log, views.view(), counters, out);
    if (a == null) {
      return;
    }
    counters.retransmits += a.unicast().size() + a.multicast().size();
    counters.retransmitsMulticast += a.multicast().size();
    sendRuns(from, a.unicast(), nowNs, out);
    sendRuns(Effects.MULTICAST, a.multicast(), nowNs, out);
    if (a.belowLog() && views.isPrimary()) {
      // Tell the replica where the log starts: it will ask for a state transfer.
      out.send(from, views.view(), MessageType.HEARTBEAT, heartbeat());
    }
  }

  /** Sends entries (ascending, maybe with holes) as PREPAREs of consecutive runs. */
  private void sendRuns(int to, List<Entry> entries, long nowNs, Effects out) {
    int start = 0;
    for (int i = 1; i <= entries.size(); i++) {
      if (i == entries.size() || entries.get(i).getOp() != entries.get(i - 1).getOp() + 1) {
        sendPrepares(to, entries.subList(start, i), nowNs, out);
        start = i;
      }
    }
  }

  /**
   * Leaving the primary role or a view: waiting clients learn it (they retry at the new primary with the
   * same request id, so nothing executes twice), queued writes and batched entries are dropped.
   */
  void stepDown(long newView, long nowNs, Effects out) {
    stepDown(newView, views.isPrimary(), nowNs, out);
  }

  /** As {@link #stepDown(long, long, Effects)}, saying whether this replica was the primary (an epoch switch). */
  void stepDown(long newView, boolean wasPrimary, long nowNs, Effects out) {
    if (wasPrimary) {
      // The waiters' entries are in the log and were multicast: they may still commit in the new view,
      // so their answer must say the outcome is unknown (a retry with the same request id learns it).
      Response.Builder unknown = Response.newBuilder().setStatus(Status.NOT_PRIMARY)
          .setPrimaryAddress(views.members().clientAddress(views.members().primaryOf(newView))).setView(newView)
          .setOutcomeUnknown(true)
          .setError("replica " + self + " is no longer the primary (view " + newView + "); the request was"
              + " logged and may still commit: retry it to learn its outcome");
      // Queued writes were never logged: they certainly did not execute.
      Response.Builder hint = Response.newBuilder().setStatus(Status.NOT_PRIMARY)
          .setPrimaryAddress(views.members().clientAddress(views.members().primaryOf(newView))).setView(newView)
          .setError("replica " + self + " is no longer the primary (view " + newView + ")");
      intake.answerAll(unknown, hint, out);
      if (intake.hasBatch()) {
        flushBatch(nowNs, out); // the entries are in the log window already: keep log and storage in step
      }
    }
    intake.clear(out);
    readIndex.leaveView("replica " + self + " left view " + views.view(),
        views.members().clientAddress(views.members().primaryOf(newView)), out);
    quorum.forgetRounds();
  }

  /**
   * The primary's HEARTBEAT: its last op sent, commit, log start and the current round. The entries a
   * burst is gathering while the previous log write syncs are in the log window but not sent yet: a
   * heartbeat naming them would show every backup a gap, and each would NACK them within nack_delay
   * and get them twice (the large-value runs resent more entries than clients wrote).
   */
  Heartbeat heartbeat() {
    return Heartbeat.newBuilder().setLastOp(intake.beforeBatch(log.lastOp())).setCommit(log.commitOp()).setLowWatermark(retention.firstOp())
        .setRound(quorum.round()).build();
  }

  /** The primary's timer: the group commit's flush, CheckQuorum, and heartbeats (also the read rounds). */
  void tick(long nowNs, Effects out) {
    // Self-clocking group commit (like Nagle's algorithm): while our previous log write is still
    // syncing, the batch keeps growing (up to max_batch_entries / max_batch_bytes, which admit() flushes
    // at); it goes out, as one log write and as few PREPAREs as fit, once that fsync is done. An idle
    // primary sends at once.
    if (!intake.logWriteUnderWay(log.persistedOp())) {
      flushBatch(nowNs, out);
    }
    if (views.members().voterCount() > 1 && quorum.live(nowNs) < views.members().quorum()) {
      // CheckQuorum: a primary that has heard from fewer than f backups for the election timeout goes
      // quiet (it already refuses writes and reads). Its heartbeats would keep backups that hear it
      // from electing a primary that can reach a majority (it may be deaf, or alone); it speaks again
      // once it hears from f backups (any message of theirs, a pre-vote included).
      return;
    }
    if (views.members().ids().size() > 1) {
      // Idle for an interval, news of the commit number (HeartbeatTimer), or reads waiting for a round.
      if (heartbeats.due(nowNs, log.commitOp()) || readIndex.roundWanted()) {
        quorum.nextRound();
        if (readIndex.roundWanted()) {
          counters.readRounds++;
          readIndex.roundSent();
        }
        out.send(Effects.MULTICAST, views.view(), MessageType.HEARTBEAT, heartbeat());
        counters.heartbeatsSent++;
        noteMulticast(nowNs);
      }
      out.tickBy(heartbeats.nextNs());
    }
  }
}
