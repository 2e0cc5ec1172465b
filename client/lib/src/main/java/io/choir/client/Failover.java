package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Failover decides what the end of a failed attempt means and where the call goes next: a failed
 * connect or write, a lost connection, an attempt timeout (a silent replica), a refusal (NOT_PRIMARY,
 * UNAVAILABLE, BUSY) with or without a hint, a notice about the connection. It records on the call
 * whether the attempt may have executed, asks the {@link Router} for the next endpoint, and resends at
 * once (a redirect, an attempt timeout) or after the backoff ({@link CallTimers#scheduleRetry}).
 */
final class Failover {
  private static final Logger log = LoggerFactory.getLogger(Failover.class);

  /** Redirects a call follows without pausing before it starts backing off. */
  static final int MAX_IMMEDIATE_REDIRECTS = 3;

  private final Dispatcher dispatcher;
  private final Router router;
  private final CallTimers timers;
  private final ClientScheduler scheduler;
  private final long attemptTimeoutMs;

  Failover(Dispatcher dispatcher, Router router, CallTimers timers, ClientScheduler scheduler, long attemptTimeoutMs) {
    this.dispatcher = dispatcher;
    this.router = router;
    this.timers = timers;
    this.scheduler = scheduler;
    this.attemptTimeoutMs = attemptTimeoutMs;
  }

  /**
   * A connect or a write failed, or the link carrying the attempt closed. writeFailed: the write itself
   * failed, so the replica never got the request whole from this attempt.
   */
  void onAttemptFailed(Call call, int attempt, Throwable cause, boolean writeFailed) {
    Endpoint failed;
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      call.attempt++; // any other event of this attempt is stale from now on
      if (call.delivered && !writeFailed) {
        call.outcomeUnknown = true;
      }
      Dispatcher.endAttempt(call);
      call.lastError = cause;
      failed = call.target;
    }
    log.debug("request {} to {} failed: {}", call.requestId, failed, cause.toString());
    if (cause instanceof ConnectRefusal refusal) {
      // TLS failed or the token was refused: no request went out on that connection, and retrying
      // cannot fix a configuration. An earlier attempt, to another replica, may still have executed.
      dispatcher.finish(call, null, Failures.refusedForGood(call, refusal.failure()));
      return;
    }
    if (call.pinned != null) {
      dispatcher.finish(call, null, cause instanceof ChoirException ce ? ce
          : new UnavailableException(failed + " did not answer: " + cause, cause));
      return;
    }
    router.onFailure(failed);
    timers.scheduleRetry(call, failed);
  }

  /**
   * The attempt got no answer within the attempt timeout: move on at once (issue 9 item 2i). The link
   * it was written on is closed (abortively), so what it still queues for the silent replica is
   * discarded rather than delivered after the fault ends, and its other calls move on too.
   *
   * <p>Unless the replica is slow rather than silent: when a final answer to another request arrived
   * on the same link since this attempt started, the replica is making progress (overloaded, not
   * paused, cut off or without a quorum, none of which lets it answer anything final), and leaving it
   * would move its whole load onto backups that only redirect back. The call waits one more attempt
   * timeout.
   */
  void onAttemptTimeout(Call call, int attempt, long nowNs) {
    Endpoint failed;
    Link link;
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      failed = call.target;
      link = call.link;
      if (link != null && link.lastFinalAnswerNs - call.attemptStartNs > 0) {
        log.debug("request {}: {} is slow but still answering; waiting on", call.requestId, failed);
        call.attemptStartNs = nowNs;
        return;
      }
    }
    router.suspect(failed, nowNs);
    Endpoint next = router.retryTarget(failed);
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      if (next.equals(failed)) {
        call.attemptStartNs = nowNs; // the only endpoint: nowhere to go, keep waiting on it
        return;
      }
      call.attempt++;
      if (call.delivered) {
        call.outcomeUnknown = true; // it was written: the replica may execute it when it resumes
      }
      Dispatcher.endAttempt(call);
      call.lastError = new ChoirException(failed + " did not answer within the attempt timeout of "
          + attemptTimeoutMs + " ms");
    }
    log.debug("request {}: no answer from {} within {} ms, trying {}", call.requestId, failed,
        attemptTimeoutMs, next);
    if (link != null) {
      link.close();
    }
    dispatcher.sendAttempt(call, next);
  }

  void onRefusal(Call call, Link link, Response response) {
    Endpoint failed;
    synchronized (call) {
      if (response.getOutcomeUnknown() && !call.isFinished()) {
        // Even from an attempt we moved past: that replica logged the request, it may still commit.
        call.outcomeUnknown = true;
      }
      if (call.isFinished() || call.link != link) {
        return; // a refusal of an attempt already given up on
      }
      call.attempt++;
      Dispatcher.endAttempt(call); // answered: this attempt did not execute (unless outcome_unknown said otherwise)
      call.lastRefusal = response.getStatus();
      call.lastError = new ChoirException(call.target + " answered " + response.getStatus()
          + (response.getError().isEmpty() ? "" : ": " + response.getError()));
      failed = call.target;
    }
    log.debug("request {} refused by {}: {} view {} hint '{}'{}", call.requestId, failed, response.getStatus(),
        response.getView(), response.getPrimaryAddress(), response.getOutcomeUnknown() ? " (outcome unknown)" : "");
    if (call.pinned != null) {
      dispatcher.finish(call, null, Responses.refusal(response, failed));
      return;
    }
    Endpoint hint = response.getStatus() == Status.BUSY
        ? null : router.onRefusal(failed, response.getPrimaryAddress(), response.getView(), scheduler.nanoTime());
    if (hint == null) {
      if (response.getStatus() == Status.BUSY) {
        router.onFailure(failed);
      }
      timers.scheduleRetry(call, failed);
      return;
    }
    boolean immediate;
    synchronized (call) {
      immediate = ++call.immediateRedirects <= MAX_IMMEDIATE_REDIRECTS;
    }
    log.debug("request {}: {} says the primary is {} (view {})", call.requestId, failed, hint, response.getView());
    if (immediate) {
      dispatcher.sendAttempt(call, hint);
    } else {
      timers.scheduleRetry(call, failed);
    }
  }

  /**
   * A response with request id 0 is about the connection, not a request: the server refused it (too
   * many connections) or refused a frame it could not read, and closes the connection next. A frame
   * over the server's max_frame_bytes cannot be matched to its id, but the largest request awaiting an
   * answer on this connection is at least as large as the refused frame, so it is certainly too large:
   * it fails with TooLargeException instead of being retried (and killing the connection) until its
   * timeout. The others on the connection are retried when it closes.
   */
  void onConnectionNotice(Link link, Response response) {
    log.warn("{} refused the connection: {} {}", link, response.getStatus(), response.getError());
    if (response.getStatus() == Status.PERMISSION_DENIED) {
      // A TLS port answering a plaintext client: it read none of the requests, and none can succeed.
      link.readNothing = true;
      for (Call call : new ArrayList<>(link.awaiting)) {
        dispatcher.finish(call, null, Failures.refusedForGood(call, new PermissionDeniedException(link
            + " refused the connection: " + response.getError() + "; the request was not executed", -1)));
      }
      return;
    }
    if (response.getStatus() != Status.TOO_LARGE) {
      return;
    }
    Call largest = null;
    for (Call call : link.awaiting) {
      if (largest == null || call.base.getSerializedSize() > largest.base.getSerializedSize()) {
        largest = call;
      }
    }
    if (largest != null) {
      dispatcher.finish(largest, null, new TooLargeException(link + " refused the request frame: " + response.getError()));
    }
  }

  /** A link's connection closed: its unanswered attempts move on. */
  void onLinkClosed(Link link) {
    List<Call> lost = new ArrayList<>(link.awaiting);
    link.awaiting.clear();
    ClosedChannelException cause = new ClosedChannelException();
    for (Call call : lost) {
      int attempt;
      synchronized (call) {
        if (call.link != link) {
          continue;
        }
        attempt = call.attempt;
      }
      // On a connection whose replica read nothing, no attempt reached it whole: as if its write failed.
      onAttemptFailed(call, attempt, new UnavailableException("connection to " + link + " lost", cause),
          link.readNothing);
    }
  }
}
