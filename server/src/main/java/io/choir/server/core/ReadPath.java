package io.choir.server.core;

import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.Status;

/**
 * ReadPath owns the answer to a client's read (DESIGN.md "Reads"; the read index of the Raft thesis
 * 6.4 on VR Revisited 4.1). A sequential read runs at any replica once its applied number reaches the
 * op the client saw. A linearizable read runs at the primary only, and only with a quorum (CheckQuorum:
 * a primary that has heard from fewer than f backups within the election timeout refuses it,
 * UNAVAILABLE): it is confirmed by one heartbeat round acknowledged by f backups, which proves no newer
 * view had formed, shared by every read waiting at that moment, and runs once the applied number
 * reaches the commit number noted on arrival. Waiting reads live in {@link ReadIndex}. With
 * linearizable_reads: lease (the default), a read arriving while the primary's lease holds
 * ({@link PrimaryLease}: a round of this view answered by f backups, less than a lease ago) needs no
 * round of its own and waits only for the applied number (DESIGN.md "Lease reads (issue 14)").
 */
final class ReadPath {
  private final CoreConfig config;
  private final ViewState views;
  private final ReplicaLog log;
  private final QuorumTracker quorum;
  private final ReadIndex readIndex;
  private final Redirect redirect;
  private final Counters counters;
  private final PrimaryLease lease;

  ReadPath(CoreConfig config, ViewState views, ReplicaLog log, QuorumTracker quorum, ReadIndex readIndex,
      PrimaryLease lease, Redirect redirect, Counters counters) {
    this.lease = lease;
    this.config = config;
    this.views = views;
    this.log = log;
    this.quorum = quorum;
    this.readIndex = readIndex;
    this.redirect = redirect;
    this.counters = counters;
  }

  void onRead(Event.ClientRequest event, long nowNs, Effects out) {
    counters.reads++;
    Request request = event.request();
    if (config.breakage == CoreConfig.Breakage.LOCAL_READS) { // a deliberate bug, test_break_protocol
      out.read(event.connectionId(), request);
      return;
    }
    boolean sequential = request.getConsistency() == ReadConsistency.SEQUENTIAL;
    if (!sequential && !views.isPrimary()) {
      out.reply(event.connectionId(), redirect.notPrimary(request, nowNs));
      return;
    }
    boolean staleLease = config.breakage == CoreConfig.Breakage.STALE_LEASE; // a deliberate bug: no CheckQuorum
    if (!sequential && views.members().voterCount() > 1 && quorum.live(nowNs) < views.members().quorum()
        && !(staleLease && leaseHolds(nowNs))) {
      out.reply(event.connectionId(), redirect.noQuorum(request, quorum.live(nowNs)));
      return;
    }
    // Linearizable: the commit number seen on arrival, and (with backups) a heartbeat round sent after
    // arrival that f backups answer, which proves no newer view had formed (ReadIndex).
    long required = sequential ? request.getMinOp() : readIndex.linearizableOp(log.commitOp());
    long round = ReadIndex.NO_ROUND;
    if (!sequential && views.members().voterCount() > 1) {
      if (leaseHolds(nowNs)) {
        // No newer view can have formed (PrimaryLease): the commit number noted now is enough.
        counters.leaseReads++;
        if (lease.renewalDue(views.view(), nowNs)) {
          readIndex.nextRound(quorum.round()); // the next tick sends a round that renews the lease
        }
      } else {
        counters.readIndexReads++;
        round = readIndex.nextRound(quorum.round());
      }
    }
    if (round == ReadIndex.NO_ROUND && log.appliedOp() >= required) {
      out.read(event.connectionId(), request);
      return;
    }
    if (readIndex.isFull()) {
      counters.busy++;
      out.reply(event.connectionId(),
          RequestValidator.refuse(request, Status.BUSY, "too many reads waiting (max_queued_requests "
              + config.maxQueuedRequests + ")"));
      return;
    }
    long deadlineNs = readIndex.add(event.connectionId(), request, required, round, nowNs);
    out.tickBy(deadlineNs);
  }

  /**
   * The window in which reads may be answered without passing through the core (see
   * {@link LeaseReadWindow}): while the lease holds, until its end, from a state at the read index of
   * now. {@link LeaseReadWindow#NONE} outside the lease, and under any deliberate breakage (those
   * breakages are of the core's own read path).
   */
  LeaseReadWindow leaseWindow(long nowNs) {
    if (config.breakage != CoreConfig.Breakage.NONE || views.mode() == ReplicaCore.Mode.RECOVERING) {
      return LeaseReadWindow.NONE;
    }
    if (!leaseHolds(nowNs)) {
      return LeaseReadWindow.SEQUENTIAL_ONLY;
    }
    return new LeaseReadWindow(lease.endNs(views.view(), quorum.confirmedRound()),
        readIndex.linearizableOp(log.commitOp()), true);
  }

  /**
   * count linearizable reads were answered under a window this core published: they are counted as the
   * lease reads they are, and when the lease has less than half of it left a round is asked for, as a
   * lease read arriving here would (the next Tick sends it), so the window does not run out under reads.
   */
  void onLeaseReadsServed(long count, long sequential, long nowNs) {
    counters.requests += count + sequential;
    counters.reads += count + sequential;
    counters.leaseReads += count;
    counters.leaseReadsOnEventLoop += count;
    counters.sequentialReadsOnEventLoop += sequential;
    if (count > 0 && leaseHolds(nowNs) && lease.renewalDue(views.view(), nowNs)) {
      readIndex.nextRound(quorum.round());
    }
  }

  /** Runs the reads whose op is applied and whose heartbeat round (if any) f backups confirmed. */
  void releaseReads(Effects out) {
    if (!readIndex.isEmpty()) {
      readIndex.release(log.appliedOp(), confirmedRound(), out);
    }
  }

  /**
   * True when a linearizable read arriving at nowNs may skip the round: lease mode, the primary of a
   * normal view without an EpochChange waiting for its switch (the next epoch's members are others), and
   * a round of this view answered by f backups less than a lease ago.
   */
  boolean leaseHolds(long nowNs) {
    return config.readMode == CoreConfig.ReadMode.LEASE && views.isPrimary() && views.members().voterCount() > 1
        && log.pendingEpochChangeOp() == 0 && lease.holds(views.view(), quorum.confirmedRound(), nowNs);
  }

  /**
   * The primary's tick at nowNs numbered rounds after lastRound (it sends the newest): nowNs is when it
   * decided to send it, the start of the lease its answers may give.
   */
  void roundsSentSince(long lastRound, long nowNs) {
    if (quorum.round() != lastRound) {
      lease.roundSent(views.view(), quorum.round(), nowNs);
    }
  }

  /** The highest heartbeat round that f backups have answered in this view. */
  private long confirmedRound() {
    if (!views.isPrimary()) {
      return Long.MAX_VALUE; // sequential reads only: no round needed
    }
    return quorum.confirmedRound();
  }
}
