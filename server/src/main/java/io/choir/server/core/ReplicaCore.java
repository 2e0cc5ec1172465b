package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * ReplicaCore is the replication protocol of one replica as a pure, deterministic state machine:
 * {@link #step(Event, long, Effects)} takes one event and the current time and appends what the caller
 * must do to an {@link Effects}. It owns no socket, thread, clock or random source (DESIGN.md "Code
 * shape"; etcd-io/raft's Step/Ready), so the simulator can run it thousands of times per minute and
 * replay any run from its seed.
 *
 * <p>This version implements the normal case of Viewstamped Replication Revisited (Liskov &amp; Cowling
 * 2012, section 4.1) for the primary: it orders writes into log entries with consecutive op numbers,
 * groups them into batches (group commit), counts its own durable copy toward the f+1 quorum, commits,
 * asks for the committed entries to be applied in order, and answers each client after its entry is
 * applied. With one replica, the replica is its own majority. Multicast PREPAREs to backups, NACK
 * repair and view changes build on this shape (issues 3 and 4).
 *
 * <p>Reads: a linearizable read notes the commit number when it arrives and runs once the applied
 * number has reached it (DESIGN.md "Reads"; with more than one replica a heartbeat round will also
 * confirm the primary's view first). A sequential read runs once applied reaches the client's min_op.
 *
 * <p>Duplicates: a retry of a request whose entry is still in flight waits for that entry instead of
 * adding another; a retry of an already applied request gets a new entry whose application returns the
 * saved reply from the client table without executing it again (KvStateMachine). Both give exactly-once
 * execution.
 *
 * <p>Flow control: at most max_in_flight_ops entries (and max_in_flight_bytes) beyond commit. When the
 * window is full, writes wait in a queue of at most max_queued_requests (beyond it they get BUSY) and
 * the core asks the caller to stop reading client sockets (TCP backpressure) until half the window is
 * free again.
 */
public final class ReplicaCore {
  private record Waiter(long connectionId, long requestId) {}

  private record SessionKey(long clientId, long requestId) {}

  private record PendingRead(long connectionId, Request request, long requiredOp, long deadlineNs, long seq) {}

  private final CoreConfig config;
  private final RequestValidator validator;
  private final long view;

  private long lastOp;
  private long persistedOp;
  private long commitOp;
  private long applyRequestedOp;
  private long appliedOp;
  private long checksum;
  private long inFlightBytes;

  /** Entries appliedOp+1 .. lastOp. */
  private final LogWindow window;
  /** Entries admitted but not yet handed to storage (the batch being formed in this burst). */
  private final List<Entry> batch = new ArrayList<>();
  private int batchBytes;
  /** Who waits for the reply of each op not yet applied. */
  private final Map<Long, Object> waiters = new HashMap<>();
  /** Requests with an entry not yet applied, to attach retries to it. */
  private final Map<SessionKey, Long> pendingRequests = new HashMap<>();
  /** Writes waiting for room in the window. */
  private final ArrayDeque<Event.ClientRequest> queued = new ArrayDeque<>();
  /** Reads waiting for the applied number to reach their requiredOp. */
  private final PriorityQueue<PendingRead> pendingReads =
      new PriorityQueue<>((a, b) -> a.requiredOp != b.requiredOp
          ? Long.compare(a.requiredOp, b.requiredOp) : Long.compare(a.seq, b.seq));
  private long readSeq;
  private boolean intakePaused;

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
  }

  public ReplicaCore(CoreConfig config, RecoveredState recovered) {
    this.config = config;
    this.validator = new RequestValidator(config);
    this.view = recovered.view();
    this.appliedOp = recovered.appliedOp();
    this.applyRequestedOp = recovered.appliedOp();
    this.checksum = recovered.checksum();
    this.window = new LogWindow(appliedOp);
    for (Entry e : recovered.unappliedLog()) {
      window.append(e);
    }
    this.lastOp = window.last();
    // Everything in the local log survived a restart, so it is durable here. With one replica that is
    // a majority, hence committed; the first step applies it.
    this.persistedOp = lastOp;
    this.commitOp = config.replicaIds().size() == 1 ? lastOp : appliedOp;
    this.inFlightBytes = 0;
    if (config.replicaIds().size() != 1) {
      throw new UnsupportedOperationException(
          "replication to backups arrives with issue 3; configure a single replica for now");
    }
  }

  /** Steps one event at time nowNs, appending what to do to out. */
  public void step(Event event, long nowNs, Effects out) {
    if (event instanceof Event.ClientRequest r) {
      onClientRequest(r, nowNs, out);
    } else if (event instanceof Event.Persisted p) {
      onPersisted(p, out);
    } else if (event instanceof Event.Applied a) {
      onApplied(a, out);
    } else if (event instanceof Event.Tick) {
      onTick(nowNs, out);
    } else {
      throw new IllegalArgumentException("unknown event " + event);
    }
    checkInvariants();
  }

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
      case PUT, DELETE, COMPARE_AND_SET, BATCH -> onWrite(event, out);
      default -> {
        counters.invalid++;
        out.replies.add(new Effects.Reply(event.connectionId(), RequestValidator.refuse(request,
            Status.INVALID, "operation " + request.getOpCase() + " is not handled by the core")));
      }
    }
  }

  private void onRead(Event.ClientRequest event, long nowNs, Effects out) {
    counters.reads++;
    Request request = event.request();
    long required = request.getConsistency() == ReadConsistency.SEQUENTIAL
        ? request.getMinOp()
        : commitOp;
    if (appliedOp >= required) {
      out.reads.add(new Effects.Read(event.connectionId(), request));
      return;
    }
    if (pendingReads.size() >= config.maxQueuedRequests()) {
      counters.busy++;
      out.replies.add(new Effects.Reply(event.connectionId(),
          RequestValidator.refuse(request, Status.BUSY, "too many reads waiting (max_queued_requests "
              + config.maxQueuedRequests() + ")")));
      return;
    }
    pendingReads.add(new PendingRead(event.connectionId(), request, required,
        nowNs + config.readTimeoutNs(), readSeq++));
    out.nextTickNs = Math.min(out.nextTickNs, nowNs + config.readTimeoutNs());
  }

  private void onWrite(Event.ClientRequest event, Effects out) {
    counters.writes++;
    Request request = event.request();
    if (request.getClientId() != 0) {
      Long op = pendingRequests.get(new SessionKey(request.getClientId(), request.getRequestId()));
      if (op != null) {
        counters.duplicates++;
        addWaiter(op, new Waiter(event.connectionId(), request.getRequestId()));
        return;
      }
    }
    if (!queued.isEmpty() || windowFull()) {
      if (queued.size() >= config.maxQueuedRequests()) {
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

  private boolean windowFull() {
    return lastOp - commitOp >= config.maxInFlightOps() || inFlightBytes >= config.maxInFlightBytes();
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
    if (size > config.maxBatchBytes()) {
      counters.tooLarge++;
      out.replies.add(new Effects.Reply(event.connectionId(), RequestValidator.refuse(request,
          Status.TOO_LARGE, "the write's log entry has " + size + " bytes, more than max_batch_bytes "
              + config.maxBatchBytes())));
      return;
    }
    lastOp = entry.getOp();
    window.append(entry);
    inFlightBytes += size;
    addWaiter(lastOp, new Waiter(event.connectionId(), request.getRequestId()));
    if (request.getClientId() != 0) {
      pendingRequests.put(new SessionKey(request.getClientId(), request.getRequestId()), lastOp);
    }
    if (batchBytes + size > config.maxBatchBytes() || batch.size() >= config.maxBatchEntries()) {
      flushBatch(out);
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

  private void flushBatch(Effects out) {
    if (batch.isEmpty()) {
      return;
    }
    out.persist.addAll(batch);
    counters.batches++;
    batch.clear();
    batchBytes = 0;
  }

  private void onPersisted(Event.Persisted event, Effects out) {
    if (event.op() > lastOp) {
      throw new IllegalStateException("persisted " + event.op() + " beyond last op " + lastOp);
    }
    persistedOp = Math.max(persistedOp, event.op());
    // With one replica its own durable copy is the f+1 quorum (VR Revisited 4.1, step 5).
    advanceCommit(persistedOp, out);
  }

  private void advanceCommit(long newCommit, Effects out) {
    if (newCommit <= commitOp) {
      return;
    }
    for (long op = commitOp + 1; op <= newCommit; op++) {
      inFlightBytes -= window.get(op).getSerializedSize();
    }
    commitOp = newCommit;
    requestApply(out);
    admitQueued(out);
  }

  private void requestApply(Effects out) {
    for (long op = applyRequestedOp + 1; op <= commitOp; op++) {
      out.apply.add(window.get(op));
    }
    applyRequestedOp = commitOp;
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
        && lastOp - commitOp <= config.maxInFlightOps() / 2
        && inFlightBytes <= config.maxInFlightBytes() / 2) {
      intakePaused = false;
      out.pauseIntake = Boolean.FALSE;
    }
  }

  private void onApplied(Event.Applied event, Effects out) {
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
    window.releaseUpTo(appliedOp);
    while (!pendingReads.isEmpty() && pendingReads.peek().requiredOp() <= appliedOp) {
      PendingRead r = pendingReads.poll();
      out.reads.add(new Effects.Read(r.connectionId(), r.request()));
    }
  }

  private void onTick(long nowNs, Effects out) {
    flushBatch(out);
    if (applyRequestedOp < commitOp) {
      requestApply(out); // the recovered log after a restart
    }
    if (!pendingReads.isEmpty()) {
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
  }

  private void checkInvariants() {
    if (!(appliedOp <= applyRequestedOp && applyRequestedOp <= commitOp && commitOp <= lastOp
        && persistedOp <= lastOp && window.base() == appliedOp && window.last() == lastOp)) {
      throw new IllegalStateException("core invariant broken: " + this);
    }
  }

  public long view() {
    return view;
  }

  /** "primary" or "backup". */
  public String role() {
    return config.primaryOf(view) == config.replicaId() ? "primary" : "backup";
  }

  public int primaryId() {
    return config.primaryOf(view);
  }

  public long lastOp() {
    return lastOp;
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
    return "ReplicaCore{view=" + view + ", last=" + lastOp + ", persisted=" + persistedOp
        + ", commit=" + commitOp + ", applyRequested=" + applyRequestedOp + ", applied=" + appliedOp
        + ", window=(" + window.base() + "," + window.last() + "], queued=" + queued.size()
        + ", batch=" + batch.size() + "}";
  }
}
