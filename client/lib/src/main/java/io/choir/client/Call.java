package io.choir.client;

import io.choir.proto.Request;
import io.choir.proto.Status;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Call is the state of one client request across its attempts: the same request id is sent to one
 * endpoint after another until a final answer arrives or the deadline passes. Each attempt has a
 * number; events of an attempt the call has moved past (a late write failure, a closed channel) are
 * recognised by it and ignored, so one request never has two live attempts.
 *
 * <p>The mutable fields are guarded by the Call's monitor; {@link #finished} and {@link #slotHeld} are
 * atomics because finishing and releasing the in-flight slot must happen exactly once whichever thread
 * (event loop, timer, caller, close) gets there first.
 */
final class Call {
  final Request base;
  final boolean sequentialRead;
  /** The endpoint a status request must ask (no failover, no redirect), or null for normal calls. */
  final Endpoint pinned;
  final long deadlineNs;
  final EventLoop timerLoop;
  final CompletableFuture<io.choir.proto.Response> future = new CompletableFuture<>();
  final AtomicBoolean finished = new AtomicBoolean();
  final AtomicBoolean slotHeld = new AtomicBoolean();

  volatile long requestId;
  volatile boolean started;

  // Guarded by this.
  int attempt;
  int retries;
  int immediateRedirects;
  Endpoint target;
  /** The channel the current attempt was written to, or null between attempts. */
  Channel channel;
  /** The current attempt's bytes reached the socket and no answer came yet. */
  boolean delivered;
  /** An earlier attempt reached a replica and its connection was lost before an answer. */
  boolean outcomeUnknown;
  /** The last refusal a replica answered (BUSY, UNAVAILABLE, NOT_PRIMARY), or null. */
  Status lastRefusal;
  Throwable lastError;
  ScheduledFuture<?> deadlineTask;
  ScheduledFuture<?> retryTask;

  Call(Request base, boolean sequentialRead, Endpoint pinned, long deadlineNs, EventLoop timerLoop) {
    this.base = base;
    this.sequentialRead = sequentialRead;
    this.pinned = pinned;
    this.deadlineNs = deadlineNs;
    this.timerLoop = timerLoop;
  }

  boolean isFinished() {
    return finished.get();
  }

  boolean isWrite() {
    return switch (base.getOpCase()) {
      case PUT, DELETE, COMPARE_AND_SET, BATCH -> true;
      default -> false;
    };
  }
}
