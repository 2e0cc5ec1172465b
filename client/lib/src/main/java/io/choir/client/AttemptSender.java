package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.proto.Request;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongSupplier;

/**
 * AttemptSender sends one attempt of a call to one endpoint: a write passes the session gate first
 * (it is parked while the session registers, or fails when the session expired), then the link to the
 * target opens and the request goes out with its ids: the client id, the request id, the
 * first_incomplete of {@link RequestIds}, and for a sequential read the floor min_op (the highest op
 * this client has seen). What a failed connect or write means is {@link Failover}'s to decide;
 * finishing a call is the {@link Dispatcher}'s.
 */
final class AttemptSender {
  private final Dispatcher dispatcher;
  private final Session session;
  private final Registrar registrar;
  private final Links links;
  private final Failover failover;
  private final RequestIds ids;
  private final ClientScheduler scheduler;
  private final LongSupplier highestOpSeen;
  private final int maxFrameBytes;

  AttemptSender(Dispatcher dispatcher, Session session, Registrar registrar, Links links, Failover failover,
      RequestIds ids, ClientScheduler scheduler, LongSupplier highestOpSeen, int maxFrameBytes) {
    this.dispatcher = dispatcher;
    this.session = session;
    this.registrar = registrar;
    this.links = links;
    this.failover = failover;
    this.ids = ids;
    this.scheduler = scheduler;
    this.highestOpSeen = highestOpSeen;
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Starts the call's next attempt at target, unless the call finished or must wait for its session. */
  void send(Call call, Endpoint target) {
    if (call.isFinished()) {
      return;
    }
    if (call.needsSession()) {
      switch (session.admit(call)) {
        case SEND -> { }
        case WAIT -> {
          park(call);
          return;
        }
        case REGISTER -> {
          park(call);
          registrar.register();
          return;
        }
        case EXPIRED -> {
          dispatcher.finish(call, null, Failures.sessionExpired(call));
          return;
        }
      }
    }
    int attempt;
    synchronized (call) {
      if (call.isFinished()) {
        return;
      }
      attempt = ++call.attempt;
      call.target = target;
      call.link = null;
      call.delivered = false;
      call.retryTask = null;
      call.attemptStartNs = scheduler.nanoTime();
    }
    links.link(target).whenComplete((link, error) -> {
      if (error != null) {
        failover.onAttemptFailed(call, attempt, error, false);
      } else {
        write(call, attempt, link);
      }
    });
  }

  private static void park(Call call) {
    synchronized (call) {
      call.attemptStartNs = 0;
      call.lastError = new UnavailableException("the write waited for this client's session to be registered");
    }
  }

  private void write(Call call, int attempt, Link link) {
    Request request = call.base.toBuilder()
        .setClientId(call.clientId)
        .setRequestId(call.requestId)
        .setFirstIncomplete(ids.firstIncomplete())
        .setMinOp(call.sequentialRead ? highestOpSeen.getAsLong() : 0)
        .build();
    if (request.getSerializedSize() > maxFrameBytes) {
      dispatcher.finish(call, null, Failures.tooLarge(request.getSerializedSize(), maxFrameBytes));
      return;
    }
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      call.link = link;
      // From here on the request may reach the replica, even if this attempt is abandoned before the
      // write completes: only a failed write proves it did not.
      call.delivered = true;
      // Added under the call's lock so finish() either sees the link and removes the call, or this
      // block sees the call finished.
      link.awaiting.add(call);
    }
    CompletableFuture<Void> written;
    try {
      written = link.connection().write(request);
    } catch (RuntimeException e) {
      written = CompletableFuture.failedFuture(e);
    }
    written.whenComplete((v, error) -> {
      if (error != null) {
        failover.onAttemptFailed(call, attempt, Futures.unwrap(error), true);
      }
    });
  }
}
