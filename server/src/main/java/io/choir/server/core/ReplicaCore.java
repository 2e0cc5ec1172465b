package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * ReplicaCore is the replication protocol of one replica as a pure, deterministic state machine:
 * {@link #step(Event, long, Effects)} takes one event and the current time and appends what the caller
 * must do to an {@link Effects}. It owns no socket, thread, clock or unseeded random source (DESIGN.md
 * "Code shape"; etcd-io/raft's Step/Ready), so the simulator can run it thousands of times per minute
 * and replay any run from its seed.
 *
 * <p>Normal case (Viewstamped Replication Revisited, Liskov &amp; Cowling 2012, section 4.1, with
 * PREPAREs multicast): the primary orders writes into entries with consecutive op numbers, groups a
 * burst into one log write and as few PREPARE datagrams as fit (group commit), counts its own durable
 * copy toward the f+1 quorum, commits when f+1 replicas have persisted an op, asks for committed entries
 * to be applied in order and answers each client after its entry is applied. Backups accept entries
 * only in op order, persist them and send cumulative PREPARE_OKs; commit numbers ride on every PREPARE
 * and HEARTBEAT, and backups apply up to them.
 *
 * <p>Repair (DESIGN.md "Loss, repair and flow"): a backup finds gaps from out-of-order entries and from
 * heartbeats whose last op is beyond its own (loss of the last datagram), waits a random delay from the
 * seeded source, NACKs every gap (capped), and repeats with exponential backoff until filled (RFC 5401
 * style). The primary resends from memory or, for older ops, asks its caller to read the log; by
 * unicast, or by multicast when several replicas asked for the same op within a short window
 * ({@link ResendTracker}). A backup that needs ops the primary's log no longer holds asks for a state
 * transfer.
 *
 * <p>The primary of view 0 is fixed in this version: view changes arrive with issue 4. A primary that
 * has heard from fewer than f backups within quorum_timeout refuses writes (UNAVAILABLE) rather than
 * queue them forever.
 *
 * <p>Exactly-once: a retry of a request whose entry is still in flight waits for that entry; a retry of
 * an applied request gets a new entry whose application returns the saved reply (KvStateMachine).
 */
public final class ReplicaCore {
  private record Waiter(long connectionId, long requestId) {}

  private record SessionKey(long clientId, long requestId) {}

  private record PendingRead(long connectionId, Request request, long requiredOp, long deadlineNs, long seq) {}

  /** Bytes of a PREPARE besides its entries (header and framing), for packing datagrams. */
  private static final int PREPARE_OVERHEAD_BYTES = 64;

  private final CoreConfig config;
  private final RequestValidator validator;
  private final SplittableRandom random;
  private final int n;
  private final int self;
  private long view;

  private long lastOp;
  private long persistedOp;
  private long commitOp;
  private long applyRequestedOp;
  private long appliedOp;
  private long checksum;
  private long inFlightBytes;
  private long logFirstOp;
  private long lastTruncateRequest;

  /** Entries window.base()+1 .. lastOp: unapplied ones plus a ring of applied ones for resending. */
  private LogWindow window;

  // Primary state.
  private final List<Entry> batch = new ArrayList<>();
  private int batchBytes;
  private final Map<Long, Object> waiters = new HashMap<>();
  private final Map<SessionKey, Long> pendingRequests = new HashMap<>();
  private final ArrayDeque<Event.ClientRequest> queued = new ArrayDeque<>();
  private boolean intakePaused;
  /** Highest op each replica (by position in replicaIds) has acknowledged as persisted. */
  private final long[] acked;
  private final long[] lastHeardNs;
  private long lastMulticastNs = Long.MIN_VALUE / 2;
  private long commitAtLastMulticast;
  private long heartbeatRound;
  private final ResendTracker resends;

  // Backup state.
  private final TreeMap<Long, Entry> outOfOrder = new TreeMap<>();
  private long knownLastOp;
  private long primaryCommit;
  private long primaryLogFirstOp = 1;
  private long nackDueNs = Long.MAX_VALUE;
  private int nackAttempts;
  /** Set once this backup needs a state transfer; cleared only by a successful install. */
  private boolean stateTransferPending;
  /** A fetch is under way (the caller reports StateInstalled or StateTransferFailed). */
  private boolean stateTransferInFlight;
  private long stateTransferRetryNs = Long.MAX_VALUE;

  private final PriorityQueue<PendingRead> pendingReads =
      new PriorityQueue<>((a, b) -> a.requiredOp != b.requiredOp
          ? Long.compare(a.requiredOp, b.requiredOp) : Long.compare(a.seq, b.seq));
  private long readSeq;
  private boolean started;

  private final Counters counters = new Counters();

  /** Counters the core keeps for status; plain fields, read on the core's thread. */
  public static final class Counters {
    public long requests;
    public long writes;
    public long reads;
    public long busy;
    public long invalid;
    public long tooLarge;
    public long duplicates;
    public long readTimeouts;
    public long batches;
    public long notPrimary;
    public long noQuorum;
    public long preparesSent;
    public long heartbeatsSent;
    public long nacksSent;
    public long nacksReceived;
    public long retransmits;
    public long retransmitsMulticast;
    public long retransmitsFromLog;
    public long gapsDetected;
    public long duplicateEntries;
    public long outOfOrderDropped;
    public long droppedStaleView;
    public long droppedFutureView;
    public long droppedUnexpected;
    public long stateTransfers;
  }

  public ReplicaCore(CoreConfig config, RecoveredState recovered) {
    this.config = config;
    this.validator = new RequestValidator(config);
    this.n = config.replicaIds().size();
    this.self = config.replicaId();
    this.random = new SplittableRandom(config.seed * 0x9E3779B97F4A7C15L + self);
    this.view = recovered.view();
    this.appliedOp = recovered.appliedOp();
    this.applyRequestedOp = recovered.appliedOp();
    this.checksum = recovered.checksum();
    this.logFirstOp = Math.min(recovered.logFirstOp(), appliedOp + 1);
    this.window = new LogWindow(appliedOp);
    for (Entry e : recovered.unappliedLog()) {
      window.append(e);
    }
    this.lastOp = window.last();
    // Everything in the local log survived a restart, so it is durable here.
    this.persistedOp = lastOp;
    this.knownLastOp = lastOp;
    this.acked = new long[n];
    this.lastHeardNs = new long[n];
    this.acked[index(self)] = persistedOp;
    // A single replica is its own majority: its durable log is committed. With more, what is committed
    // beyond the applied number is learned again from the primary (or, at the primary, from the acks).
    this.commitOp = n == 1 ? lastOp : appliedOp;
    this.resends = new ResendTracker(config.resendSuppressNs, config.multicastRetransmitWindowNs,
        4 * config.maxRetransmitEntriesPerNack);
  }

  private int index(int replicaId) {
    return config.replicaIds().indexOf(replicaId);
  }

  public boolean isPrimary() {
    return config.primaryOf(view) == self;
  }

  /** Steps one event at time nowNs, appending what to do to out. */
  public void step(Event event, long nowNs, Effects out) {
    currentNs = nowNs;
    if (!started) {
      started = true;
      Arrays.fill(lastHeardNs, nowNs); // grace period: nobody is presumed dead at start
    }
    if (event instanceof Event.ClientRequest r) {
      onClientRequest(r, nowNs, out);
    } else if (event instanceof Event.Persisted p) {
      onPersisted(p, nowNs, out);
    } else if (event instanceof Event.Applied a) {
      onApplied(a, out);
    } else if (event instanceof Event.Peer p) {
      onPeer(p, nowNs, out);
    } else if (event instanceof Event.Tick) {
      onTick(nowNs, out);
    } else if (event instanceof Event.StateInstalled s) {
      onStateInstalled(s, nowNs, out);
    } else if (event instanceof Event.StateTransferFailed) {
      // Still pending: storage may hold a partial install, so nothing is applied until one succeeds.
      stateTransferInFlight = false;
      stateTransferRetryNs = nowNs + config.heartbeatIntervalNs * 4;
      out.nextTickNs = Math.min(out.nextTickNs, stateTransferRetryNs);
    } else {
      throw new IllegalArgumentException("unknown event " + event);
    }
    checkInvariants();
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
      out.replies.add(new Effects.Reply(event.connectionId(), refusal));
      return;
    }
    switch (request.getOpCase()) {
      case GET, SCAN -> onRead(event, nowNs, out);
      case PUT, DELETE, COMPARE_AND_SET, BATCH -> onWrite(event, nowNs, out);
      default -> {
        counters.invalid++;
        out.replies.add(new Effects.Reply(event.connectionId(), RequestValidator.refuse(request,
            Status.INVALID, "operation " + request.getOpCase() + " is not handled by the core")));
      }
    }
  }

  private Response notPrimary(Request request) {
    counters.notPrimary++;
    int primary = config.primaryOf(view);
    return Response.newBuilder().setRequestId(request.getRequestId()).setStatus(Status.NOT_PRIMARY)
        .setPrimaryAddress(config.clientAddress(primary))
        .setError("replica " + self + " is a backup; the primary of view " + view + " is replica " + primary)
        .build();
  }

  private void onRead(Event.ClientRequest event, long nowNs, Effects out) {
    counters.reads++;
    Request request = event.request();
    boolean sequential = request.getConsistency() == ReadConsistency.SEQUENTIAL;
    if (!sequential && !isPrimary()) {
      out.replies.add(new Effects.Reply(event.connectionId(), notPrimary(request)));
      return;
    }
    // Linearizable: the commit number seen on arrival; with the primary fixed (no view change yet) no
    // other replica can have committed more, so applied >= it makes the read linearizable.
    long required = sequential ? request.getMinOp() : commitOp;
    if (appliedOp >= required) {
      out.reads.add(new Effects.Read(event.connectionId(), request));
      return;
    }
    if (pendingReads.size() >= config.maxQueuedRequests) {
      counters.busy++;
      out.replies.add(new Effects.Reply(event.connectionId(),
          RequestValidator.refuse(request, Status.BUSY, "too many reads waiting (max_queued_requests "
              + config.maxQueuedRequests + ")")));
      return;
    }
    pendingReads.add(new PendingRead(event.connectionId(), request, required,
        nowNs + config.readTimeoutNs, readSeq++));
    out.nextTickNs = Math.min(out.nextTickNs, nowNs + config.readTimeoutNs);
  }

  private void onWrite(Event.ClientRequest event, long nowNs, Effects out) {
    counters.writes++;
    Request request = event.request();
    if (!isPrimary()) {
      out.replies.add(new Effects.Reply(event.connectionId(), notPrimary(request)));
      return;
    }
    if (request.getClientId() != 0) {
      Long op = pendingRequests.get(new SessionKey(request.getClientId(), request.getRequestId()));
      if (op != null) {
        counters.duplicates++;
        addWaiter(op, new Waiter(event.connectionId(), request.getRequestId()));
        return;
      }
    }
    int live = liveReplicas(nowNs);
    if (live < config.quorum()) {
      counters.noQuorum++;
      out.replies.add(new Effects.Reply(event.connectionId(), RequestValidator.refuse(request,
          Status.UNAVAILABLE, "no quorum: the primary has heard from " + live + " of " + n
              + " replicas (needs " + config.quorum() + ")")));
      return;
    }
    if (!queued.isEmpty() || windowFull()) {
      if (queued.size() >= config.maxQueuedRequests) {
        counters.busy++;
        out.replies.add(new Effects.Reply(event.connectionId(), RequestValidator.refuse(request,
            Status.BUSY, "replica overloaded: " + queued.size() + " writes queued (max_queued_requests)")));
      } else {
        queued.add(event);
      }
      if (!intakePaused) {
        intakePaused = true;
        out.pauseIntake = Boolean.TRUE;
      }
      return;
    }
    admit(event, out);
  }

  /** Replicas (this one included) heard from within quorum_timeout. */
  private int liveReplicas(long nowNs) {
    int live = 1;
    for (int i = 0; i < n; i++) {
      if (config.replicaIds().get(i) != self && nowNs - lastHeardNs[i] < config.quorumTimeoutNs) {
        live++;
      }
    }
    return live;
  }

  private boolean windowFull() {
    return lastOp - commitOp >= config.maxInFlightOps || inFlightBytes >= config.maxInFlightBytes;
  }

  private void admit(Event.ClientRequest event, Effects out) {
    Request request = event.request();
    Entry.Builder b = Entry.newBuilder()
        .setOp(lastOp + 1)
        .setView(view)
        .setClientId(request.getClientId())
        .setRequestId(request.getRequestId())
        .setFirstIncomplete(request.getFirstIncomplete());
    switch (request.getOpCase()) {
      case PUT -> b.setPut(request.getPut());
      case DELETE -> b.setDelete(request.getDelete());
      case COMPARE_AND_SET -> b.setCompareAndSet(request.getCompareAndSet());
      case BATCH -> b.setBatch(request.getBatch());
      default -> throw new IllegalStateException("not a write: " + request.getOpCase());
    }
    Entry entry = b.build();
    int size = entry.getSerializedSize();
    if (size > config.maxBatchBytes) {
      counters.tooLarge++;
      out.replies.add(new Effects.Reply(event.connectionId(), RequestValidator.refuse(request,
          Status.TOO_LARGE, "the write's log entry has " + size + " bytes, more than max_batch_bytes "
              + config.maxBatchBytes)));
      return;
    }
    if (batchBytes + size > config.maxBatchBytes || batch.size() >= config.maxBatchEntries) {
      flushBatch(out);
    }
    lastOp = entry.getOp();
    window.append(entry);
    inFlightBytes += size;
    addWaiter(lastOp, new Waiter(event.connectionId(), request.getRequestId()));
    if (request.getClientId() != 0) {
      pendingRequests.put(new SessionKey(request.getClientId(), request.getRequestId()), lastOp);
    }
    batch.add(entry);
    batchBytes += size;
  }

  private void addWaiter(long op, Waiter w) {
    Object existing = waiters.get(op);
    if (existing == null) {
      waiters.put(op, w);
    } else if (existing instanceof Waiter single) {
      List<Waiter> list = new ArrayList<>(2);
      list.add(single);
      list.add(w);
      waiters.put(op, list);
    } else {
      @SuppressWarnings("unchecked")
      List<Waiter> list = (List<Waiter>) existing;
      list.add(w);
    }
  }

  /** Hands the burst's batch to storage and, with backups, multicasts it (VR 4.1 step 3). */
  private void flushBatch(Effects out) {
    if (batch.isEmpty()) {
      return;
    }
    out.persist.addAll(batch);
    counters.batches++;
    if (n > 1) {
      sendPrepares(Effects.MULTICAST, batch, out);
    }
    batch.clear();
    batchBytes = 0;
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
    p.setCommit(commitOp);
    out.sends.add(new Effects.Send(to, view, MessageType.PREPARE, p.build()));
    counters.preparesSent++;
    if (to == Effects.MULTICAST) {
      noteMulticast(currentNs);
    }
  }

  /** The time of the event being stepped. */
  private long currentNs;

  private void noteMulticast(long nowNs) {
    lastMulticastNs = nowNs;
    commitAtLastMulticast = commitOp;
  }

  // ---------------------------------------------------------------- storage events

  private void onPersisted(Event.Persisted event, long nowNs, Effects out) {
    if (event.op() > lastOp) {
      throw new IllegalStateException("persisted " + event.op() + " beyond last op " + lastOp);
    }
    if (event.op() <= persistedOp) {
      return;
    }
    persistedOp = event.op();
    acked[index(self)] = persistedOp;
    if (isPrimary()) {
      advanceCommit(quorumCommit(), out);
    } else {
      // Cumulative ack: every op up to persistedOp is durable here (VR 4.1 step 4).
      out.sends.add(new Effects.Send(config.primaryOf(view), view, MessageType.PREPARE_OK,
          PrepareOk.newBuilder().setOp(persistedOp).build()));
    }
  }

  /** The highest op that f+1 replicas (this primary counted) have persisted. */
  private long quorumCommit() {
    long[] sorted = acked.clone();
    Arrays.sort(sorted);
    long c = sorted[n - config.quorum()];
    return Math.min(c, lastOp);
  }

  private void advanceCommit(long newCommit, Effects out) {
    newCommit = Math.min(newCommit, lastOp);
    if (newCommit <= commitOp) {
      return;
    }
    if (isPrimary()) {
      for (long op = Math.max(commitOp + 1, window.base() + 1); op <= newCommit; op++) {
        inFlightBytes -= window.get(op).getSerializedSize();
      }
    }
    commitOp = newCommit;
    if (!stateTransferPending) {
      requestApply(out);
    }
    if (isPrimary()) {
      admitQueued(out);
    }
  }

  private void requestApply(Effects out) {
    for (long op = applyRequestedOp + 1; op <= commitOp; op++) {
      out.apply.add(window.get(op));
    }
    applyRequestedOp = Math.max(applyRequestedOp, commitOp);
  }

  private void admitQueued(Effects out) {
    while (!queued.isEmpty() && !windowFull()) {
      Event.ClientRequest next = queued.poll();
      Long op = next.request().getClientId() == 0 ? null
          : pendingRequests.get(new SessionKey(next.request().getClientId(), next.request().getRequestId()));
      if (op != null) {
        addWaiter(op, new Waiter(next.connectionId(), next.request().getRequestId()));
      } else {
        admit(next, out);
      }
    }
    if (intakePaused && queued.isEmpty()
        && lastOp - commitOp <= config.maxInFlightOps / 2
        && inFlightBytes <= config.maxInFlightBytes / 2) {
      intakePaused = false;
      out.pauseIntake = Boolean.FALSE;
    }
  }

  private void onApplied(Event.Applied event, Effects out) {
    if (event.op() <= appliedOp) {
      return; // superseded by a state transfer
    }
    if (event.firstOp() != appliedOp + 1 || event.op() > applyRequestedOp
        || event.replies().size() != event.op() - event.firstOp() + 1) {
      throw new IllegalStateException("applied " + event.firstOp() + ".." + event.op() + " after "
          + appliedOp + " (requested up to " + applyRequestedOp + ")");
    }
    for (long op = event.firstOp(); op <= event.op(); op++) {
      Response reply = event.replies().get((int) (op - event.firstOp()));
      Entry entry = window.get(op);
      if (entry.getClientId() != 0) {
        pendingRequests.remove(new SessionKey(entry.getClientId(), entry.getRequestId()));
      }
      Object w = waiters.remove(op);
      if (w instanceof Waiter single) {
        out.replies.add(new Effects.Reply(single.connectionId(), reply));
      } else if (w != null) {
        @SuppressWarnings("unchecked")
        List<Waiter> list = (List<Waiter>) w;
        for (Waiter each : list) {
          out.replies.add(new Effects.Reply(each.connectionId(), reply));
        }
      }
    }
    appliedOp = event.op();
    checksum = event.checksum();
    // Keep a ring of applied entries in memory for fast resends; older ones are read from the log.
    window.releaseUpTo(Math.max(window.base(), appliedOp - config.retransmitRingEntries));
    while (!pendingReads.isEmpty() && pendingReads.peek().requiredOp() <= appliedOp) {
      PendingRead r = pendingReads.poll();
      out.reads.add(new Effects.Read(r.connectionId(), r.request()));
    }
    maybeTruncate(out);
  }

  /**
   * Truncates the log below the low watermark (the lowest op every replica has), keeping at least
   * log_retention_min ops behind commit, and at most log_retention_max so a dead replica cannot make the
   * log grow forever; never an unapplied entry (needed to recover after a crash).
   */
  private void maybeTruncate(Effects out) {
    long lowWatermark = Arrays.stream(acked).min().orElse(0);
    long keepFrom = Math.min(lowWatermark + 1, commitOp - config.logRetentionMinOps + 1);
    keepFrom = Math.max(keepFrom, commitOp - config.logRetentionMaxOps + 1);
    keepFrom = Math.min(keepFrom, appliedOp + 1);
    long step = Math.max(1, config.logRetentionMinOps / 10);
    if (keepFrom > logFirstOp && keepFrom - Math.max(lastTruncateRequest, logFirstOp) >= step) {
      out.truncateLogBefore = keepFrom;
      logFirstOp = keepFrom;
      lastTruncateRequest = keepFrom;
    }
  }

  // ---------------------------------------------------------------- peers

  private void onPeer(Event.Peer p, long nowNs, Effects out) {
    int fromIndex = index(p.from());
    if (fromIndex < 0 || p.from() == self) {
      counters.droppedUnexpected++;
      return;
    }
    if (p.view() < view) {
      counters.droppedStaleView++; // fencing: a message of an older view never acts
      return;
    }
    if (p.view() > view) {
      counters.droppedFutureView++; // catching up into a newer view arrives with view changes
      return;
    }
    lastHeardNs[fromIndex] = nowNs;
    boolean primary = isPrimary();
    boolean fromPrimary = p.from() == config.primaryOf(view);
    switch (p.type()) {
      case PREPARE -> {
        if (!primary && fromPrimary) {
          onPrepare((Prepare) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case HEARTBEAT -> {
        if (!primary && fromPrimary) {
          onHeartbeat((Heartbeat) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case PREPARE_OK -> {
        if (primary) {
          onAck(fromIndex, ((PrepareOk) p.body()).getOp(), out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case HEARTBEAT_OK -> {
        if (primary) {
          onAck(fromIndex, ((HeartbeatOk) p.body()).getOp(), out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case NACK -> {
        if (primary) {
          onNack(p.from(), (Nack) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      default -> counters.droppedUnexpected++;
    }
  }

  private void onAck(int fromIndex, long op, Effects out) {
    if (op > acked[fromIndex]) {
      acked[fromIndex] = Math.min(op, lastOp);
      advanceCommit(quorumCommit(), out);
    }
  }

  private void onPrepare(Prepare prepare, long nowNs, Effects out) {
    List<Entry> entries = prepare.getEntriesList();
    for (int i = 0; i < entries.size(); i++) {
      Entry e = entries.get(i);
      if (e.getOp() != prepare.getFirstOp() + i) {
        counters.droppedUnexpected++;
        return; // malformed: entries of a PREPARE are consecutive
      }
    }
    if (!entries.isEmpty()) {
      knownLastOp = Math.max(knownLastOp, entries.get(entries.size() - 1).getOp());
    }
    int before = out.persist.size();
    for (Entry e : entries) {
      acceptEntry(e, out);
    }
    if (out.persist.size() > before) {
      drainOutOfOrder(out);
    }
    learnCommit(prepare.getCommit(), out);
    scheduleNack(nowNs, out);
  }

  /** Appends e when it is the next op, buffers it (bounded) when it is beyond a gap. */
  private void acceptEntry(Entry e, Effects out) {
    long op = e.getOp();
    if (op <= lastOp || outOfOrder.containsKey(op)) {
      counters.duplicateEntries++;
      return;
    }
    if (op == lastOp + 1 && !stateTransferPending) {
      append(e, out);
      return;
    }
    if (outOfOrder.size() < config.maxOutOfOrderEntries) {
      outOfOrder.put(op, e);
    } else {
      counters.outOfOrderDropped++; // bounded buffer: the NACK will bring it back
    }
  }

  private void append(Entry e, Effects out) {
    window.append(e);
    lastOp = e.getOp();
    out.persist.add(e);
  }

  private void drainOutOfOrder(Effects out) {
    if (stateTransferPending) {
      return;
    }
    Iterator<Map.Entry<Long, Entry>> it = outOfOrder.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<Long, Entry> next = it.next();
      if (next.getKey() <= lastOp) {
        it.remove();
      } else if (next.getKey() == lastOp + 1) {
        append(next.getValue(), out);
        it.remove();
      } else {
        break;
      }
    }
  }

  private void learnCommit(long commit, Effects out) {
    primaryCommit = Math.max(primaryCommit, commit);
    if (!stateTransferPending) {
      advanceCommit(Math.min(primaryCommit, lastOp), out);
    }
  }

  private void onHeartbeat(Heartbeat hb, long nowNs, Effects out) {
    knownLastOp = Math.max(knownLastOp, hb.getLastOp());
    primaryLogFirstOp = Math.max(primaryLogFirstOp, hb.getLowWatermark());
    learnCommit(hb.getCommit(), out);
    out.sends.add(new Effects.Send(config.primaryOf(view), view, MessageType.HEARTBEAT_OK,
        HeartbeatOk.newBuilder().setRound(hb.getRound()).setOp(persistedOp).build()));
    if (needsStateTransfer()) {
      requestStateTransfer(nowNs, out);
    }
    scheduleNack(nowNs, out);
  }

  /** True when the ops this backup lacks are below what the primary's log still holds. */
  private boolean needsStateTransfer() {
    return stateTransferPending || (lastOp + 1 < primaryLogFirstOp && knownLastOp > lastOp);
  }

  private void requestStateTransfer(long nowNs, Effects out) {
    if (stateTransferInFlight || (stateTransferRetryNs != Long.MAX_VALUE && nowNs < stateTransferRetryNs)) {
      return;
    }
    stateTransferPending = true;
    stateTransferInFlight = true;
    stateTransferRetryNs = Long.MAX_VALUE;
    counters.stateTransfers++;
    out.stateTransferFrom = config.primaryOf(view);
  }

  private void onStateInstalled(Event.StateInstalled s, long nowNs, Effects out) {
    stateTransferPending = false;
    stateTransferInFlight = false;
    stateTransferRetryNs = Long.MAX_VALUE;
    if (s.op() <= appliedOp) {
      return;
    }
    // The snapshot holds every op up to s.op(); this replica's log held less (it needed ops below the
    // primary's log), so nothing it acknowledged is lost by replacing its log.
    appliedOp = s.op();
    applyRequestedOp = s.op();
    checksum = s.checksum();
    lastOp = s.op();
    persistedOp = s.op();
    commitOp = Math.max(commitOp, s.op());
    logFirstOp = s.op() + 1;
    acked[index(self)] = persistedOp;
    window = new LogWindow(s.op());
    drainOutOfOrder(out);
    learnCommit(primaryCommit, out);
    scheduleNack(nowNs, out);
  }

  /** The gaps between lastOp and knownLastOp, minus what waits in the out-of-order buffer. */
  private List<OpRange> missingRanges(int max) {
    List<OpRange> ranges = new ArrayList<>();
    long from = lastOp + 1;
    for (long buffered : outOfOrder.keySet()) {
      if (ranges.size() >= max) {
        return ranges;
      }
      if (buffered > from) {
        ranges.add(OpRange.newBuilder().setFirst(from).setLast(buffered - 1).build());
      }
      from = Math.max(from, buffered + 1);
    }
    if (from <= knownLastOp && ranges.size() < max) {
      ranges.add(OpRange.newBuilder().setFirst(from).setLast(knownLastOp).build());
    }
    return ranges;
  }

  private void scheduleNack(long nowNs, Effects out) {
    boolean gap = !stateTransferPending && knownLastOp > lastOp;
    if (!gap) {
      nackDueNs = Long.MAX_VALUE;
      nackAttempts = 0;
      return;
    }
    if (nackDueNs == Long.MAX_VALUE) {
      counters.gapsDetected++;
      // A random first delay lets a multicast resend to another replica fill this gap too (RFC 5401).
      nackDueNs = nowNs + (config.nackDelayNs > 0 ? random.nextLong(config.nackDelayNs) : 0);
    }
    out.nextTickNs = Math.min(out.nextTickNs, nackDueNs);
  }

  private void sendNackIfDue(long nowNs, Effects out) {
    if (nackDueNs == Long.MAX_VALUE || nowNs < nackDueNs) {
      return;
    }
    List<OpRange> ranges = missingRanges(config.maxNackRanges);
    if (ranges.isEmpty()) {
      nackDueNs = Long.MAX_VALUE;
      nackAttempts = 0;
      return;
    }
    out.sends.add(new Effects.Send(config.primaryOf(view), view, MessageType.NACK,
        Nack.newBuilder().addAllRanges(ranges).build()));
    counters.nacksSent++;
    nackAttempts++;
    long backoff = Math.min(config.nackBackoffMaxNs,
        Math.max(config.nackDelayNs, 1_000_000L) << Math.min(nackAttempts, 20));
    nackDueNs = nowNs + backoff / 2 + random.nextLong(Math.max(1, backoff / 2));
  }

  private void onNack(int from, Nack nack, long nowNs, Effects out) {
    counters.nacksReceived++;
    int budget = config.maxRetransmitEntriesPerNack;
    List<Entry> unicast = new ArrayList<>();
    List<Entry> multicast = new ArrayList<>();
    boolean belowLog = false;
    for (OpRange r : nack.getRangesList()) {
      long first = Math.max(1, r.getFirst());
      long last = Math.min(lastOp, r.getLast());
      for (long op = first; op <= last && budget > 0; op++) {
        if (op < logFirstOp) {
          belowLog = true;
          op = logFirstOp - 1;
          continue;
        }
        ResendTracker.Decision d = resends.decide(op, from, nowNs);
        if (d == ResendTracker.Decision.SKIP) {
          continue;
        }
        budget--;
        if (op <= window.base()) {
          // Older than the in-memory ring: the caller reads it from the log.
          long runEnd = op;
          while (runEnd + 1 <= Math.min(last, window.base()) && budget > 0
              && resends.decide(runEnd + 1, from, nowNs) != ResendTracker.Decision.SKIP) {
            runEnd++;
            budget--;
          }
          out.retransmits.add(new Effects.Retransmit(
              d == ResendTracker.Decision.MULTICAST ? Effects.MULTICAST : from, view, op, runEnd, commitOp));
          counters.retransmitsFromLog += runEnd - op + 1;
          op = runEnd;
          continue;
        }
        (d == ResendTracker.Decision.MULTICAST ? multicast : unicast).add(window.get(op));
      }
    }
    counters.retransmits += unicast.size() + multicast.size();
    counters.retransmitsMulticast += multicast.size();
    sendRuns(from, unicast, out);
    sendRuns(Effects.MULTICAST, multicast, out);
    if (belowLog) {
      // Tell the replica where the log starts: it will ask for a state transfer.
      out.sends.add(new Effects.Send(from, view, MessageType.HEARTBEAT, heartbeat()));
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
    return Heartbeat.newBuilder().setLastOp(lastOp).setCommit(commitOp).setLowWatermark(logFirstOp)
        .setRound(heartbeatRound).build();
  }

  // ---------------------------------------------------------------- timers

  private void onTick(long nowNs, Effects out) {
    if (isPrimary()) {
      flushBatch(out);
      if (n > 1) {
        boolean idle = nowNs - lastMulticastNs >= config.heartbeatIntervalNs;
        // A commit that advanced after the last multicast travels sooner than the next heartbeat, so
        // backups apply (and serve sequential reads) promptly when the load stops.
        boolean commitNews = commitOp > commitAtLastMulticast
            && nowNs - lastMulticastNs >= config.heartbeatIntervalNs / 10;
        if (idle || commitNews) {
          heartbeatRound++;
          out.sends.add(new Effects.Send(Effects.MULTICAST, view, MessageType.HEARTBEAT, heartbeat()));
          counters.heartbeatsSent++;
          noteMulticast(nowNs);
        }
        out.nextTickNs = Math.min(out.nextTickNs, lastMulticastNs + config.heartbeatIntervalNs);
      }
    } else {
      sendNackIfDue(nowNs, out);
      if (needsStateTransfer()) {
        requestStateTransfer(nowNs, out);
      }
      if (stateTransferRetryNs != Long.MAX_VALUE) {
        out.nextTickNs = Math.min(out.nextTickNs, stateTransferRetryNs);
      }
      if (nackDueNs != Long.MAX_VALUE) {
        out.nextTickNs = Math.min(out.nextTickNs, nackDueNs);
      }
    }
    if (applyRequestedOp < commitOp && !stateTransferPending) {
      requestApply(out); // the recovered log after a restart
    }
    expireReads(nowNs, out);
  }

  private void expireReads(long nowNs, Effects out) {
    if (pendingReads.isEmpty()) {
      return;
    }
    List<PendingRead> expired = new ArrayList<>();
    long next = Long.MAX_VALUE;
    for (PendingRead r : pendingReads) {
      if (r.deadlineNs() <= nowNs) {
        expired.add(r);
      } else {
        next = Math.min(next, r.deadlineNs());
      }
    }
    for (PendingRead r : expired) {
      pendingReads.remove(r);
      counters.readTimeouts++;
      out.replies.add(new Effects.Reply(r.connectionId(), RequestValidator.refuse(r.request(),
          Status.UNAVAILABLE, "replica has applied op " + appliedOp + ", the read needs op "
              + r.requiredOp() + "; gave up after read_timeout_ms")));
    }
    out.nextTickNs = Math.min(out.nextTickNs, next);
  }

  private void checkInvariants() {
    if (!(appliedOp <= applyRequestedOp && applyRequestedOp <= commitOp && commitOp <= lastOp
        && persistedOp <= lastOp && window.base() <= appliedOp && window.last() == lastOp)) {
      throw new IllegalStateException("core invariant broken: " + this);
    }
  }

  // ---------------------------------------------------------------- status

  public long view() {
    return view;
  }

  /** "primary" or "backup" (or "catching-up" during a state transfer). */
  public String role() {
    if (isPrimary()) {
      return "primary";
    }
    return stateTransferPending ? "catching-up" : "backup";
  }

  public int primaryId() {
    return config.primaryOf(view);
  }

  public long lastOp() {
    return lastOp;
  }

  public long persistedOp() {
    return persistedOp;
  }

  public long commitOp() {
    return commitOp;
  }

  public long appliedOp() {
    return appliedOp;
  }

  public long checksum() {
    return checksum;
  }

  public long logFirstOp() {
    return logFirstOp;
  }

  /** How far this replica is behind the highest op it knows of. */
  public long lag() {
    return Math.max(0, Math.max(knownLastOp, primaryCommit) - appliedOp);
  }

  public Counters counters() {
    return counters;
  }

  public int queuedWrites() {
    return queued.size();
  }

  public int pendingReads() {
    return pendingReads.size();
  }

  @Override
  public String toString() {
    return "ReplicaCore{id=" + self + ", view=" + view + ", last=" + lastOp + ", persisted=" + persistedOp
        + ", commit=" + commitOp + ", applyRequested=" + applyRequestedOp + ", applied=" + appliedOp
        + ", window=(" + window.base() + "," + window.last() + "], known=" + knownLastOp
        + ", ooo=" + outOfOrder.size() + ", queued=" + queued.size() + ", batch=" + batch.size() + "}";
  }
}
