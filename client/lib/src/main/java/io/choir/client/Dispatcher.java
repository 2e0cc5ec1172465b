package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.client.spi.ClientTransport;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dispatcher coordinates a client's calls from submission to finish: it owns the in-flight slots, starts
 * calls, hands each response to its call and finishes calls exactly once. Its parts:
 * {@link RequestIds} (the request ids, the in-flight set behind {@code first_incomplete}, the call of
 * each id), {@link AttemptSender} (one attempt: the session gate, the link, the request frame),
 * {@link Session} (the session gate) and {@link Registrar} (the session requests), {@link Failover}
 * (what a failed attempt means, where the call goes next), {@link Router} (the leader guess, views,
 * suspects), {@link CallTimers} (deadline, attempt timeout, backoff), {@link Links} (the connections),
 * {@link Failures} (the exceptions and their promises). The public clients only build requests and map
 * responses. Time and connections come
 * from the two ports ({@link ClientScheduler}, {@link ClientTransport}): Netty and the system clock in
 * production, a simulated clock and network in the deterministic simulator, where everything runs in one
 * thread (no lock is held while calling out, and slots are passed on in a loop, not by recursion).
 *
 * <p>Exactly-once (Raft thesis 6.3; RIFL, Lee et al. 2015): a request keeps its id across every retry,
 * and every request carries the lowest id this client still waits for, so the replicas can keep one
 * saved reply per outstanding id and forget the rest (see {@link RequestIds}). Writes run inside
 * a session, registered lazily before the first write, and carry its id, which the replicas assign;
 * registrations and reads carry the client instance's id (see {@link Session}).
 *
 * <p>Routing: NOT_PRIMARY with a hint the {@link Router} accepts resends at once (up to
 * {@link Failover#MAX_IMMEDIATE_REDIRECTS} times a call, then with backoff, so two replicas naming each other
 * during a view change cannot spin a call). A lost connection, a failed connect, a refusal without a
 * usable hint and BUSY retry the same request elsewhere after {@link Backoff}. An attempt without an
 * answer within the attempt timeout moves on at once to the next endpoint (fast failover from a paused
 * or cut-off primary). OK, NOT_FOUND, CAS_FAILED, TOO_LARGE, INVALID and PERMISSION_DENIED are final; a
 * connect refused for good (TLS failed, token refused: {@link ConnectRefusal}) ends the call at once.
 *
 * <p>What a failed call promises: an attempt that was written and then lost (connection closed, attempt
 * timeout) or refused with outcome_unknown may have executed; such a call never ends in
 * UnavailableException or BusyException ("not executed"), only in ChoirTimeoutException or
 * SessionExpiredException (outcome unknown).
 */
final class Dispatcher {
  private static final Logger log = LoggerFactory.getLogger(Dispatcher.class);

  /**
   * A call that gets its in-flight slot with less than 1/MIN_SEND_BUDGET_DIVISOR of the request timeout
   * left fails with BusyException instead of being sent: with FIFO slots and one timeout for all calls,
   * a waiter otherwise always gets its slot just before its deadline, and sending it then would turn
   * overload into "outcome unknown" timeouts.
   */
  static final int MIN_SEND_BUDGET_DIVISOR = 10;
  /** Most time close() spends on CloseSession: closing must not hang on a cluster that is down. */
  static final long CLOSE_SESSION_BUDGET_MS = 1_000;

  private final ClientConfig config;
  private final long requestTimeoutNs;
  private final ClientScheduler scheduler;
  private final ClientTransport transport;
  private final Links links;
  private final Router router;
  private final Session session;
  private final RequestIds ids = new RequestIds();
  private final AtomicLong highestOpSeen = new AtomicLong();
  private final InFlightLimiter limiter;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Registrar registrar;
  private final CallTimers timers;
  private final Failover failover;
  private final AttemptSender sender;
  private final CompletableFuture<Void> closeDone = new CompletableFuture<>();

  /**
   * @param instanceId this client instance's id (see {@link Session#instanceId}): not 0, and with
   *     its top bit set, so that it never equals a session id (an op number, below 2^63)
   */
  Dispatcher(ClientConfig config, long instanceId, ClientScheduler scheduler, ClientTransport transport) {
    if (instanceId >= 0) {
      throw new IllegalArgumentException("a client instance id has its top bit set: " + instanceId);
    }
    this.config = config;
    this.session = new Session(instanceId);
    this.requestTimeoutNs = TimeUnit.MILLISECONDS.toNanos(config.requestTimeoutMs());
    this.scheduler = scheduler;
    this.transport = transport;
    this.limiter = new InFlightLimiter(config.maxInFlight());
    this.router = new Router(config.endpoints(), TimeUnit.MILLISECONDS.toNanos(config.attemptTimeoutMs()),
        () -> this.scheduler.nanoTime());
    this.registrar = new Registrar(this, session, router, requestTimeoutNs);
    this.timers = new CallTimers(this, scheduler, router, config.random(), config.attemptTimeoutMs());
    this.failover = new Failover(this, router, timers, scheduler, config.attemptTimeoutMs());
    this.links = new Links(transport, this);
    this.sender = new AttemptSender(this, session, registrar, links, failover, ids, scheduler, highestOpSeen::get,
        config.maxFrameBytes());
  }

  boolean isClosed() {
    return closed.get();
  }

  /** This client instance's id: the client_id of its registrations (see Session). */
  long clientId() {
    return session.instanceId();
  }

  /** The id of the current session, as the replicas assigned it, or 0 when none is registered. */
  long sessionId() {
    return session.sessionId();
  }

  long highestOpSeen() {
    return highestOpSeen.get();
  }

  List<Endpoint> endpoints() {
    return config.endpoints();
  }

  /** The client's clock and timers (the membership catch-up polls on them). */
  ClientScheduler scheduler() {
    return scheduler;
  }

  Session.State sessionState() {
    return session.state();
  }

  /**
   * Sends base (an operation without ids) and completes with the final response: OK, NOT_FOUND,
   * CAS_FAILED, TOO_LARGE or INVALID (or an unknown status from a newer server). Completes
   * exceptionally with ChoirTimeoutException, SessionExpiredException, UnavailableException or
   * BusyException. A pinned call asks only that endpoint, once, and fails with its refusal.
   */
  CompletableFuture<Response> submit(Request base, boolean sequentialRead, Endpoint pinned) {
    if (closed.get()) {
      return CompletableFuture.failedFuture(new UnavailableException("client closed"));
    }
    if (base.getSerializedSize() > config.maxFrameBytes()) {
      return CompletableFuture.failedFuture(Failures.tooLarge(base.getSerializedSize(), config.maxFrameBytes()));
    }
    Call call = new Call(base, Call.Kind.APPLICATION, sequentialRead, pinned, scheduler.nanoTime(), requestTimeoutNs);
    timers.arm(call);
    if (call.isFinished()) {
      return call.future;
    }
    if (limiter.acquireOrWait(call)) {
      if (!start(call)) {
        releaseSlot();
      }
    } else if (closed.get() && limiter.remove(call)) {
      finish(call, null, new UnavailableException("client closed"));
    }
    return call.future;
  }

  /**
   * Sends one of the dispatcher's own session requests under clientId (the instance's id for a
   * registration, the session's for a close). It takes no in-flight slot (a registration must not
   * wait behind the writes that wait for it), so at most maxInFlight + 1 requests are out.
   */
  Call submitInternal(Request base, Call.Kind kind, long budgetNs, long clientId) {
    Call call = new Call(base, kind, false, null, scheduler.nanoTime(), budgetNs);
    call.clientId = clientId;
    timers.arm(call);
    if (!call.isFinished()) {
      start(call);
    }
    return call;
  }

  /**
   * Gives call, which was just handed an in-flight slot (or is internal), its id and sends the first
   * attempt. Returns false when the call gave the slot straight back (it was already finished, or is
   * refused now); the caller then passes the slot on, in a loop rather than by recursion, so a long
   * queue of expiring waiters cannot overflow the stack.
   */
  private boolean start(Call call) {
    boolean internal = call.kind != Call.Kind.APPLICATION;
    ChoirException refusal = null;
    if (!internal) {
      call.slotHeld.set(true);
      long remainingNs = call.deadlineNs - scheduler.nanoTime();
      if (closed.get()) {
        refusal = new UnavailableException("client closed");
      } else if (remainingNs < requestTimeoutNs / MIN_SEND_BUDGET_DIVISOR) {
        // Waited for a slot nearly all its budget: sending now could only end in an unknown outcome.
        refusal = new BusyException("an in-flight slot freed only " + TimeUnit.NANOSECONDS.toMillis(remainingNs)
            + " ms before the request timeout of " + config.requestTimeoutMs() + " ms (maxInFlight "
            + limiter.maxInFlight() + "); the request was not sent");
      }
    }
    if (refusal != null || call.isFinished()) {
      boolean givenBack = call.slotHeld.compareAndSet(true, false);
      if (refusal != null) {
        finish(call, null, refusal);
      }
      return !givenBack;
    }
    ids.assign(call);
    if (call.clientId == 0) {
      // Reads carry the instance's id (no session needed); writes get the session's from the gate,
      // before each attempt.
      call.clientId = session.instanceId();
    }
    call.started = true;
    if (!internal && closed.get()) {
      finish(call, null, new UnavailableException("client closed"));
      return true;
    }
    if (call.isFinished()) {
      // Finished (deadline) while its id was being registered: clean up what finish could not see.
      cleanUp(call);
      return true;
    }
    sendAttempt(call, call.pinned != null ? call.pinned : router.guess());
    return true;
  }

  /** Frees one in-flight slot, handing it to waiting calls until one keeps it. */
  private void releaseSlot() {
    for (Call next = limiter.release(); next != null; next = limiter.release()) {
      if (start(next)) {
        return;
      }
    }
  }

  /** Starts the call's next attempt at target (see {@link AttemptSender}). */
  void sendAttempt(Call call, Endpoint target) {
    sender.send(call, target);
  }

  /** Ends the current attempt; caller holds the call's lock and has bumped call.attempt. */
  static void endAttempt(Call call) {
    call.delivered = false;
    call.attemptStartNs = 0;
    untrack(call);
  }

  /** Called by a link when its connection closes: its unanswered attempts move on. */
  void onLinkClosed(Link link) {
    failover.onLinkClosed(link);
  }

  /** The attempt timeout of call's current attempt passed (from CallTimers). */
  void onAttemptTimeout(Call call, int attempt, long nowNs) {
    failover.onAttemptTimeout(call, attempt, nowNs);
  }

  /** Called by a link for every response frame. */
  void onResponse(Link link, Response response) {
    router.onAnswer(link.endpoint);
    if (response.getOp() > 0) {
      highestOpSeen.accumulateAndGet(response.getOp(), Math::max);
    }
    long id = response.getRequestId();
    if (id == 0) {
      failover.onConnectionNotice(link, response);
      return;
    }
    Call call = ids.call(id);
    if (call == null) {
      log.debug("ignoring a response for request {} that is not in flight (status {})", id, response.getStatus());
      return;
    }
    switch (response.getStatus()) {
      case NOT_PRIMARY, UNAVAILABLE -> failover.onRefusal(call, link, response);
      // BUSY to a registration means the session table is full: retrying within the deadline is
      // pointless (no live session is evicted), and the waiting writes fail at once.
      case BUSY -> {
        if (call.kind == Call.Kind.REGISTER) {
          finish(call, response, null);
        } else {
          failover.onRefusal(call, link, response);
        }
      }
      case SESSION_EXPIRED -> registrar.onSessionExpired(call, link, response);
      // Final answers. A late one from an attempt we moved past is still the request's one true
      // answer (the replicas execute an id once and save its reply), so it is accepted.
      default -> {
        link.lastFinalAnswerNs = scheduler.nanoTime();
        ChoirException uncertain = Failures.refusedAfterUncertainAttempt(call, response);
        finish(call, uncertain == null ? response : null, uncertain);
      }
    }
  }

  /** The call's request timeout ran out (from CallTimers). */
  void onDeadline(Call call) {
    if (call.isFinished()) {
      return;
    }
    long timeoutMs = call.budgetMs;
    if (!call.started) {
      limiter.remove(call);
      finish(call, null, new BusyException("no in-flight slot freed within the request timeout of "
          + timeoutMs + " ms (maxInFlight " + limiter.maxInFlight() + "); the request was not sent"));
      return;
    }
    ChoirException error;
    synchronized (call) {
      if (call.isFinished()) {
        return;
      }
      error = Failures.deadline(call);
    }
    finish(call, null, error);
  }

  /** Completes call once: frees its id and slot first, so a callback can issue the next request. */
  void finish(Call call, Response response, Throwable error) {
    if (!call.finished.compareAndSet(false, true)) {
      return;
    }
    cleanUp(call);
    if (error != null) {
      call.future.completeExceptionally(error);
    } else {
      call.future.complete(response);
    }
  }

  /** Idempotent: releases what a finished call holds. */
  private void cleanUp(Call call) {
    ClientScheduler.Timer timer;
    ClientScheduler.Timer retry;
    synchronized (call) {
      untrack(call);
      timer = call.timer;
      retry = call.retryTask;
    }
    if (timer != null) {
      timer.cancel();
    }
    if (retry != null) {
      retry.cancel();
    }
    if (call.needsSession()) {
      session.forget(call);
    }
    ids.release(call);
    if (call.slotHeld.compareAndSet(true, false)) {
      releaseSlot();
    }
  }

  /** Removes call from its link's awaiting set; caller holds the call's lock. */
  private static void untrack(Call call) {
    Link link = call.link;
    if (link != null) {
      link.awaiting.remove(call);
      call.link = null;
    }
  }

  /**
   * Closes the client: every pending call fails (UnavailableException "client closed" when it was not
   * sent or cannot have executed, ChoirTimeoutException when it may have), then, when a session of
   * ours may be open, a CloseSession is sent (best effort, within {@link #CLOSE_SESSION_BUDGET_MS} and
   * the request timeout) so that no session is left behind; then the connections and the transport
   * close. Idempotent; the future completes when all of that is done, never exceptionally.
   */
  CompletableFuture<Void> closeAsync() {
    if (!closed.compareAndSet(false, true)) {
      return closeDone;
    }
    for (Call call : limiter.drainWaiting()) {
      finish(call, null, new UnavailableException("client closed"));
    }
    for (Call call : ids.inFlightCalls()) {
      finish(call, null, Failures.closed(call));
    }
    long budgetNs = Math.min(requestTimeoutNs, TimeUnit.MILLISECONDS.toNanos(CLOSE_SESSION_BUDGET_MS));
    CompletableFuture<Void> closing = registrar.closeSession(budgetNs);
    closing.whenComplete((v, e) -> {
      links.close();
      transport.close();
      closeDone.complete(null);
    });
    return closeDone;
  }
}
