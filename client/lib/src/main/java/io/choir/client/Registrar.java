package io.choir.client;

import io.choir.proto.CloseSession;
import io.choir.proto.RegisterSession;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Registrar carries out the session requests of the {@link Dispatcher}, as {@link Session} decides
 * them: it sends RegisterSession (a normal call under the client instance's id, with its own request
 * id from the same sequence, the same retries and deadline, but no in-flight slot), takes the new
 * session's id from the answer (Response.session_id: the replicas assign it), releases or fails the
 * writes waiting for it, handles SESSION_EXPIRED answers, and sends CloseSession (under the session's
 * id) when the client closes.
 *
 * <p>How many sessions one registration can open: its retries keep its request id, so the primary
 * joins a retry to the entry while that is in flight; only a retry that arrives after the entry
 * committed, its answer lost (a connection lost or an attempt timed out after the commit), gets an
 * entry of its own and opens another session. So a registration call opens at most one session per
 * attempt that lost its answer after its entry committed, bounded by the attempts that fit in its
 * request timeout (with the defaults, 5 s and retries backing off to 250 ms: a few dozen at the very
 * worst, one or two across a failover); the one whose answer arrives is used, the others expire
 * unused after the replicas' session timeout, each holding one table row meanwhile. The replicas'
 * max_sessions bounds them all together: beyond it registrations are refused BUSY.
 */
final class Registrar {
  private static final Logger log = LoggerFactory.getLogger(Registrar.class);

  /** Times one write re-registers after SESSION_EXPIRED before it gives up (not executed). */
  static final int MAX_SESSION_RENEWALS = 3;

  private static final Request REGISTER = Request.newBuilder()
      .setRegisterSession(RegisterSession.getDefaultInstance()).build();
  private static final Request CLOSE = Request.newBuilder()
      .setCloseSession(CloseSession.getDefaultInstance()).build();

  private final Dispatcher dispatcher;
  private final Session session;
  private final Router router;
  private final long requestTimeoutNs;
  private final AtomicBoolean warnedUnsupported = new AtomicBoolean();

  Registrar(Dispatcher dispatcher, Session session, Router router, long requestTimeoutNs) {
    this.dispatcher = dispatcher;
    this.session = session;
    this.router = router;
    this.requestTimeoutNs = requestTimeoutNs;
  }

  /** Sends a RegisterSession; the session gate asked for it (one at a time). */
  void register() {
    Call registration =
        dispatcher.submitInternal(REGISTER, Call.Kind.REGISTER, requestTimeoutNs, session.instanceId());
    registration.future.whenComplete((response, error) -> onRegistered(registration, response, error));
  }

  private void onRegistered(Call registration, Response response, Throwable error) {
    Status status = response == null ? null : response.getStatus();
    if (status == Status.OK && response.getSessionId() != 0) {
      log.debug("session {} registered", Long.toUnsignedString(response.getSessionId()));
      for (Call waiting : session.registered(response.getSessionId())) {
        dispatcher.sendAttempt(waiting, router.guess());
      }
      return;
    }
    if (status == Status.INVALID) {
      // Only a server from before sessions answers a registration INVALID (its state machine knows
      // no such command); it executes writes without one, as before.
      if (warnedUnsupported.compareAndSet(false, true)) {
        log.warn("the replicas do not support client sessions ({}); writing without a session", response.getError());
      }
      for (Call waiting : session.unsupported()) {
        dispatcher.sendAttempt(waiting, router.guess());
      }
      return;
    }
    ChoirException failure;
    boolean retry = false;
    if (status == Status.OK) {
      // OK without a session id: replicas from before the log assigned session ids (they opened a
      // session under this instance's id, which this client no longer writes under).
      failure = new UnavailableException("the replicas opened a session without answering its id (a server"
          + " version from before server-assigned session ids: upgrade the replicas); the request was not"
          + " executed");
    } else if (status == Status.PERMISSION_DENIED) {
      failure = new PermissionDeniedException("the replicas refused to open a session for this client's writes ("
          + response.getError() + "); the request was not executed", -1);
    } else if (error != null && (Futures.unwrap(error) instanceof PermissionDeniedException
        || Futures.unwrap(error) instanceof TlsException)) {
      // The connection was refused for good (token, TLS): registering again cannot help.
      failure = (ChoirException) Futures.unwrap(error);
    } else if (status == Status.BUSY) {
      failure = new BusyException("the replicas refused to open a session for this client ("
          + response.getError() + "); the request was not executed");
    } else {
      String why = error != null ? String.valueOf(Futures.unwrap(error).getMessage())
          : "answered " + status + (response.getError().isEmpty() ? "" : ": " + response.getError());
      failure = new UnavailableException("could not register this client's session (" + why
          + "); the request was not executed", error != null ? Futures.unwrap(error) : null);
      retry = error != null && !dispatcher.isClosed();
    }
    List<Call> failedWrites = session.registrationFailed(retry);
    if (failedWrites == null) {
      log.debug("session registration failed ({}); registering again for the writes still waiting", failure.getMessage());
      register();
      return;
    }
    for (Call waiting : failedWrites) {
      dispatcher.finish(waiting, null, failure);
    }
  }

  /**
   * SESSION_EXPIRED: this attempt was not executed, and the session it was sent in is gone. A write
   * none of whose attempts may have executed re-registers (a new session, under a new id from the
   * replicas) and is resent transparently (same request id: the new session has never seen it);
   * otherwise its outcome is unknown.
   */
  void onSessionExpired(Call call, Link link, Response response) {
    boolean unknown;
    int renewals;
    Endpoint target;
    synchronized (call) {
      if (call.isFinished() || call.link != link) {
        return;
      }
      call.attempt++;
      Dispatcher.endAttempt(call);
      call.lastError = new ChoirException(call.target + " answered SESSION_EXPIRED"
          + (response.getError().isEmpty() ? "" : ": " + response.getError()));
      unknown = call.outcomeUnknown;
      renewals = ++call.sessionRenewals;
      target = call.target;
    }
    log.debug("request {}: {} answered SESSION_EXPIRED (outcome unknown before: {})", call.requestId, target, unknown);
    if (call.kind != Call.Kind.APPLICATION) {
      dispatcher.finish(call, response, null); // CloseSession: already gone; RegisterSession: a broken server
      return;
    }
    session.expired(call);
    if (unknown) {
      dispatcher.finish(call, null, Failures.sessionExpired(call));
    } else if (renewals > MAX_SESSION_RENEWALS) {
      dispatcher.finish(call, null, new UnavailableException(call.describe() + " found this client's session"
          + " expired " + renewals + " times in a row; it was not executed (" + call.lastError.getMessage() + ")"));
    } else {
      dispatcher.sendAttempt(call, target); // the session gate parks it and registers again
    }
  }

  /**
   * Ends this client's session, if one may be open (best effort, within budgetNs): the future
   * completes, never exceptionally, when the CloseSession is answered or has failed.
   */
  CompletableFuture<Void> closeSession(long budgetNs) {
    long sessionId = session.sessionId();
    if (sessionId == 0) {
      // None open, as far as this client knows (one a lost registration answer opened expires unused).
      return CompletableFuture.completedFuture(null);
    }
    Call close = dispatcher.submitInternal(CLOSE, Call.Kind.CLOSE, budgetNs, sessionId);
    return close.future.handle((response, error) -> {
      if (response != null && (response.getStatus() == Status.OK || response.getStatus() == Status.SESSION_EXPIRED)) {
        session.closed(sessionId);
        log.debug("session {} closed", Long.toUnsignedString(sessionId));
      } else {
        log.debug("could not close session {}: {}", Long.toUnsignedString(sessionId),
            error != null ? error.toString() : response.getStatus());
      }
      return null;
    });
  }
}
