package io.choir.server.core;

import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.ReadConsistency;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import io.choir.proto.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * ReplicaCore is the replication protocol of one replica as a pure, deterministic state machine:
 * {@link #step(Event, long, Effects)} takes one event and the current time and appends what the caller
 * must do to an {@link Effects}. It owns no socket, thread, clock or unseeded random source (DESIGN.md
 * "Code shape"; etcd-io/raft's Step/Ready), so the simulator can run it thousands of times per minute
 * and replay any run from its seed.
 *
 * <p>Normal case (Viewstamped Replication Revisited, Liskov &amp; Cowling 2012, section 4.1, with
 * PREPAREs multicast): the primary orders writes into entries with consecutive op numbers (each stamped
 * with the replicated clock, see ReplicatedClock), groups a burst into one log write and as few PREPARE
 * datagrams as fit (group commit), counts its own durable copy toward the f+1 quorum, commits when f+1
 * replicas have persisted an op and answers each client after its entry is applied. Backups accept
 * entries only in op order, persist them and send cumulative PREPARE_OKs; commit numbers ride on every
 * PREPARE and HEARTBEAT. Every replica applies a committed entry only once its own log write of it is
 * done, so the apply lane's writes never overtake the log lane's in the shared write-ahead log.
 *
 * <p>Repair (DESIGN.md "Loss, repair and flow"): a backup finds gaps from out-of-order entries and from
 * heartbeats whose last op is beyond its own (loss of the last datagram), waits a random delay from the
 * seeded source, NACKs every gap (capped), and repeats with exponential backoff until filled (RFC 5401
 * style). The primary resends at most maxRetransmitEntriesPerNack entries and about
 * maxRetransmitBytesPerNack bytes per NACK, from memory or, for older ops, asks its caller to read the
 * log; by unicast, or by multicast when several replicas asked for the same op within a short window
 * ({@link ResendTracker}), except that an entry too big for one datagram always goes by unicast (the
 * transport carries it over TCP). A backup that needs ops the primary's log no longer holds asks for a
 * state transfer.
 *
 * <p>View change (VR Revisited 4.2), behind a pre-vote: a backup that hears nothing from its primary for
 * a randomized election timeout first asks the others whether they would support view v+1
 * (PRE_VIEW_CHANGE; Raft thesis 9.6). Only a backup that has not heard its primary for the election
 * timeout, or a replica already in a view change, grants; the primary never does. With f grants it
 * moves to view v+1 and multicasts START_VIEW_CHANGE, so a replica that alone cannot hear the primary
 * (cut off, or just restarted) never raises its view. A replica whose primary is alive ignores
 * proposals for a newer view (leader stickiness). On f START_VIEW_CHANGEs a replica sends DO_VIEW_CHANGE
 * (its last normal view, last op and commit, and no entries) to the new primary, which on f+1 (its own
 * counted) chooses the log with the largest (last normal view, op), fetches that replica's entries above
 * its own commit by NACK in bounded pieces, placing each in order (an entry equal to its own confirms
 * it, a different one replaces it and everything after it), and multicasts START_VIEW (the last op and
 * commit, no entries). Every replica persists its view before it says anything in it. A replica that
 * adopts a newer view keeps its entries above its commit number as unverified (it must not forget what
 * it acknowledged) and repairs from the new primary by NACK: each unverified entry is confirmed by an
 * equal one or dropped with everything after it. Until its log reaches what the new primary had, its
 * last normal view stays the old one and it does not acknowledge, so a partial log never outranks a
 * complete one in a later view change. A replica that is stuck in a newer view than the others (the
 * pre-vote passed but the view change did not) tells the old primary, which then follows it up.
 *
 * <p>CheckQuorum: a primary that has heard from fewer than f backups within the election timeout refuses
 * writes and reads (UNAVAILABLE) and stops heartbeating, so backups that still hear it (it may be deaf)
 * elect a primary that reaches a majority; it speaks again when it hears from f backups. Linearizable
 * reads are confirmed by one heartbeat round acknowledged by f backups, shared by every read waiting at
 * that moment (DESIGN.md "Reads"), and run once the applied number reaches the commit number noted on
 * arrival. A backup whose primary has been silent for a while answers clients UNAVAILABLE rather than
 * pointing them at that primary.
 *
 * <p>Recovery (VR Revisited 4.3): a replica restarted with buffered durability may have lost entries it
 * acknowledged; it answers nothing and votes for nothing until f+1 replicas, the primary of the newest
 * view among them included, have answered its RECOVERY. It then rejoins as a backup that must catch up
 * (mustCatchUp), as does a replica whose interrupted state-transfer install was wiped: until its log is
 * complete again it neither votes, nor grants pre-votes, nor acknowledges, and its log ranks below every
 * other one.
 *
 * <p>Exactly-once: a retry of a request whose entry is still in flight waits for that entry; a retry of
 * an applied request gets a new entry whose application returns the saved reply (KvStateMachine). A
 * primary that steps down answers the requests whose entries it logged NOT_PRIMARY with outcome_unknown
 * (the entry may still commit in the next view), and those it never logged plain NOT_PRIMARY.
 *
 * <p>Parts: this class dispatches events and moves the replica between views and modes; each part owns
 * its own state: {@link ReplicaLog} (entries and the last/verified/persisted/commit/applied numbers),
 * {@link Completeness} (a backup's log in this view), {@link LogRetention} (the log's old end),
 * {@link Intake} (the primary's window, queue, batch and waiting clients), {@link QuorumTracker} (acks,
 * last heard, heartbeat rounds), {@link HeartbeatTimer}, {@link ReadIndex} (waiting reads and the read
 * floor), {@link GapRepair} (a backup's gaps and NACKs), {@link Resender} (answers to NACKs),
 * {@link CatchUp} (state transfer), {@link PrimaryWatch} (a backup's election timer), {@link PreVote},
 * {@link ViewChange} and {@link LogFill} (the view change and the fetch of the chosen log),
 * {@link RecoveryProtocol} (VR 4.3), {@link ReplicatedClock} and {@link Counters}.
 */
public final class ReplicaCore {
  /** The replica's status, VR Revisited figure 2. */
  public enum Mode {
    NORMAL,
    VIEW_CHANGE,
    RECOVERING
  }

  /** Bytes of a PREPARE besides its entries (header and framing), for packing datagrams. */
  static final int PREPARE_OVERHEAD_BYTES = 64;
  /** Bytes of a datagram's header (DatagramCodec, version 2, unsealed): counted as received with each message. */
  static final int DATAGRAM_HEADER_BYTES = 44;
  /**
   * Size a NACK is padded to on a cluster without a key, header included: the smallest datagram every
   * IPv4 path carries whole (RFC 791: 576) is too small to earn a useful answer; 1,200 is QUIC's.
   */
  static final int NACK_PADDED_BYTES = 1200;

  private final CoreConfig config;
  private final RequestValidator validator;
  /** Every field of every peer message, checked before a handler acts on it (issue 10, item 5). */
  private final PeerMessageChecks checks;
  /** What NACKs may make this replica resend, per asker (issue 10, item 6). */
  private final Resender resender;
  private final SplittableRandom random;
  private final int n;
  private final int self;
  private long view;
  private Mode mode;
  /** The last view in which this replica's log was complete: it orders logs in a view change. */
  private long lastNormalView;
  /** In NORMAL mode as a backup: whether the log is complete in this view, or which op it must reach. */
  private final Completeness completeness;

  /** The log and its numbers (last, verified, persisted, commit, applied). */
  private final ReplicaLog log;
  private final LogRetention retention;
  /** The last normal view storage has recorded (Event.LastNormalViewPersisted); acks wait for it. */
  private long durableLastNormalView;
  /** The highest view whose start this replica counted in viewChanges. */
  private long lastCountedView;

  // Primary state.
  private final Intake intake;
  private final QuorumTracker quorum;
  private final HeartbeatTimer heartbeats;

  // Backup state.
  private final GapRepair repair;
  private final CatchUp catchUp;
  private final PrimaryWatch primaryWatch;

  // View change state (the current view).
  private final ViewChange viewChange = new ViewChange();
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
   * toward a quorum that lacks a committed op (issue 9, 2b). Cleared by becomeComplete, which tells
   * storage to clear its marker (Effects.caughtUp).
   */
  private boolean mustCatchUp;
  private final PreVote preVote;
  private long lastUnstickNs = Long.MIN_VALUE / 2;
  /** At the new primary: the fetch of the chosen log's entries. */
  private final LogFill fill;

  private final RecoveryProtocol recovery;

  private final ReadIndex readIndex;
  private boolean started;
  /** The time of the event being stepped. */
  private long currentNs;
  private long viewChanges;
  private long lastViewChangeNs = -1;

  /** The replicated clock (Entry.time_ms). */
  private final ReplicatedClock clock = new ReplicatedClock();

  private final Counters counters = new Counters();

  public ReplicaCore(CoreConfig config, RecoveredState recovered) {
    this.config = config;
    this.validator = new RequestValidator(config);
    this.checks = new PeerMessageChecks(config, validator);
    this.resender = new Resender(config);
    this.n = config.replicaIds().size();
    this.self = config.replicaId();
    this.random = new SplittableRandom(config.seed * 0x9E3779B97F4A7C15L + self);
    this.view = recovered.view();
    this.lastNormalView = Math.min(recovered.lastNormalView(), recovered.view());
    // Everything in the local log survived a restart, so it is durable here. A single replica is its
    // own majority: its durable log is committed. With more, what is committed beyond the applied
    // number is learned again from the primary (or, at the primary, from the acks).
    this.log = new ReplicaLog(recovered, n == 1, config.retransmitRingEntries, config.retransmitRingBytes);
    this.retention = new LogRetention(Math.min(recovered.logFirstOp(), log.appliedOp() + 1),
        config.logRetentionMinOps, config.logRetentionMaxOps);
    this.repair = new GapRepair(config, random, log.lastOp());
    this.recovery = new RecoveryProtocol(config);
    this.preVote = new PreVote(config);
    this.fill = new LogFill(config);
    this.intake = new Intake(config);
    this.heartbeats = new HeartbeatTimer(config.heartbeatIntervalNs);
    this.primaryWatch = new PrimaryWatch(config.quorumTimeoutNs);
    this.catchUp = new CatchUp(config.heartbeatIntervalNs * 4);
    this.quorum = new QuorumTracker(config);
    this.quorum.selfPersisted(log.persistedOp());
    this.mode = recovered.recovering() && n > 1 ? Mode.RECOVERING : Mode.NORMAL;
    if (mode == Mode.NORMAL && n > 1 && recovered.restarted()
        && (lastNormalView < view || config.primaryOf(view) == self)) {
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
    this.readIndex = new ReadIndex(config.maxQueuedRequests, config.readTimeoutNs, log.lastOp());
    if (mode != Mode.NORMAL) {
      log.unverifyAboveCommit();
    }
    // A restarted backup whose last normal view is older than its view had not caught up in it.
    this.completeness = new Completeness(lastNormalView == view
        ? Completeness.State.COMPLETE : Completeness.State.UNKNOWN);
    this.durableLastNormalView = lastNormalView;
    this.lastCountedView = recovered.view();
    this.mustCatchUp = recovered.mustCatchUp() && n > 1;
    if (mustCatchUp) {
      // What its log says it has is not what it acknowledged: it votes for nothing and acknowledges
      // nothing until it has caught up from a primary, and its log ranks below every other one.
      this.completeness.unknown();
      this.restartLimbo = mode == Mode.VIEW_CHANGE || restartLimbo;
    }
    if (mode == Mode.RECOVERING || mustCatchUp) {
      this.lastNormalView = 0;
    }
  }

  public boolean isPrimary() {
    return mode == Mode.NORMAL && config.primaryOf(view) == self;
  }

  private boolean isBackup() {
    return mode == Mode.NORMAL && config.primaryOf(view) != self;
  }

  private int f() {
    return n / 2;
  }

  /** Steps one event at time nowNs, appending what to do to out. */
  public void step(Event event, long nowNs, Effects out) {
    currentNs = nowNs;
    out.logEpoch(log.epoch());
    if (!started) {
      started = true;
      clock.start(nowNs);
      if (log.lastOp() > log.windowBase()) {
        clock.restartedAt(log.entry(log.lastOp()).getTimeMs()); // the restarted log's newest entry
      }
      quorum.heardAll(nowNs); // grace period: nobody is presumed dead at start
      primaryWatch.restart(nowNs, randomizedTimeout());
      viewChange.startTimers(nowNs, randomizedTimeout());
      if (mode == Mode.RECOVERING) {
        recovery.begin(random.nextLong() | 1);
      }
      if (isBackup()) {
        // Announce ourselves: a primary gone quiet for want of a quorum speaks again when it hears us.
        out.send(config.primaryOf(view), view, MessageType.HEARTBEAT_OK,
            HeartbeatOk.newBuilder().setOp(ackableOp()).build());
      }
    }
    if (event instanceof Event.ClientRequest r) {
      onClientRequest(r, nowNs, out);
    } else if (event instanceof Event.Persisted p) {
      onPersisted(p, out);
    } else if (event instanceof Event.Applied a) {
      onApplied(a, out);
    } else if (event instanceof Event.LastNormalViewPersisted l) {
      onLastNormalViewPersisted(l, out);
    } else if (event instanceof Event.Peer p) {
      onPeer(p, nowNs, out);
    } else if (event instanceof Event.Tick) {
      onTick(nowNs, out);
    } else if (event instanceof Event.StateInstalled s) {
      onStateInstalled(s, nowNs, out);
    } else if (event instanceof Event.StateTransferFailed) {
      // Still pending: storage may hold a partial install, so nothing is applied until one succeeds.
      out.tickBy(catchUp.failed(nowNs));
    } else {
      throw new IllegalArgumentException("unknown event " + event);
    }
    out.logEpoch(log.epoch());
    checkInvariants();
  }

  /** An election timeout in [T, 2T): randomized so that replicas rarely time out together. */
  private long randomizedTimeout() {
    return config.quorumTimeoutNs + random.nextLong(Math.max(1, config.quorumTimeoutNs));
  }

  // ---------------------------------------------------------------- clients

  private void onClientRequest(Event.ClientRequest event, long nowNs, Effects out) {
    Request request = event.request();
    counters.requests++;
    Response refusal = validator.check(request);
    if (refusal != null) {
      if (refusal.getStatus() == Status.TOO_LARGE) {
        counters.tooLarge++;
      } else {
        counters.invalid++;
      }
      out.reply(event.connectionId(), refusal);
      return;
    }
    if (mode == Mode.RECOVERING) {
      out.reply(event.connectionId(), RequestValidator.refuse(request,
          Status.UNAVAILABLE, "replica " + self + " is recovering"));
      return;
    }
    switch (request.getOpCase()) {
      case GET, SCAN -> onRead(event, nowNs, out);
      case PUT, DELETE, COMPARE_AND_SET, BATCH, REGISTER_SESSION, CLOSE_SESSION -> onWrite(event, nowNs, out);
      default -> {
        counters.invalid++;
        out.reply(event.connectionId(), RequestValidator.refuse(request,
            Status.INVALID, "operation " + request.getOpCase() + " is not handled by the core"));
      }
    }
  }

  /**
   * The answer of a replica that is not the primary: NOT_PRIMARY with the primary's address, or, when
   * that hint would send the client to a primary this replica has not heard from lately (it may be
   * dead, paused or cut off, and a view change may follow), UNAVAILABLE without an address, so the
   * client tries another replica instead of waiting on a silent one (issue 9, 2i). Both carry the view.
   */
  private Response notPrimary(Request request) {
    counters.notPrimary++;
    int primary = config.primaryOf(view);
    Response.Builder b = Response.newBuilder().setRequestId(request.getRequestId()).setView(view);
    if (mode == Mode.VIEW_CHANGE) {
      // The next primary is not known for sure yet: the client retries with backoff.
      return b.setStatus(Status.UNAVAILABLE)
          .setError("replica " + self + " is in a view change to view " + view).build();
    }
    long silentNs = primaryWatch.silentNs(currentNs);
    if (silentNs > primarySilentHintNs()) {
      return b.setStatus(Status.UNAVAILABLE)
          .setError("replica " + self + " has not heard from replica " + primary + ", the primary of view "
              + view + ", for " + silentNs / 1_000_000 + " ms; a view change may follow").build();
    }
    return b.setStatus(Status.NOT_PRIMARY).setPrimaryAddress(config.clientAddress(primary))
        .setError("replica " + self + " is a backup; the primary of view " + view + " is replica " + primary)
        .build();
  }

  /** How long a primary may be silent before a backup stops pointing clients at it. */
  private long primarySilentHintNs() {
    return Math.max(3 * config.heartbeatIntervalNs, config.quorumTimeoutNs / 2);
  }

  private void onRead(Event.ClientRequest event, long nowNs, Effects out) {
    counters.reads++;
    Request request = event.request();
    if (config.breakage == CoreConfig.Breakage.LOCAL_READS) { // a deliberate bug, test_break_protocol
      out.read(event.connectionId(), request);
      return;
    }
    boolean sequential = request.getConsistency() == ReadConsistency.SEQUENTIAL;
    if (!sequential && !isPrimary()) {
      out.reply(event.connectionId(), notPrimary(request));
      return;
    }
    if (!sequential && n > 1 && quorum.live(nowNs) < config.quorum()) {
      counters.noQuorum++;
      out.reply(event.connectionId(), RequestValidator.refuse(request,
          Status.UNAVAILABLE, "no quorum: the primary has heard from " + quorum.live(nowNs) + " of " + n
              + " replicas (needs " + config.quorum() + ")"));
      return;
    }
    // Linearizable: the commit number seen on arrival, and (with backups) a heartbeat round sent after
    // arrival that f backups answer, which proves no newer view had formed (ReadIndex).
    long required = sequential ? request.getMinOp() : readIndex.linearizableOp(log.commitOp());
    long round = ReadIndex.NO_ROUND;
    if (!sequential && n > 1) {
      round = readIndex.nextRound(quorum.round());
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

  private void onWrite(Event.ClientRequest event, long nowNs, Effects out) {
    counters.writes++;
    Request request = event.request();
    if (!isPrimary()) {
      out.reply(event.connectionId(), notPrimary(request));
      return;
    }
    if (intake.joinInFlight(event)) {
      counters.duplicates++;
      return;
    }
    int live = quorum.live(nowNs);
    if (live < config.quorum()) {
      counters.noQuorum++;
      out.reply(event.connectionId(), RequestValidator.refuse(request,
          Status.UNAVAILABLE, "no quorum: the primary has heard from " + live + " of " + n
              + " replicas (needs " + config.quorum() + ")"));
      return;
    }
    if (intake.mustQueue(log.lastOp() - log.commitOp())) {
      intake.queue(event, counters, out);
      return;
    }
    admit(event, out);
  }

  private void admit(Event.ClientRequest event, Effects out) {
    Request request = event.request();
    Entry entry = Intake.entryFor(request, log.lastOp() + 1, view, clock.nowMs(currentNs), config);
    int size = entry.getSerializedSize();
    if (size > config.maxBatchBytes) {
      counters.tooLarge++;
      out.reply(event.connectionId(), RequestValidator.refuse(request,
          Status.TOO_LARGE, "the write's log entry has " + size + " bytes, more than max_batch_bytes "
              + config.maxBatchBytes));
      return;
    }
    if (intake.batchFull(size)) {
      flushBatch(out);
    }
    log.appendOwn(entry);
    intake.admitted(entry, size, event);
  }

  /** Hands the burst's batch to storage and, with backups, multicasts it (VR 4.1 step 3). */
  private void flushBatch(Effects out) {
    if (!intake.hasBatch()) {
      return;
    }
    List<Entry> batch = intake.takeBatch();
    out.persistAll(batch);
    counters.batches++;
    if (n > 1) {
      sendPrepares(Effects.MULTICAST, batch, out);
    }
  }

  /** Packs entries (consecutive ops) into as few PREPAREs as fit max_datagram_bytes. */
  private void sendPrepares(int to, List<Entry> entries, Effects out) {
    for (Prepare.Builder p : packPrepares(entries, config.maxDatagramBytes)) {
      emitPrepare(to, p, out);
    }
  }

  /**
   * Packs consecutive entries into PREPARE builders (commit not set) whose bodies fit maxDatagramBytes;
   * an entry bigger than that goes alone (the transport fragments it). Shared with resends from the log.
   */
  public static List<Prepare.Builder> packPrepares(List<Entry> entries, int maxDatagramBytes) {
    int limit = maxDatagramBytes - PREPARE_OVERHEAD_BYTES;
    List<Prepare.Builder> out = new ArrayList<>();
    Prepare.Builder p = null;
    int bytes = 0;
    for (Entry e : entries) {
      int size = e.getSerializedSize() + 5;
      if (p != null && bytes + size > limit) {
        p = null;
      }
      if (p == null) {
        p = Prepare.newBuilder().setFirstOp(e.getOp());
        out.add(p);
        bytes = 0;
      }
      p.addEntries(e);
      bytes += size;
    }
    return out;
  }

  private void emitPrepare(int to, Prepare.Builder p, Effects out) {
    p.setCommit(log.commitOp());
    Prepare prepare = p.build();
    out.send(to, view, MessageType.PREPARE, prepare);
    counters.preparesSent++;
    // A multicast PREPARE stands in for a heartbeat only when it fits one datagram: one that travels as
    // fragments reaches a backup only if every fragment does (under loss, 1 MiB values may hardly ever
    // arrive whole), and backups that hear nothing whole would depose a primary that is busy, not dead.
    if (to == Effects.MULTICAST && prepare.getSerializedSize() + PREPARE_OVERHEAD_BYTES <= config.maxDatagramBytes) {
      noteMulticast(currentNs);
    }
  }

  private void noteMulticast(long nowNs) {
    heartbeats.multicast(nowNs, log.commitOp());
  }

  // ---------------------------------------------------------------- storage events

  private void onPersisted(Event.Persisted event, Effects out) {
    if (!log.persisted(event.epoch(), event.op())) {
      return;
    }
    quorum.selfPersisted(log.persistedOp());
    if (!catchUp.pending() && log.applyPending()) {
      log.requestApply(out); // committed entries that waited for their own log write
    }
    if (isPrimary()) {
      advanceCommit(quorum.commit(durableLastNormalView == lastNormalView, log.lastOp()), out);
    } else {
      sendPrepareOk(out);
    }
  }

  /**
   * A backup's cumulative ack: every op up to it is durable here and in this view's log (VR 4.1 step
   * 4). Only once the log is complete in this view and that is on disk too (the last normal view): a
   * replica whose ack counted toward a commit must come back from a crash ranking its log by this view,
   * or a later view change could prefer a log that lacks the op.
   */
  private void sendPrepareOk(Effects out) {
    if (isBackup() && completeness.isComplete() && durableLastNormalView == lastNormalView) {
      out.send(config.primaryOf(view), view, MessageType.PREPARE_OK,
          PrepareOk.newBuilder().setOp(Math.min(log.persistedOp(), log.verifiedOp())).build());
    }
  }

  /** The op a backup may acknowledge now (0 while its log is incomplete or its last normal view is not durable). */
  private long ackableOp() {
    return completeness.isComplete() && durableLastNormalView == lastNormalView ? Math.min(log.persistedOp(), log.verifiedOp()) : 0;
  }

  private void onLastNormalViewPersisted(Event.LastNormalViewPersisted event, Effects out) {
    durableLastNormalView = event.lastNormalView();
    if (isPrimary()) {
      advanceCommit(quorum.commit(durableLastNormalView == lastNormalView, log.lastOp()), out); // its own copy counts from now on
    } else {
      sendPrepareOk(out);
    }
  }

  private void advanceCommit(long newCommit, Effects out) {
    newCommit = Math.min(newCommit, log.lastOp());
    if (newCommit <= log.commitOp()) {
      return;
    }
    if (isPrimary()) {
      for (long op = Math.max(log.commitOp() + 1, log.windowBase() + 1); op <= newCommit; op++) {
        intake.committed(log.entry(op).getSerializedSize());
      }
    }
    log.commitUpTo(newCommit);
    if (!catchUp.pending()) {
      log.requestApply(out);
    }
    if (isPrimary()) {
      admitQueued(out);
    }
  }

  private void admitQueued(Effects out) {
    for (Event.ClientRequest next = intake.nextQueued(log.lastOp() - log.commitOp()); next != null;
        next = intake.nextQueued(log.lastOp() - log.commitOp())) {
      if (!intake.joinInFlight(next)) {
        admit(next, out);
      }
    }
    intake.maybeResume(log.lastOp() - log.commitOp(), out);
  }

  private void onApplied(Event.Applied event, Effects out) {
    if (event.op() <= log.appliedOp()) {
      return; // superseded by a state transfer
    }
    log.checkApplied(event.firstOp(), event.op(), event.replies().size());
    for (long op = event.firstOp(); op <= event.op(); op++) {
      Response reply = event.replies().get((int) (op - event.firstOp()));
      intake.applied(log.entry(op), reply, out);
    }
    log.applied(event.firstOp(), event.op(), event.checksum());
    releaseReads(out);
    maybeTruncate(out);
  }

  /** Runs the reads whose op is applied and whose heartbeat round (if any) f backups confirmed. */
  private void releaseReads(Effects out) {
    if (!readIndex.isEmpty()) {
      readIndex.release(log.appliedOp(), confirmedRound(), out);
    }
  }

  /** The highest heartbeat round that f backups have answered in this view. */
  private long confirmedRound() {
    if (!isPrimary()) {
      return Long.MAX_VALUE; // sequential reads only: no round needed
    }
    return quorum.confirmedRound();
  }

  /**
   * Truncates the log below the low watermark (the lowest op every replica has), keeping at least
   * log_retention_min ops behind commit, and at most log_retention_max so a dead replica cannot make the
   * log grow forever; never an unapplied entry (needed to recover after a crash).
   */
  private void maybeTruncate(Effects out) {
    long lowWatermark = isPrimary() ? quorum.lowWatermark() : log.appliedOp();
    retention.truncate(lowWatermark, log.commitOp(), log.appliedOp()).ifPresent(op -> out.truncateLogBefore(op));
  }

  // ---------------------------------------------------------------- peers

  private void onPeer(Event.Peer p, long nowNs, Effects out) {
    int fromIndex = quorum.indexOf(p.from());
    if (fromIndex < 0 || p.from() == self) {
      counters.droppedUnexpected++;
      return;
    }
    // Every message in a replica's name earns it resend credit on a cluster without a key (ResendBudget).
    resender.received(fromIndex, DATAGRAM_HEADER_BYTES + p.body().getSerializedSize());
    if (!checks.admit(p, view)) {
      counters.peerRejected = checks.total();
      return;
    }
    if (mode == Mode.RECOVERING) {
      if (p.type() == MessageType.RECOVERY_RESPONSE) {
        onRecoveryResponse(p.from(), p.view(), (RecoveryResponse) p.body(), nowNs, out);
      } else {
        counters.droppedUnexpected++;
      }
      return;
    }
    if (p.type() == MessageType.RECOVERY) {
      onRecovery(p.from(), (Recovery) p.body(), out);
      return;
    }
    if (p.type() == MessageType.RECOVERY_RESPONSE) {
      counters.droppedUnexpected++;
      return;
    }
    if (p.type() == MessageType.PRE_VIEW_CHANGE || p.type() == MessageType.PRE_VIEW_CHANGE_OK) {
      // Pre-votes change nothing at the receiver and are answered whatever view their sender is in.
      if (p.view() >= view) {
        quorum.heard(fromIndex, nowNs); // a quiet primary (no quorum) hears its backups again
      }
      if (p.view() > view) {
        // The sender is in a newer view, which a majority once supported (views only rise behind a
        // pre-vote): this replica is behind, whatever it hears from its own primary. Follow it up.
        startViewChange(p.view(), nowNs, out);
      }
      if (p.type() == MessageType.PRE_VIEW_CHANGE) {
        onPreViewChange(p.from(), ((PreViewChange) p.body()).getView(), nowNs, out);
      } else {
        onPreViewChangeOk(p.from(), ((PreViewChangeOk) p.body()).getView(), nowNs, out);
      }
      return;
    }
    if (p.view() < view) {
      counters.droppedStaleView++; // fencing: a message of an older view never acts
      boolean fromOldPrimary = p.from() == config.primaryOf(p.view())
          && (p.type() == MessageType.PREPARE || p.type() == MessageType.HEARTBEAT
              || p.type() == MessageType.START_VIEW);
      if (fromOldPrimary && isPrimary()) {
        // A deposed primary still talking in its old view: tell it where the cluster is.
        out.send(p.from(), view, MessageType.HEARTBEAT, heartbeat());
      } else if (fromOldPrimary && nowNs - lastUnstickNs >= config.heartbeatIntervalNs) {
        // We moved to a newer view (a majority once granted it) but the others stayed with a primary
        // of an older one, which stickiness keeps them to. Views never go back, so tell that primary
        // we are in a newer view: it moves up and takes the cluster with it (etcd-io/raft frees a
        // node stuck in a higher term the same way, at the price of one election).
        lastUnstickNs = nowNs;
        counters.unstickNotices++;
        out.send(p.from(), view, MessageType.HEARTBEAT_OK,
            HeartbeatOk.getDefaultInstance());
      }
      return;
    }
    quorum.heard(fromIndex, nowNs);
    boolean fromPrimaryOfItsView = p.from() == config.primaryOf(p.view());
    if (p.view() > view) {
      switch (p.type()) {
        case START_VIEW_CHANGE, DO_VIEW_CHANGE -> {
          if (hearsLivePrimary(nowNs) && p.from() != config.primaryOf(view)) {
            // Leader stickiness (Raft thesis 4.2.3): while our primary is alive, a proposal for a newer
            // view comes from a replica that cannot hear it, and must not depose it.
            counters.droppedSticky++;
            return;
          }
          startViewChange(p.view(), nowNs, out);
        }
        case START_VIEW -> { }
        case HEARTBEAT_OK, PREPARE_OK -> {
          if (!isPrimary()) {
            counters.droppedFutureView++;
            return;
          }
          // A member answers our primary in a newer view: it is stuck there (see the stale-view case
          // above). Not a proposal, so no stickiness: follow it up, and our backups follow us.
          startViewChange(p.view(), nowNs, out);
          return;
        }
        case PREPARE, HEARTBEAT -> {
          if (!fromPrimaryOfItsView) {
            counters.droppedUnexpected++;
            return;
          }
          adoptView(p.view(), nowNs, out);
        }
        default -> {
          counters.droppedFutureView++;
          return;
        }
      }
    }
    switch (p.type()) {
      case START_VIEW_CHANGE -> onStartViewChange(p.from(), nowNs, out);
      case DO_VIEW_CHANGE -> onDoViewChange(p.from(), (DoViewChange) p.body(), nowNs, out);
      case START_VIEW -> {
        if (fromPrimaryOfItsView) {
          onStartView((StartView) p.body(), p.view(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case PREPARE -> {
        if (mode == Mode.VIEW_CHANGE && fill.isFrom(p.from())) {
          onFillEntries((Prepare) p.body(), nowNs, out);
        } else if (fromPrimaryOfItsView && !isPrimary()) {
          if (!checks.entriesFit(p, (Prepare) p.body(), log.verifiedOp(), log.commitOp(), log.window())) {
            counters.peerRejected = checks.total();
            return;
          }
          if (mode == Mode.VIEW_CHANGE) {
            adoptView(view, nowNs, out); // we missed START_VIEW of this view
          }
          onPrepare((Prepare) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case HEARTBEAT -> {
        if (fromPrimaryOfItsView && !isPrimary()) {
          if (mode == Mode.VIEW_CHANGE) {
            adoptView(view, nowNs, out);
          }
          onHeartbeat((Heartbeat) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case PREPARE_OK -> {
        if (isPrimary()) {
          long op = ((PrepareOk) p.body()).getOp();
          if (!checks.ackWithin(p, op, 0, log.lastOp(), quorum.round())) {
            counters.peerRejected = checks.total();
            return;
          }
          onAck(fromIndex, op, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case HEARTBEAT_OK -> {
        if (isPrimary()) {
          HeartbeatOk ok = (HeartbeatOk) p.body();
          if (!checks.ackWithin(p, ok.getOp(), ok.getRound(), log.lastOp(), quorum.round())) {
            counters.peerRejected = checks.total();
            return;
          }
          quorum.roundAnswered(fromIndex, ok.getRound());
          onAck(fromIndex, ok.getOp(), out);
          releaseReads(out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case NACK -> {
        if (isPrimary() || (mode == Mode.VIEW_CHANGE && !restartLimbo && p.from() == config.primaryOf(view))) {
          // In a view change the new primary may fetch committed entries it lacks from the chosen log.
          onNack(p.from(), (Nack) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      default -> counters.droppedUnexpected++;
    }
  }

  // ---------------------------------------------------------------- PreVote (Raft thesis 9.6)

  /**
   * True when this replica is NORMAL and its primary is alive: as a backup it heard the primary within
   * the election timeout; as the primary it heard from a quorum within it.
   */
  private boolean hearsLivePrimary(long nowNs) {
    if (mode != Mode.NORMAL || n == 1) {
      return false;
    }
    return isPrimary() ? quorum.live(nowNs) >= config.quorum()
        : primaryWatch.alive(nowNs);
  }

  /**
   * Asks the others whether they would support a view change to view + 1, instead of starting one: a
   * replica that alone cannot hear the primary (cut off, or just restarted) then never raises its view
   * and never deposes a healthy primary when it comes back (issue 9, 2d). Resent until granted by f
   * others or the primary is heard again.
   */
  private void startPreVote(long nowNs, Effects out) {
    if (mustCatchUp) {
      return; // it takes no part in forming a view; the others ask for themselves
    }
    if (view >= PeerMessageChecks.MAX_NUMBER) {
      return; // no view beyond: the others would drop the proposal (never reached but by lying members)
    }
    preVote.ask(view + 1, view, nowNs, counters, out);
  }

  /**
   * Grants a pre-vote for proposed when this replica would itself support it: it is in a view change
   * already, or it is a backup that has not heard its primary for the (fixed) election timeout. The
   * primary never grants. A replica that must catch up grants nothing (it does not vote).
   */
  private void onPreViewChange(int from, long proposed, long nowNs, Effects out) {
    if (mustCatchUp) {
      return;
    }
    if (proposed <= view) {
      // The asker is behind: if we lead a newer view, our heartbeat brings it in.
      if (isPrimary()) {
        out.send(from, view, MessageType.HEARTBEAT, heartbeat());
      }
      return;
    }
    // In a view change it grants only once its own has stalled: a view change making progress (a
    // long fetch of the chosen log) must not be cut short by one replica's impatience.
    boolean grant = (mode == Mode.VIEW_CHANGE && viewChange.stalled(nowNs))
        || (isBackup() && !primaryWatch.alive(nowNs));
    if (grant) {
      counters.preVotesGranted++;
      out.send(from, view, MessageType.PRE_VIEW_CHANGE_OK,
          PreViewChangeOk.newBuilder().setView(proposed).build());
    }
  }

  private void onPreViewChangeOk(int from, long proposed, long nowNs, Effects out) {
    if (!preVote.asksFor(proposed) || proposed <= view) {
      return;
    }
    if (hearsLivePrimary(nowNs)) {
      preVote.clear(); // a late grant: our primary spoke again meanwhile
      return;
    }
    if (preVote.granted(from)) {
      startViewChange(proposed, nowNs, out); // f others and this replica: a majority wants it
    }
  }

  private void onAck(int fromIndex, long op, Effects out) {
    resender.acknowledged(fromIndex, op);
    if (quorum.ack(fromIndex, op, log.lastOp())) {
      advanceCommit(quorum.commit(durableLastNormalView == lastNormalView, log.lastOp()), out);
    }
  }

  // ---------------------------------------------------------------- backups

  private void onPrepare(Prepare prepare, long nowNs, Effects out) {
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
      if (completeness.isUnknown() && newest.getView() == view) {
        // An entry made in this view lies beyond the log this view started with, which holds every op
        // committed before it. A resend of older entries (the answer to a NACK) says nothing of the
        // primary's log: wait for one of this view's entries, a HEARTBEAT or START_VIEW.
        completeness.at(repair.knownLastOp());
      }
    }
    long before = log.verifiedOp();
    for (Entry e : entries) {
      acceptEntry(e, out);
    }
    drainOutOfOrder(out);
    learnCommit(prepare.getCommit(), out);
    checkComplete(out);
    if (log.verifiedOp() > before && repair.knownLastOp() > log.verifiedOp()) {
      repair.progressed(nowNs); // a repair arriving piece by piece: ask for the next piece soon
    }
    scheduleNack(nowNs, out);
  }

  /**
   * Places e when it is the next op to verify or append, buffers it (bounded) when it is beyond a gap.
   */
  private void acceptEntry(Entry e, Effects out) {
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
      place(e, out);
      return;
    }
    repair.buffer(e, counters);
  }

  /** Puts the current view's entry for op verifiedOp + 1 in the log (ReplicaLog.place). */
  private void place(Entry e, Effects out) {
    ReplicaLog.Placed how = log.place(e, out);
    if (how == ReplicaLog.Placed.REPLACED) {
      truncated(e.getOp() - 1);
    }
    if (how != ReplicaLog.Placed.CONFIRMED) {
      clock.learn(e.getTimeMs(), currentNs);
    }
  }

  private void drainOutOfOrder(Effects out) {
    if (catchUp.pending()) {
      return;
    }
    for (Entry next = repair.takeNext(log.verifiedOp()); next != null; next = repair.takeNext(log.verifiedOp())) {
      place(next, out);
    }
  }

  private void learnCommit(long commit, Effects out) {
    long primaryCommit = repair.learnPrimaryCommit(commit);
    if (!catchUp.pending()) {
      advanceCommit(Math.min(primaryCommit, log.verifiedOp()), out);
    }
  }

  /**
   * Sets the op this backup's log must reach to be complete in this view (what the primary had when we
   * learned of the view); an idle cluster's primary may have nothing, so it can be complete at once.
   */
  private void completeAt(long op, Effects out) {
    if (op <= log.verifiedOp() && !catchUp.pending()) {
      becomeComplete(out);
    } else {
      completeness.at(op);
      checkComplete(out);
    }
  }

  private void checkComplete(Effects out) {
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
    lastNormalView = view;
    mustCatchUp = false;
    persistLastNormalView(out);
    // Caught up: storage clears its catching-up marker with the last normal view (a no-op when unset).
    out.caughtUp();
  }

  private void onHeartbeat(Heartbeat hb, long nowNs, Effects out) {
    primaryWatch.heard(nowNs);
    repair.learnLastOp(hb.getLastOp());
    if (completeness.isUnknown()) {
      completeAt(hb.getLastOp(), out);
    }
    repair.learnPrimaryLogFirstOp(hb.getLowWatermark());
    learnCommit(hb.getCommit(), out);
    checkComplete(out);
    out.send(config.primaryOf(view), view, MessageType.HEARTBEAT_OK,
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
    out.fetchStateFrom(config.primaryOf(view));
  }

  private void onStateInstalled(Event.StateInstalled s, long nowNs, Effects out) {
    catchUp.installed();
    if (s.op() <= log.appliedOp()) {
      return;
    }
    // The snapshot holds every op up to s.op(); this replica's log held less (it needed ops below the
    // primary's log), so nothing it acknowledged is lost by replacing its log.
    log.installed(s.op(), s.checksum()); // the install emptied the log: no earlier write survives in it
    retention.installed(s.op());
    quorum.selfPersisted(log.persistedOp());
    drainOutOfOrder(out);
    learnCommit(repair.primaryCommit(), out);
    checkComplete(out);
    scheduleNack(nowNs, out);
  }

  private void scheduleNack(long nowNs, Effects out) {
    boolean gap = isBackup() && !catchUp.pending() && repair.knownLastOp() > log.verifiedOp();
    repair.schedule(gap, nowNs, counters, out);
  }

  private void sendNackIfDue(long nowNs, Effects out) {
    List<OpRange> ranges = repair.dueNack(nowNs, log.verifiedOp());
    if (ranges.isEmpty()) {
      return;
    }
    out.send(config.primaryOf(view), view, MessageType.NACK,
        resender.padded(Nack.newBuilder().addAllRanges(ranges)));
    counters.nacksSent++;
  }

  private void onNack(int from, Nack nack, long nowNs, Effects out) {
    counters.nacksReceived++;
    Resender.Answer a = resender.answer(from, quorum.indexOf(from), nack, nowNs, isPrimary(),
        retention.firstOp(), log, view, counters, out);
    if (a == null) {
      return;
    }
    counters.retransmits += a.unicast().size() + a.multicast().size();
    counters.retransmitsMulticast += a.multicast().size();
    sendRuns(from, a.unicast(), out);
    sendRuns(Effects.MULTICAST, a.multicast(), out);
    if (a.belowLog() && isPrimary()) {
      // Tell the replica where the log starts: it will ask for a state transfer.
      out.send(from, view, MessageType.HEARTBEAT, heartbeat());
    }
  }

  /** Sends entries (ascending, maybe with holes) as PREPAREs of consecutive runs. */
  private void sendRuns(int to, List<Entry> entries, Effects out) {
    int start = 0;
    for (int i = 1; i <= entries.size(); i++) {
      if (i == entries.size() || entries.get(i).getOp() != entries.get(i - 1).getOp() + 1) {
        sendPrepares(to, entries.subList(start, i), out);
        start = i;
      }
    }
  }

  private Heartbeat heartbeat() {
    return Heartbeat.newBuilder().setLastOp(log.lastOp()).setCommit(log.commitOp()).setLowWatermark(retention.firstOp())
        .setRound(quorum.round()).build();
  }

  // ---------------------------------------------------------------- view change (VR Revisited 4.2)

  private void persistView(Effects out) {
    out.persistView(view);
  }

  private void persistLastNormalView(Effects out) {
    out.persistLastNormalView(lastNormalView);
  }

  /** Moves to view newView in VIEW_CHANGE mode and tells everyone (persisting the view first). */
  private void startViewChange(long newView, long nowNs, Effects out) {
    if (newView <= view && mode == Mode.VIEW_CHANGE) {
      return;
    }
    preVote.clear();
    // A replica that must catch up follows the cluster into the new view but takes no part in it.
    restartLimbo = mustCatchUp;
    stepDown(newView, out);
    view = newView;
    mode = Mode.VIEW_CHANGE;
    resender.newView();
    counters.viewChangesStarted++;
    fill.stop();
    viewChange.begin(nowNs, randomizedTimeout());
    persistView(out);
    if (restartLimbo) {
      return;
    }
    out.send(Effects.MULTICAST, view, MessageType.START_VIEW_CHANGE,
        StartViewChange.getDefaultInstance());
    if (config.primaryOf(view) == self) {
      viewChange.doViewChange(self, ownDoViewChange());
    }
    maybeSendDoViewChange(out);
  }

  /**
   * Leaving the primary role or a view: waiting clients learn it (they retry at the new primary with the
   * same request id, so nothing executes twice), queued writes and batched entries are dropped.
   */
  private void stepDown(long newView, Effects out) {
    boolean wasPrimary = isPrimary();
    if (wasPrimary) {
      // The waiters' entries are in the log and were multicast: they may still commit in the new view,
      // so their answer must say the outcome is unknown (a retry with the same request id learns it).
      Response.Builder unknown = Response.newBuilder().setStatus(Status.NOT_PRIMARY)
          .setPrimaryAddress(config.clientAddress(config.primaryOf(newView))).setView(newView)
          .setOutcomeUnknown(true)
          .setError("replica " + self + " is no longer the primary (view " + newView + "); the request was"
              + " logged and may still commit: retry it to learn its outcome");
      // Queued writes were never logged: they certainly did not execute.
      Response.Builder hint = Response.newBuilder().setStatus(Status.NOT_PRIMARY)
          .setPrimaryAddress(config.clientAddress(config.primaryOf(newView))).setView(newView)
          .setError("replica " + self + " is no longer the primary (view " + newView + ")");
      intake.answerAll(unknown, hint, out);
      if (intake.hasBatch()) {
        flushBatch(out); // the entries are in the log window already: keep log and storage in step
      }
    }
    intake.clear(out);
    readIndex.leaveView("replica " + self + " left view " + view, config.clientAddress(config.primaryOf(newView)), out);
    quorum.forgetRounds();
  }

  /**
   * What this replica tells the new primary: its last normal view, last op and commit, and no entries
   * (issue 9, 2e): the new primary fetches the chosen log's entries in bounded, repairable pieces, so
   * a DO_VIEW_CHANGE is one small datagram however full the window is.
   */
  private DoViewChange ownDoViewChange() {
    return DoViewChange.newBuilder().setLastNormalView(lastNormalView).setLastOp(log.lastOp())
        .setCommit(log.commitOp()).setLogFirstOp(retention.firstOp()).build();
  }

  private void onStartViewChange(int from, long nowNs, Effects out) {
    if (mode == Mode.NORMAL) {
      if (isPrimary()) {
        // Someone is behind: our START_VIEW brings it into this view.
        out.send(from, view, MessageType.START_VIEW, startView());
      }
      return;
    }
    if (mode != Mode.VIEW_CHANGE || restartLimbo) {
      return;
    }
    if (from == config.primaryOf(view)) {
      // The new primary is alive and forming this view (it may be fetching a large log): wait for it.
      viewChange.progressed(nowNs);
    }
    viewChange.startViewChangeFrom(from);
    maybeSendDoViewChange(out);
  }

  private void maybeSendDoViewChange(Effects out) {
    if (!viewChange.readyForDoViewChange(f())) {
      return;
    }
    int newPrimary = config.primaryOf(view);
    if (newPrimary == self) {
      viewChange.doViewChange(self, ownDoViewChange());
      maybeFinishViewChange(out);
    } else {
      out.send(newPrimary, view, MessageType.DO_VIEW_CHANGE, ownDoViewChange());
    }
  }

  private void onDoViewChange(int from, DoViewChange dvc, long nowNs, Effects out) {
    if (config.primaryOf(view) != self) {
      counters.droppedUnexpected++;
      return;
    }
    if (mode == Mode.NORMAL) {
      out.send(from, view, MessageType.START_VIEW, startView());
      return;
    }
    if (mode != Mode.VIEW_CHANGE || restartLimbo) {
      return;
    }
    if (dvc.getCommit() > dvc.getLastOp()) {
      counters.droppedUnexpected++; // malformed: a replica cannot know commits beyond its log
      return;
    }
    viewChange.doViewChange(from, dvc);
    viewChange.startViewChangeFrom(from); // a DO_VIEW_CHANGE implies its sender's START_VIEW_CHANGE
    maybeSendDoViewChange(out);
    maybeFinishViewChange(out);
  }

  /**
   * With f+1 DO_VIEW_CHANGEs (its own counted), the new primary takes the log of largest (last normal
   * view, op) (VR 4.2 step 3). Entries up to its own commit number are committed and the same
   * everywhere; above, the chosen log wins. When the chosen log is another replica's, the new primary
   * fetches its entries above its own commit from it by NACK, in pieces bounded by the resend budget
   * (large ones travel over the peer TCP connection), placing each in order as it arrives.
   */
  private void maybeFinishViewChange(Effects out) {
    ViewChange.Choice choice = mode == Mode.VIEW_CHANGE ? viewChange.choose(self, config.quorum()) : null;
    if (choice == null) {
      return;
    }
    int best = choice.best();
    DoViewChange bestDvc = choice.log();
    long maxCommit = choice.maxCommit();
    if (bestDvc.getLastOp() < maxCommit) {
      // Impossible unless a DO_VIEW_CHANGE lies: refuse to form this view (it times out, and the next
      // view change collects fresh ones) rather than lose a committed op or stop the replica.
      counters.viewChangesRefused++;
      viewChange.onlyOwn(self, ownDoViewChange());
      return;
    }
    if (best != self && bestDvc.getLogFirstOp() > log.commitOp() + 1) {
      // The chosen log no longer holds the ops between our commit and its start (they are only in its
      // applied state): we cannot rebuild it here. Give this view up at once: stop telling the others
      // to wait for us, and ask for the next view, whose primary may hold the log itself.
      counters.viewChangesUnfetchable++;
      viewChange.giveUp(currentNs);
      startPreVote(currentNs, out);
      return;
    }
    viewChange.chose(choice);
    if (best == self) {
      finishViewChange(out);
      return;
    }
    // Fetch the chosen log's entries (our commit, its last op] from the chosen replica. Ours above
    // commit become unverified: each is confirmed by the chosen one at its op, or dropped with all
    // after it where they differ (by log matching those are not committed).
    fill.start(best, bestDvc.getLastOp());
    log.unverifyAboveCommit();
    requestFill(out);
  }

  /** Asks the chosen replica for the rest of its log, or finishes when it is all placed. */
  private void requestFill(Effects out) {
    if (fill.complete(log.verifiedOp())) {
      finishViewChange(out);
      return;
    }
    out.send(fill.from(), view, MessageType.NACK,
        resender.padded(fill.request(log.verifiedOp(), currentNs)));
    counters.nacksSent++;
  }

  /**
   * Entries of the chosen log, from the chosen replica: placed in op order as they come (entries beyond
   * a gap wait in a bounded buffer). Committed ones advance the commit number at once. Progress keeps
   * the view change from timing out and asks for the next piece; a lost piece is asked for again by
   * the view-change timer.
   */
  private void onFillEntries(Prepare p, long nowNs, Effects out) {
    List<Entry> entries = p.getEntriesList();
    for (int i = 0; i < entries.size(); i++) {
      if (entries.get(i).getOp() != p.getFirstOp() + i) {
        counters.droppedUnexpected++;
        return; // malformed: entries of a PREPARE are consecutive
      }
    }
    long before = log.verifiedOp();
    for (Entry e : entries) {
      if (fill.offer(e, log.verifiedOp(), counters)) {
        place(e, out);
        for (Entry next = fill.takeNext(log.verifiedOp()); next != null; next = fill.takeNext(log.verifiedOp())) {
          place(next, out);
        }
      }
    }
    if (log.verifiedOp() == before) {
      return;
    }
    viewChange.progressed(nowNs); // progress: this view change is alive
    advanceCommit(Math.min(viewChange.chosenCommit(), log.verifiedOp()), out);
    if (fill.complete(log.verifiedOp())) {
      finishViewChange(out);
    } else if (fill.pieceIn(resender.limited(), resender.creditedAnswerBytes())) {
      // The piece asked for is in: the chosen replica answers a NACK with entries until its byte or
      // entry budget (the same settings) is spent, or, on a cluster without a key, the credit the NACK
      // earned for entries that go by datagram, so this much means the answer is complete. Ask for
      // the next piece; asking earlier would have it resend entries still on their way.
      requestFill(out);
    }
  }

  /** Installs the chosen log, becomes primary of the view and multicasts START_VIEW (VR 4.2 step 4). */
  private void finishViewChange(Effects out) {
    DoViewChange c = viewChange.chosen();
    boolean own = c == viewChange.own(self);
    if (!own) {
      // The fill placed the chosen log up to its last op (an entry equal to ours stayed, the first
      // different one replaced ours and all after it); whatever of ours lies beyond it goes.
      if (log.lastOp() > log.verifiedOp()) {
        truncateAfter(log.verifiedOp(), out);
      }
      if (log.lastOp() != c.getLastOp()) {
        // Our commit passed the chosen log's end after we chose it (a state transfer installed
        // meanwhile): forming the view could lose what we applied. Refuse it, as a lying
        // DO_VIEW_CHANGE is refused (it times out and the next one collects fresh ones), rather than
        // stop the replica.
        counters.viewChangesRefused++;
        viewChange.clearChosen();
        fill.stop();
        viewChange.onlyOwn(self, ownDoViewChange());
        return;
      }
    }
    mode = Mode.NORMAL;
    preVote.clear();
    lastNormalView = view;
    completeness.complete();
    log.verifyAll();
    readIndex.newFloor(log.lastOp());
    fill.stop();
    countViewChange();
    quorum.startView(log.persistedOp(), currentNs);
    resender.newView();
    repair.becamePrimary(log.lastOp());
    // Entries above commit are re-prepared in this view: they commit once f backups acknowledge them.
    intake.startView();
    for (long op = Math.max(log.windowBase() + 1, log.applyRequestedOp() + 1); op <= log.lastOp(); op++) {
      intake.relogged(log.entry(op), op > log.commitOp());
    }
    persistView(out);
    persistLastNormalView(out);
    advanceCommit(Math.min(viewChange.chosenCommit(), log.lastOp()), out);
    out.send(Effects.MULTICAST, view, MessageType.START_VIEW, startView());
    noteMulticast(currentNs);
    viewChange.clearChosen();
  }

  /**
   * START_VIEW carries the new log's last op and commit and no entries (issue 9, 2e): backups learn the
   * gap from it and repair it by NACK like any other loss, in bounded pieces.
   */
  private StartView startView() {
    return StartView.newBuilder().setLastOp(log.lastOp()).setCommit(log.commitOp()).build();
  }

  /** Drops every entry above op (in memory, and in storage before this step's appends). */
  private void truncateAfter(long op, Effects out) {
    if (log.truncateAfter(op, out)) {
      truncated(op);
    }
  }

  /** The log lost every op above op: the parts that track it follow. */
  private void truncated(long op) {
    intake.truncatedAfter(op);
    quorum.selfPersisted(log.persistedOp());
  }

  /**
   * Adopts view v whose primary is already normal (VR 4.2; also a replica that missed START_VIEW): our
   * entries above commit may come from an abandoned view, so they stay unverified until the new
   * primary's entries confirm or replace them by NACK repair; the log is complete (and our last normal
   * view becomes v) once it reaches what the primary had.
   */
  private void adoptView(long v, long nowNs, Effects out) {
    stepDown(v, out);
    view = v;
    mode = Mode.NORMAL;
    resender.newView();
    preVote.clear();
    restartLimbo = false;
    // Entries above commit are kept but unverified: the new primary's entries confirm or replace them.
    log.unverifyAboveCommit();
    repair.newView(log.commitOp());
    completeness.unknown();
    primaryWatch.restart(nowNs, randomizedTimeout());
    viewChange.forget();
    fill.stop();
    countViewChange();
    persistView(out);
  }

  /** Counts the completion of a view change into this view, once per view (not a rejoin of the same). */
  private void countViewChange() {
    if (view > lastCountedView) {
      lastCountedView = view;
      viewChanges++;
      lastViewChangeNs = currentNs;
    }
  }

  private void onStartView(StartView sv, long v, long nowNs, Effects out) {
    if (v == view && mode == Mode.NORMAL && completeness.isComplete()) {
      primaryWatch.heard(nowNs);
      return; // already in this view with a complete log
    }
    if (config.primaryOf(v) == self) {
      counters.droppedUnexpected++;
      return;
    }
    if (!(v == view && mode == Mode.NORMAL)) {
      adoptView(v, nowNs, out);
    }
    primaryWatch.heard(nowNs);
    repair.learnLastOp(sv.getLastOp());
    if (!completeness.isComplete()) {
      completeAt(sv.getLastOp(), out);
    }
    drainOutOfOrder(out);
    learnCommit(sv.getCommit(), out);
    checkComplete(out);
    scheduleNack(nowNs, out);
  }

  // ---------------------------------------------------------------- recovery (VR Revisited 4.3)

  private void onRecovery(int from, Recovery r, Effects out) {
    if (mode != Mode.NORMAL) {
      return; // only replicas in normal status answer
    }
    out.send(from, view, MessageType.RECOVERY_RESPONSE,
        RecoveryProtocol.answer(r, isPrimary(), log.lastOp(), log.commitOp()));
  }

  private void onRecoveryResponse(int from, long v, RecoveryResponse r, long nowNs, Effects out) {
    RecoveryProtocol.Outcome outcome = recovery.answered(from, v, r).orElse(null);
    if (outcome == null) {
      return;
    }
    long maxView = outcome.view();
    RecoveryResponse fromPrimary = outcome.fromPrimary();
    // Rejoin as a backup of maxView: keep only what is committed for sure (the applied state), and
    // count our log as older than any other until it has caught up.
    view = maxView;
    mode = Mode.NORMAL;
    lastNormalView = 0;
    // It may have lost entries it acknowledged: no vote and no acknowledgement until it has caught up.
    mustCatchUp = true;
    log.commitApplied();
    log.unverifyAboveCommit();
    // Our own tail above commit may be gone: what we know of the log is what the primary said.
    repair.rejoin(Math.max(log.commitOp(), fromPrimary.getLastOp()), fromPrimary.getCommit());
    completeness.unknown();
    completeAt(fromPrimary.getLastOp(), out);
    primaryWatch.restart(nowNs, randomizedTimeout());
    persistView(out);
    persistLastNormalView(out);
    checkComplete(out);
    scheduleNack(nowNs, out);
  }

  // ---------------------------------------------------------------- timers

  private void onTick(long nowNs, Effects out) {
    switch (mode) {
      case RECOVERING -> {
        recovery.tick(nowNs, view, out);
      }
      case VIEW_CHANGE -> {
        if (viewChange.stalled(nowNs)) {
          // This view change is stuck: ask to try the next primary. The others in the view change grant
          // at once; a replica that alone is stuck (cut off) asks in vain and keeps its view.
          startPreVote(nowNs, out);
        }
        boolean alive = !viewChange.stalled(nowNs);
        if (!restartLimbo && viewChange.resendDue(nowNs, config.heartbeatIntervalNs)) {
          if (alive || config.primaryOf(view) != self) {
            // The new primary's START_VIEW_CHANGE keeps the others waiting for it; once its own view
            // change has stalled it falls silent, so their timers run out and they grant the next view.
            out.send(Effects.MULTICAST, view, MessageType.START_VIEW_CHANGE,
                StartViewChange.getDefaultInstance());
          }
          if (viewChange.doViewChangeSent() && config.primaryOf(view) != self) {
            out.send(config.primaryOf(view), view, MessageType.DO_VIEW_CHANGE,
                ownDoViewChange());
          }
          if (fill.requestDue(nowNs, config.heartbeatIntervalNs)) {
            requestFill(out); // the last piece, or part of it, was lost
          }
        }
        long resendAt = restartLimbo ? Long.MAX_VALUE : viewChange.lastResendNs() + config.heartbeatIntervalNs;
        long timeoutAt = viewChange.timeoutAtNs();
        if (nowNs < timeoutAt) {
          out.tickBy(timeoutAt); // past it, the pre-vote schedules itself
        }
        out.tickBy(resendAt);
      }
      case NORMAL -> {
        if (isPrimary()) {
          onPrimaryTick(nowNs, out);
        } else {
          onBackupTick(nowNs, out);
        }
      }
    }
    if (mode != Mode.RECOVERING && log.applyPending() && !catchUp.pending()) {
      log.requestApply(out); // the recovered log after a restart
    }
    readIndex.expire(nowNs, log.appliedOp(), counters, out);
  }

  private void onPrimaryTick(long nowNs, Effects out) {
    // Self-clocking group commit (like Nagle's algorithm): while our previous log write is still
    // syncing, the batch keeps growing (up to max_batch_entries / max_batch_bytes, which admit() flushes
    // at); it goes out, as one log write and as few PREPAREs as fit, once that fsync is done. An idle
    // primary sends at once.
    if (!intake.logWriteUnderWay(log.persistedOp())) {
      flushBatch(out);
    }
    if (n > 1 && quorum.live(nowNs) < config.quorum()) {
      // CheckQuorum: a primary that has heard from fewer than f backups for the election timeout goes
      // quiet (it already refuses writes and reads). Its heartbeats would keep backups that hear it
      // from electing a primary that can reach a majority (it may be deaf, or alone); it speaks again
      // once it hears from f backups (any message of theirs, a pre-vote included).
      return;
    }
    if (n > 1) {
      // Idle for an interval, news of the commit number (HeartbeatTimer), or reads waiting for a round.
      if (heartbeats.due(nowNs, log.commitOp()) || readIndex.roundWanted()) {
        quorum.nextRound();
        if (readIndex.roundWanted()) {
          counters.readRounds++;
          readIndex.roundSent();
        }
        out.send(Effects.MULTICAST, view, MessageType.HEARTBEAT, heartbeat());
        counters.heartbeatsSent++;
        noteMulticast(nowNs);
      }
      out.tickBy(heartbeats.nextNs());
    }
  }

  private void onBackupTick(long nowNs, Effects out) {
    if (primaryWatch.electionDue(nowNs)) {
      // The primary is silent: ask for a view change (VR 4.2 step 1, behind a pre-vote).
      startPreVote(nowNs, out);
    } else {
      preVote.clear();
      out.tickBy(primaryWatch.electionAtNs());
    }
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

  private void checkInvariants() {
    if (!log.consistent()) {
      throw new IllegalStateException("core invariant broken: " + this);
    }
  }

  /**
   * Null when every buffer the core keeps within its bound, else which is not (the simulator's fuzz
   * asks after every event: no input may grow the core's memory without bound).
   */
  public String boundsViolation() {
    String repairViolation = repair.boundsViolation();
    if (repairViolation != null) {
      return repairViolation;
    }
    if (fill.buffered() > config.maxOutOfOrderEntries) {
      return "fill buffer " + fill.buffered() + " entries";
    }
    if (intake.queued() > config.maxQueuedRequests || readIndex.size() > config.maxQueuedRequests) {
      return "queues: " + intake.queued() + " writes, " + readIndex.size() + " reads";
    }
    if (resender.records() > 4 * config.maxRetransmitEntriesPerNack || log.truncationsRemembered() > ReplicaLog.MAX_TRUNCATIONS_REMEMBERED) {
      return "resend records " + resender.records() + ", truncations " + log.truncationsRemembered();
    }
    if (viewChange.size() > n || preVote.grants() > n
        || recovery.size() > n) {
      return "per-replica sets beyond " + n + " members";
    }
    if (view < 0 || view > PeerMessageChecks.MAX_NUMBER || log.lastOp() > PeerMessageChecks.MAX_NUMBER) {
      return "view " + view + " or op " + log.lastOp() + " out of range";
    }
    return null;
  }

  // ---------------------------------------------------------------- status

  public long view() {
    return view;
  }

  public Mode mode() {
    return mode;
  }

  public long lastNormalView() {
    return lastNormalView;
  }

  /**
   * True while this replica, having lost state it may have acknowledged, catches up: it counts as
   * failed (it neither votes nor acknowledges) until its log is complete again.
   */
  public boolean mustCatchUp() {
    return mustCatchUp;
  }

  /** "primary", "backup", "catching-up", "view-change" or "recovering". */
  public String role() {
    return switch (mode) {
      case VIEW_CHANGE -> "view-change";
      case RECOVERING -> "recovering";
      case NORMAL -> isPrimary() ? "primary" : (catchUp.pending() || !completeness.isComplete() ? "catching-up" : "backup");
    };
  }

  public int primaryId() {
    return config.primaryOf(view);
  }

  public long lastOp() {
    return log.lastOp();
  }

  public long persistedOp() {
    return log.persistedOp();
  }

  public long commitOp() {
    return log.commitOp();
  }

  public long appliedOp() {
    return log.appliedOp();
  }

  public long checksum() {
    return log.checksum();
  }

  public long logFirstOp() {
    return retention.firstOp();
  }

  /** Completed view changes seen by this replica (as new primary, or by adopting a new view). */
  public long viewChanges() {
    return viewChanges;
  }

  /** The time (the step clock) of the last completed view change, or -1. */
  public long lastViewChangeNs() {
    return lastViewChangeNs;
  }

  /** How far this replica is behind the highest op it knows of. */
  public long lag() {
    return Math.max(0, Math.max(repair.knownLastOp(), repair.primaryCommit()) - log.appliedOp());
  }

  public Counters counters() {
    return counters;
  }

  /**
   * Peer messages dropped by their checks, by reason (status: peer_rejected_ and the reason; see
   * PeerMessageChecks.Reason), every reason listed.
   */
  public Map<String, Long> peerRejections() {
    return checks.counts();
  }

  /**
   * True when peer message p would pass the checks of the message itself and of its view against ours
   * (PeerMessageChecks.admit; not those of its handler), counting nothing: the simulator's fuzz uses it
   * to tell a mutation the checks catch from a plausible lie.
   */
  public boolean wouldAdmit(Event.Peer p) {
    return checks.wouldAdmit(p, view);
  }

  /** The last peer message rejection in words (reason, type, sender, view), or "" (a rate-limited log line). */
  public String lastPeerRejection() {
    return checks.last();
  }

  public int queuedWrites() {
    return intake.queued();
  }

  public int pendingReads() {
    return readIndex.size();
  }

  @Override
  public String toString() {
    return "ReplicaCore{id=" + self + ", view=" + view + ", mode=" + mode + ", lnv=" + lastNormalView
        + ", complete@" + completeness + ", last=" + log.lastOp() + ", verified=" + log.verifiedOp() + ", persisted=" + log.persistedOp()
        + ", commit=" + log.commitOp() + ", applyRequested=" + log.applyRequestedOp() + ", applied=" + log.appliedOp()
        + ", window=(" + log.windowBase() + "," + log.windowLast() + "], known=" + repair.knownLastOp()
        + ", ooo=" + repair.buffered() + ", queued=" + intake.queued() + ", batch=" + intake.batchSize() + "}";
  }
}
