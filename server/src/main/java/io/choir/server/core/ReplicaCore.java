package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.MemberRole;
import io.choir.proto.MembershipInfo;
import io.choir.proto.Prepare;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * ReplicaCore is the replication protocol of one replica as a pure, deterministic state machine:
 * {@link #step(Event, long, Effects)} takes one event and the current time and appends what the caller
 * must do to an {@link Effects}. It owns no socket, thread, clock or unseeded random source (DESIGN.md
 * "Code shape"; etcd-io/raft's Step/Ready), so the simulator can run it thousands of times per minute
 * and replay any run from its seed. The protocol is Viewstamped Replication Revisited (Liskov &amp;
 * Cowling 2012) with PREPAREs multicast, a pre-vote and NACK repair.
 *
 * <p>This class builds the parts, dispatches each event to the one that handles it, and handles the
 * storage events (a log write done, entries applied, the last normal view recorded). The roles, each
 * documented in its own class:
 * <ul>
 *   <li>{@link ViewState}: view, mode, last normal view, restartLimbo and mustCatchUp (4.2, figure 2);
 *   <li>{@link WritePath}: the primary's writes, group commit, PREPAREs, acks, commit and the answers
 *       to NACKs (4.1; repair);
 *   <li>{@link ReadPath}: sequential and linearizable reads, CheckQuorum (read index, DESIGN.md "Reads");
 *   <li>{@link BackupPath}: a backup's entries, acks, commit, gaps and NACKs, state transfer (4.1, 5.2);
 *   <li>{@link PreVotePath}: the election timer and pre-vote before a view change (4.2 step 1, Raft 9.6);
 *   <li>{@link ViewChangePath}: START_VIEW_CHANGE, DO_VIEW_CHANGE, the fetch of the chosen log and
 *       START_VIEW (4.2 steps 1-4);
 *   <li>{@link JoinViewPath}: adopting a view whose primary is normal (4.2 step 5);
 *   <li>{@link RecoveryPath}: RECOVERY and its answers (4.3);
 *   <li>{@link PeerRouter}: the checks and view rules (fencing, stickiness) every peer message meets, and
 *       which role handles it (4.2);
 *   <li>{@link ClientRouter}: the checks every client request meets, and which role handles it;
 *   <li>{@link Redirect}: a non-primary's answer to clients (4.1).
 * </ul>
 * Their state lives in parts of its own: {@link ReplicaLog} (entries and the
 * last/verified/persisted/commit/applied numbers), {@link Completeness} (a backup's log in this view),
 * {@link LogRetention} (the log's old end), {@link Intake} (the primary's window, queue, batch and
 * waiting clients), {@link QuorumTracker} (acks, last heard, heartbeat rounds), {@link HeartbeatTimer},
 * {@link ReadIndex} (waiting reads and the read floor), {@link GapRepair} (a backup's gaps and NACKs),
 * {@link Resender} (answers to NACKs), {@link CatchUp} (state transfer), {@link PrimaryWatch} (a
 * backup's election timer), {@link ElectionTimeout}, {@link PreVote}, {@link ViewChange} and
 * {@link LogFill} (the view change and the fetch of the chosen log), {@link RecoveryProtocol} (VR 4.3),
 * {@link ReplicatedClock} and {@link Counters}.
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
  /** Every field of every peer message, checked before a handler acts on it (issue 10, item 5). */
  private final PeerMessageChecks checks;
  /** What NACKs may make this replica resend, per asker (issue 10, item 6). */
  private final Resender resender;
  /** The one seeded source of the replica's randomness (GapRepair, ElectionTimeout, the recovery nonce). */
  private final SplittableRandom random;
  private final int self;
  /** The current membership (epoch, voters, learners). */
  private final Members members;
  private final ViewState views;
  /** In NORMAL mode as a backup: whether the log is complete in this view, or which op it must reach. */
  private final Completeness completeness;
  /** The log and its numbers (last, verified, persisted, commit, applied). */
  private final ReplicaLog log;
  private final LogRetention retention;
  private final Intake intake;
  private final QuorumTracker quorum;
  private final GapRepair repair;
  private final CatchUp catchUp;
  private final PrimaryWatch primaryWatch;
  private final ElectionTimeout timeouts;
  /** The view change's state (the current view). */
  private final ViewChange viewChange = new ViewChange();
  private final PreVote preVote;
  /** At the new primary: the fetch of the chosen log's entries. */
  private final LogFill fill;
  private final RecoveryProtocol recovery;
  private final ReadIndex readIndex;
  /** The replicated clock (Entry.time_ms). */
  private final ReplicatedClock clock = new ReplicatedClock();
  private final Counters counters = new Counters();

  private final WritePath writes;
  private final ReadPath reads;
  private final BackupPath backups;
  private final PreVotePath preVotes;
  private final ViewChangePath viewChanges;
  private final RecoveryPath recoveries;
  private final ClientRouter clients;
  private final PeerRouter peers;
  private final MembershipPath memberships;
  private final StoragePath storage;
  private boolean started;

  /** A replica of the bootstrap membership (epoch 1: the configured replicas, all voters). */
  public ReplicaCore(CoreConfig config, RecoveredState recovered) {
    this(config, recovered, config.bootstrapMembership());
  }

  /** A replica whose durable state holds membership (its epoch's voters and learners). */
  public ReplicaCore(CoreConfig config, RecoveredState recovered, Membership membership) {
    this.config = config;
    RequestValidator validator = new RequestValidator(config);
    this.checks = new PeerMessageChecks(config, validator);
    this.self = config.replicaId();
    this.members = new Members(self, membership);
    recovered = recovered.inEpochFrom(membership.startView());
    this.resender = new Resender(config, members);
    this.random = new SplittableRandom(config.seed * 0x9E3779B97F4A7C15L + self);
    this.views = new ViewState(members, recovered);
    // Everything in the local log survived a restart, so it is durable here. A single replica is its
    // own majority: its durable log is committed. With more, what is committed beyond the applied
    // number is learned again from the primary (or, at the primary, from the acks).
    this.log = new ReplicaLog(recovered, members.voterCount() == 1 && members.selfVotes(), config.retransmitRingEntries, config.retransmitRingBytes);
    this.retention = new LogRetention(Math.min(recovered.logFirstOp(), log.appliedOp() + 1),
        config.logRetentionMinOps, config.logRetentionMaxOps);
    this.repair = new GapRepair(config, random, log.lastOp());
    this.recovery = new RecoveryProtocol(config, members);
    this.preVote = new PreVote(config, members);
    this.fill = new LogFill(config);
    this.intake = new Intake(config);
    HeartbeatTimer heartbeats = new HeartbeatTimer(config.heartbeatIntervalNs);
    this.primaryWatch = new PrimaryWatch(config.quorumTimeoutNs);
    this.timeouts = new ElectionTimeout(config.quorumTimeoutNs, random);
    this.catchUp = new CatchUp(config.heartbeatIntervalNs * 4);
    this.quorum = new QuorumTracker(config, members);
    this.quorum.selfPersisted(log.persistedOp());
    this.readIndex = new ReadIndex(config.maxQueuedRequests, config.readTimeoutNs, log.lastOp());
    if (views.mode() != Mode.NORMAL) {
      log.unverifyAboveCommit(); // entries above commit may be from an abandoned view (ViewState)
    }
    // A restarted backup whose last normal view is older than its view had not caught up in it.
    this.completeness = new Completeness(Math.min(recovered.lastNormalView(), recovered.view()) == recovered.view()
        ? Completeness.State.COMPLETE : Completeness.State.UNKNOWN);
    if (views.mustCatchUp()) {
      // What its log says it has is not what it acknowledged: it acknowledges nothing until it has
      // caught up from a primary (ViewState).
      this.completeness.unknown();
    }
    // The roles, each given the parts it uses, in dependency order (no role calls one built after it).
    Redirect redirect = new Redirect(config, views, primaryWatch, counters);
    this.writes = new WritePath(config, views, log, retention, intake, quorum, heartbeats, readIndex, resender,
        catchUp, clock, redirect, counters);
    this.reads = new ReadPath(config, views, log, quorum, readIndex, new PrimaryLease(config.leaseDurationNs),
        redirect, counters);
    this.backups = new BackupPath(views, log, completeness, retention, repair, catchUp, primaryWatch, resender,
        intake, quorum, clock, writes, counters);
    this.preVotes = new PreVotePath(config, views, quorum, primaryWatch, preVote, viewChange, writes, counters);
    this.viewChanges = new ViewChangePath(config, views, log, completeness, retention, viewChange, fill, preVote,
        intake, quorum, readIndex, resender, repair, timeouts, writes, backups, preVotes, counters);
    JoinViewPath joins = new JoinViewPath(config, views, log, completeness, viewChange, fill, preVote, resender,
        repair, primaryWatch, timeouts, writes, backups, counters);
    this.recoveries = new RecoveryPath(views, log, recovery, repair, completeness, primaryWatch, timeouts, backups);
    this.memberships = new MembershipPath(config, views, log, completeness, quorum, resender, viewChanges, joins,
        writes, backups, redirect, catchUp, counters);
    this.storage = new StoragePath(config, views, log, retention, intake, quorum, catchUp, writes, reads, backups,
        memberships);
    this.clients = new ClientRouter(config, validator, views, reads, writes, memberships, counters);
    this.peers = new PeerRouter(config, views, checks, resender, quorum, log, fill, writes, reads, backups,
        preVotes, viewChanges, joins, recoveries, memberships, counters);
  }

  /**
   * The window in which linearizable reads of single keys may be answered without this core (see
   * {@link LeaseReadWindow}), as of nowNs; {@link LeaseReadWindow#NONE} when none may. Take it after a
   * burst's last step and before its effects are carried out.
   */
  public LeaseReadWindow leaseReadWindow(long nowNs) {
    return reads.leaseWindow(nowNs);
  }

  public boolean isPrimary() {
    return views.isPrimary();
  }

  /** Steps one event at time nowNs, appending what to do to out. */
  public void step(Event event, long nowNs, Effects out) {
    out.logEpoch(log.epoch());
    if (!started) {
      started = true;
      clock.start(nowNs);
      if (log.lastOp() > log.windowBase()) {
        clock.restartedAt(log.entry(log.lastOp()).getTimeMs()); // the restarted log's newest entry
      }
      quorum.heardAll(nowNs); // grace period: nobody is presumed dead at start
      primaryWatch.firstStep(nowNs, timeouts.draw());
      viewChange.startTimers(nowNs, timeouts.draw());
      if (views.mode() == Mode.RECOVERING) {
        recovery.begin(random.nextLong() | 1);
      }
      if (views.isBackup()) {
        backups.announce(out);
      }
    }
    if (event instanceof Event.ClientRequest r) {
      clients.onClientRequest(r, nowNs, out);
    } else if (event instanceof Event.Persisted p) {
      storage.onPersisted(p, nowNs, out);
    } else if (event instanceof Event.Applied a) {
      storage.onApplied(a, nowNs, out);
    } else if (event instanceof Event.LastNormalViewPersisted l) {
      storage.onLastNormalViewPersisted(l, nowNs, out);
    } else if (event instanceof Event.Peer p) {
      peers.onPeer(p, nowNs, out);
    } else if (event instanceof Event.Tick) {
      onTick(nowNs, out);
    } else if (event instanceof Event.LeaseReadsServed s) {
      reads.onLeaseReadsServed(s.count(), s.sequential(), nowNs);
    } else if (event instanceof Event.StateInstalled s) {
      storage.onStateInstalled(s, nowNs, out);
    } else if (event instanceof Event.StateTransferFailed) {
      // Still pending: storage may hold a partial install, so nothing is applied until one succeeds.
      out.tickBy(catchUp.failed(nowNs));
    } else {
      throw new IllegalArgumentException("unknown event " + event);
    }
    out.logEpoch(log.epoch());
    checkInvariants();
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

  // ---------------------------------------------------------------- timers

  private void onTick(long nowNs, Effects out) {
    switch (views.mode()) {
      case RECOVERING -> recoveries.tick(nowNs, out);
      case VIEW_CHANGE -> viewChanges.tick(nowNs, out);
      case NORMAL -> {
        if (views.isPrimary()) {
          long round = quorum.round();
          writes.tick(nowNs, out);
          reads.roundsSentSince(round, nowNs); // a lease runs from the decision to send a round
        } else {
          preVotes.electionTick(nowNs, out);
          backups.tick(nowNs, out);
        }
      }
    }
    if (views.mode() != Mode.RECOVERING && log.applyPending() && !catchUp.pending()) {
      log.requestApply(out); // the recovered log after a restart
    }
    readIndex.expire(nowNs, log.appliedOp(), counters, out);
    memberships.tick(nowNs, out); // a replica left behind by an epoch change
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
    int n = members.ids().size();
    if (viewChange.size() > n || preVote.grants() > n
        || recovery.size() > n) {
      return "per-replica sets beyond " + n + " members";
    }
    if (views.view() < 0 || views.view() > PeerMessageChecks.MAX_NUMBER || log.lastOp() > PeerMessageChecks.MAX_NUMBER) {
      return "view " + views.view() + " or op " + log.lastOp() + " out of range";
    }
    return null;
  }

  // ---------------------------------------------------------------- status

  public long view() {
    return views.view();
  }

  public Mode mode() {
    return views.mode();
  }

  public long lastNormalView() {
    return views.lastNormalView();
  }

  /**
   * True while this replica, having lost state it may have acknowledged, catches up: it counts as
   * failed (it neither votes nor acknowledges) until its log is complete again.
   */
  public boolean mustCatchUp() {
    return views.mustCatchUp();
  }

  /** "primary", "backup", "catching-up", "view-change" or "recovering". */
  public String role() {
    return switch (views.mode()) {
      case VIEW_CHANGE -> "view-change";
      case RECOVERING -> "recovering";
      case NORMAL -> views.isPrimary() ? "primary" : (catchUp.pending() || !completeness.isComplete() ? "catching-up" : "backup");
    };
  }

  public int primaryId() {
    return views.primary();
  }

  /** The current membership (epoch, voters, learners, first view). */
  public Membership membership() {
    return members.current();
  }

  /** This replica's own role in its epoch: VOTER, LEARNER or RETIRED. */
  public MemberRole memberRole() {
    return memberships.selfRole();
  }

  /** The membership as ListMembers and status show it. */
  public MembershipInfo membershipInfo() {
    return memberships.info();
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
    return views.viewChanges();
  }

  /** The time (the step clock) of the last completed view change, or -1. */
  public long lastViewChangeNs() {
    return views.lastViewChangeNs().orElse(-1);
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
    return checks.wouldAdmit(p, views.view());
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
    return "ReplicaCore{id=" + self + ", view=" + views.view() + ", mode=" + views.mode() + ", lnv=" + views.lastNormalView()
        + ", complete@" + completeness + ", last=" + log.lastOp() + ", verified=" + log.verifiedOp() + ", persisted=" + log.persistedOp()
        + ", commit=" + log.commitOp() + ", applyRequested=" + log.applyRequestedOp() + ", applied=" + log.appliedOp()
        + ", window=(" + log.windowBase() + "," + log.windowLast() + "], known=" + repair.knownLastOp()
        + ", ooo=" + repair.buffered() + ", queued=" + intake.queued() + ", batch=" + intake.batchSize() + "}";
  }
}
