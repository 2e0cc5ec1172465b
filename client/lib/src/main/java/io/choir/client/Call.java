package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Call is the state of one client request across its attempts: the same request id is sent to one
 * endpoint after another until a final answer arrives or the deadline passes. Each attempt has a
 * number; events of an attempt the call has moved past (a late write failure, a closed connection, a
 * refusal) are recognised by it and ignored, so one request never has two live attempts. (A late final
 * answer is still accepted: the replicas execute an id once and save its reply.)
 *
 * <p>The mutable fields are guarded by the Call's monitor unless noted; {@link #finished} and
 * {@link #slotHeld} are atomics because finishing and releasing the in-flight slot must happen exactly
 * once whichever thread (event loop, timer, caller, close) gets there first.
 */
final class Call {
  /** What the call is for: an application request, or one of the dispatcher's own session requests. */
  enum Kind {
    APPLICATION,
    /** RegisterSession: takes no in-flight slot and passes no session gate. */
    REGISTER,
    /** CloseSession, sent by close(): takes no slot and passes no gate. */
    CLOSE
  }

  final Request base;
  final Kind kind;
  final boolean sequentialRead;
  /** The endpoint a status request must ask (no failover, no redirect), or null for normal calls. */
  final Endpoint pinned;
  final long deadlineNs;
  /** The call's whole budget (the request timeout, or the shorter one of a CloseSession). */
  final long budgetMs;
  final CompletableFuture<Response> future = new CompletableFuture<>();
  final AtomicBoolean finished = new AtomicBoolean();
  final AtomicBoolean slotHeld = new AtomicBoolean();

  volatile long requestId;
  volatile boolean started;
  /**
   * An earlier attempt may have executed: it was written and lost its connection or timed out without
   * an answer, or a replica answered outcome_unknown. Written under the call's lock, read by the session
   * gate without it.
   */
  volatile boolean outcomeUnknown;
  /** The session generation the call was last sent in (0: never sent); written by the session gate. */
  volatile long sessionGeneration;
  /** The client id the call's next attempt carries (set by the session gate for writes, at start otherwise). */
  volatile long clientId;

  // Guarded by this.
  int attempt;
  int retries;
  int immediateRedirects;
  int sessionRenewals;
  Endpoint target;
  /** The link the current attempt was written to, or null between attempts. */
  Link link;
  /** The current attempt was written (it may reach the replica) and no answer came yet. */
  boolean delivered;
  /** When the current attempt started, for the attempt timeout; 0 between attempts. */
  long attemptStartNs;
  /** The last refusal a replica answered (BUSY, UNAVAILABLE, NOT_PRIMARY), or null. */
  Status lastRefusal;
  Throwable lastError;
  /** The one timer of the call: fires for the attempt timeout and for the deadline. */
  ClientScheduler.Timer timer;
  ClientScheduler.Timer retryTask;

  Call(Request base, Kind kind, boolean sequentialRead, Endpoint pinned, long startNs, long budgetNs) {
    this.base = base;
    this.kind = kind;
    this.sequentialRead = sequentialRead;
    this.pinned = pinned;
    this.deadlineNs = startNs + budgetNs;
    this.budgetMs = TimeUnit.NANOSECONDS.toMillis(budgetNs);
  }

  boolean isFinished() {
    return finished.get();
  }

  boolean isWrite() {
    return switch (base.getOpCase()) {
      case PUT, DELETE, COMPARE_AND_SET, BATCH, MEMBER_CHANGE, REGISTER_SESSION, CLOSE_SESSION,
          LEASE_GRANT, LEASE_KEEP_ALIVE, LEASE_REVOKE -> true;
      default -> false;
    };
  }

  /**
   * Application writes (membership changes too: their saved replies answer their retries) run only
   * inside a registered session; reads and session requests need none.
   */
  boolean needsSession() {
    return kind == Kind.APPLICATION && switch (base.getOpCase()) {
      case PUT, DELETE, COMPARE_AND_SET, BATCH, MEMBER_CHANGE, LEASE_GRANT, LEASE_KEEP_ALIVE, LEASE_REVOKE -> true;
      default -> false;
    };
  }

  String describe() {
    return "request " + requestId + " (" + base.getOpCase() + ")";
  }
}
