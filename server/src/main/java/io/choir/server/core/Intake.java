package io.choir.server.core;

import io.choir.proto.CloseSession;
import io.choir.proto.Entry;
import io.choir.proto.LeaseExpire;
import io.choir.proto.RegisterSession;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Intake owns the primary's side of client writes (VR Revisited 4.1 steps 1-3, with group commit): the
 * flow-control window (entries logged but not committed, at most max_in_flight_ops and
 * max_in_flight_bytes), the writes queued while it is full (at most max_queued_requests, with client
 * intake paused until the window is half empty again), the batch of entries a burst is gathering for
 * one log write and as few PREPAREs as fit, and the clients waiting for each op's reply, found again by
 * (client id, request id) when a client retries a write still in flight. Building the entries and
 * putting them in the log is the core's; this part decides when and remembers who waits.
 */
final class Intake {
  private record Waiter(long connectionId, long requestId) {}

  private record SessionKey(long clientId, long requestId) {}

  private final CoreConfig config;
  private final List<Entry> batch = new ArrayList<>();
  private int batchBytes;
  /** The highest op handed to storage: above the persisted op, a log write (and its fsync) is under way. */
  private long flushedOp;
  /** Per op: one Waiter, or a List of them (retries of the same write wait with the first). */
  private final Map<Long, Object> waiters = new HashMap<>();
  /** The op of each write in flight that came with a client id. */
  private final Map<SessionKey, Long> pendingRequests = new HashMap<>();
  private final ArrayDeque<Event.ClientRequest> queued = new ArrayDeque<>();
  private boolean paused;
  /** Bytes of the entries logged and not committed (this view, at the primary). */
  private long inFlightBytes;

  Intake(CoreConfig config) {
    this.config = config;
  }

  /**
   * The log entry for write request at op in view, stamped with the replicated clock's timeMs. The
   * primary, not the client, sets a session's terms, so every replica applies the same ones.
   */
  static Entry entryFor(Request request, long op, long view, long timeMs, CoreConfig config) {
    Entry.Builder b = Entry.newBuilder()
        .setOp(op)
        .setView(view)
        .setClientId(request.getClientId())
        .setRequestId(request.getRequestId())
        .setFirstIncomplete(request.getFirstIncomplete())
        .setTimeMs(timeMs);
    switch (request.getOpCase()) {
      case PUT -> b.setPut(request.getPut());
      case DELETE -> b.setDelete(request.getDelete());
      case COMPARE_AND_SET -> b.setCompareAndSet(request.getCompareAndSet());
      case BATCH -> b.setBatch(request.getBatch());
      case REGISTER_SESSION -> b.setRegisterSession(RegisterSession.newBuilder()
          .setTimeoutMs(config.sessionTimeoutMs).setMaxSessions(config.maxClientSessions));
      case CLOSE_SESSION -> b.setCloseSession(CloseSession.getDefaultInstance());
      // The primary sets the shortest TTL it grants: twice its election timeout (docs/lease.md).
      case LEASE_GRANT -> b.setLeaseGrant(request.getLeaseGrant().toBuilder()
          .setMinTtlMs(2 * config.quorumTimeoutNs / 1_000_000L));
      case LEASE_KEEP_ALIVE -> b.setLeaseKeepAlive(request.getLeaseKeepAlive());
      case LEASE_REVOKE -> b.setLeaseRevoke(request.getLeaseRevoke());
      default -> throw new IllegalStateException("not a write: " + request.getOpCase());
    }
    return b.build();
  }

  /**
   * The log entry for the write event at op in view: as {@link #entryFor(Request, long, long, long,
   * CoreConfig)}, except that a LeaseRevoke from the lease expiry's own connection becomes a
   * LeaseExpire (no client can send one).
   */
  static Entry entryFor(Event.ClientRequest event, long op, long view, long timeMs, CoreConfig config) {
    Request request = event.request();
    Entry entry = entryFor(request, op, view, timeMs, config);
    if (event.connectionId() == Event.ClientRequest.LEASE_EXPIRY_CONNECTION
        && request.getOpCase() == Request.OpCase.LEASE_REVOKE) {
      return entry.toBuilder()
          .setLeaseExpire(LeaseExpire.newBuilder().setId(request.getLeaseRevoke().getId())).build();
    }
    return entry;
  }

  /**
   * When the write is a retry of one in flight (same client and request id), the client waits for that
   * op's reply: true. Writes without a client id are never matched.
   */
  boolean joinInFlight(Event.ClientRequest event) {
    Request request = event.request();
    if (request.getClientId() == 0) {
      return false;
    }
    Long op = pendingRequests.get(new SessionKey(request.getClientId(), request.getRequestId()));
    if (op == null) {
      return false;
    }
    addWaiter(op, new Waiter(event.connectionId(), request.getRequestId()));
    return true;
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

  /** True when a write must queue: others already wait, or the window is full with inFlightOps logged. */
  boolean mustQueue(long inFlightOps) {
    return !queued.isEmpty() || windowFull(inFlightOps);
  }

  /** Queues the write (or refuses it BUSY when the queue is full) and pauses client intake. */
  void queue(Event.ClientRequest event, Counters counters, Effects out) {
    if (queued.size() >= config.maxQueuedRequests) {
      counters.busy++;
      out.reply(event.connectionId(), RequestValidator.refuse(event.request(),
          Status.BUSY, "replica overloaded: " + queued.size() + " writes queued (max_queued_requests)"));
    } else {
      queued.add(event);
    }
    if (!paused) {
      paused = true;
      out.pauseIntake(true);
    }
  }

  /** The next queued write once the window (with inFlightOps logged) has room, or null. */
  Event.ClientRequest nextQueued(long inFlightOps) {
    return !queued.isEmpty() && !windowFull(inFlightOps) ? queued.poll() : null;
  }

  /** Resumes client intake once nothing is queued and the window (inFlightOps logged) is half empty. */
  void maybeResume(long inFlightOps, Effects out) {
    if (paused && queued.isEmpty()
        && inFlightOps <= config.maxInFlightOps / 2
        && inFlightBytes <= config.maxInFlightBytes / 2) {
      paused = false;
      out.pauseIntake(false);
    }
  }

  private boolean windowFull(long inFlightOps) {
    return inFlightOps >= config.maxInFlightOps || inFlightBytes >= config.maxInFlightBytes;
  }

  /** True when an entry of size bytes does not fit the batch (it is flushed first). */
  boolean batchFull(int size) {
    return batchBytes + size > config.maxBatchBytes || batch.size() >= config.maxBatchEntries;
  }

  /** entry (size bytes) of the event's write is in the log: it joins the batch and its client waits. */
  void admitted(Entry entry, int size, Event.ClientRequest event) {
    Request request = event.request();
    inFlightBytes += size;
    addWaiter(entry.getOp(), new Waiter(event.connectionId(), request.getRequestId()));
    if (request.getClientId() != 0) {
      pendingRequests.put(new SessionKey(request.getClientId(), request.getRequestId()), entry.getOp());
    }
    batch.add(entry);
    batchBytes += size;
  }

  boolean hasBatch() {
    return !batch.isEmpty();
  }

  /** The batch, handed to storage (and multicast): a log write is under way up to its last op. */
  List<Entry> takeBatch() {
    List<Entry> taken = new ArrayList<>(batch);
    flushedOp = batch.get(batch.size() - 1).getOp();
    batch.clear();
    batchBytes = 0;
    return taken;
  }

  /** True while a log write handed to storage is not durable yet (persistedOp below it). */
  boolean logWriteUnderWay(long persistedOp) {
    return flushedOp > persistedOp;
  }

  /** The log lost every op above op. */
  void truncatedAfter(long op) {
    flushedOp = Math.min(flushedOp, op);
  }

  /** An entry of size bytes committed: it leaves the window. */
  void committed(int size) {
    inFlightBytes -= size;
  }

  /** entry was applied with reply: its waiting clients get it. */
  void applied(Entry entry, Response reply, Effects out) {
    if (entry.getClientId() != 0) {
      pendingRequests.remove(new SessionKey(entry.getClientId(), entry.getRequestId()));
    }
    Object w = waiters.remove(entry.getOp());
    if (w instanceof Waiter single) {
      out.reply(single.connectionId(), reply);
    } else if (w != null) {
      @SuppressWarnings("unchecked")
      List<Waiter> list = (List<Waiter>) w;
      for (Waiter each : list) {
        out.reply(each.connectionId(), reply);
      }
    }
  }

  /**
   * The primary steps down: every waiting client gets unknown (its entry was logged and may still
   * commit) and every queued one hint (never logged), each with its request id.
   */
  void answerAll(Response.Builder unknown, Response.Builder hint, Effects out) {
    for (Map.Entry<Long, Object> w : waiters.entrySet()) {
      if (w.getValue() instanceof Waiter single) {
        out.reply(single.connectionId(), unknown.setRequestId(single.requestId()).build());
      } else {
        @SuppressWarnings("unchecked")
        List<Waiter> list = (List<Waiter>) w.getValue();
        for (Waiter each : list) {
          out.reply(each.connectionId(), unknown.setRequestId(each.requestId()).build());
        }
      }
    }
    for (Event.ClientRequest q : queued) {
      out.reply(q.connectionId(),
          hint.setRequestId(q.request().getRequestId()).build());
    }
  }

  /** Forgets waiters, queued writes and the batch, and resumes client intake if paused. */
  void clear(Effects out) {
    waiters.clear();
    queued.clear();
    batch.clear();
    batchBytes = 0;
    if (paused) {
      paused = false;
      out.pauseIntake(false);
    }
  }

  /** Becoming primary: the window starts empty, and the entries above commit are counted in again. */
  void startView() {
    inFlightBytes = 0;
    pendingRequests.clear();
  }

  /** Becoming primary: entry (not yet sent to apply) is in the log again, in flight when uncommitted. */
  void relogged(Entry entry, boolean uncommitted) {
    if (uncommitted) {
      inFlightBytes += entry.getSerializedSize();
    }
    if (entry.getClientId() != 0) {
      pendingRequests.put(new SessionKey(entry.getClientId(), entry.getRequestId()), entry.getOp());
    }
  }

  int queued() {
    return queued.size();
  }

  /** The op before the batch's first entry (the last op handed to storage and sent), or lastOp without a batch. */
  long beforeBatch(long lastOp) {
    return batch.isEmpty() ? lastOp : batch.get(0).getOp() - 1;
  }

  int batchSize() {
    return batch.size();
  }
}
