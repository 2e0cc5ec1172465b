package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.client.spi.ClientTransport;
import io.choir.proto.CloseSession;
import io.choir.proto.RegisterSession;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dispatcher sends requests and matches responses: it owns the request ids, the in-flight set behind
 * {@code first_incomplete}, the session, retries with backoff, the attempt timeout and the deadline of
 * every call. {@link Router} picks endpoints, {@link Links} keeps the connections, {@link Session} the
 * session state; the public clients only build requests and map responses. Time and connections come
 * from the two ports ({@link ClientScheduler}, {@link ClientTransport}): Netty and the system clock in
 * production, a simulated clock and network in the deterministic simulator, where everything runs in one
 * thread (no lock is held while calling out, and slots are passed on in a loop, not by recursion).
 *
 * <p>Exactly-once (Raft thesis 6.3; RIFL, Lee et al. 2015): a request keeps its id across every retry,
 * and every request carries the lowest id this client still waits for, so the replicas can keep one
 * saved reply per outstanding id and forget the rest. Ids are allocated and added to the in-flight set
 * under one lock; otherwise a request could announce a first_incomplete above an id that is allocated
 * but not yet registered, and the replicas would forget (or refuse) that id's reply. Writes run inside
 * a session, registered lazily before the first write (see {@link Session}).
 *
 * <p>Routing: NOT_PRIMARY with a hint the {@link Router} accepts resends at once (up to
 * {@link #MAX_IMMEDIATE_REDIRECTS} times a call, then with backoff, so two replicas naming each other
 * during a view change cannot spin a call). A lost connection, a failed connect, a refusal without a
 * usable hint and BUSY retry the same request elsewhere after {@link Backoff}. An attempt without an
 * answer within the attempt timeout moves on at once to the next endpoint (fast failover from a paused
 * or cut-off primary). OK, NOT_FOUND, CAS_FAILED, TOO_LARGE and INVALID are final.
 *
 * <p>What a failed call promises: an attempt that was written and then lost (connection closed, attempt
 * timeout) or refused with outcome_unknown may have executed; such a call never ends in
 * UnavailableException or BusyException ("not executed"), only in ChoirTimeoutException or
 * SessionExpiredException (outcome unknown).
 */
final class Dispatcher {
  private static final Logger log = LoggerFactory.getLogger(Dispatcher.class);

  /** Redirects a call follows without pausing before it starts backing off. */
  static final int MAX_IMMEDIATE_REDIRECTS = 3;
  /**
   * A call that gets its in-flight slot with less than 1/MIN_SEND_BUDGET_DIVISOR of the request timeout
   * left fails with BusyException instead of being sent: with FIFO slots and one timeout for all calls,
   * a waiter otherwise always gets its slot just before its deadline, and sending it then would turn
   * overload into "outcome unknown" timeouts.
   */
  static final int MIN_SEND_BUDGET_DIVISOR = 10;
  /** Times one write re-registers after SESSION_EXPIRED before it gives up (not executed). */
  static final int MAX_SESSION_RENEWALS = 3;
  /** Most time close() spends on CloseSession: closing must not hang on a cluster that is down. */
  static final long CLOSE_SESSION_BUDGET_MS = 1_000;

  private static final Request REGISTER = Request.newBuilder()
      .setRegisterSession(RegisterSession.getDefaultInstance()).build();
  private static final Request CLOSE = Request.newBuilder()
      .setCloseSession(CloseSession.getDefaultInstance()).build();

  private final ClientConfig config;
  private final long requestTimeoutNs;
  private final long attemptTimeoutNs;
  private final long backoffCapMs;
  private final ClientScheduler scheduler;
  private final ClientTransport transport;
  private final Links links;
  private final Router router;
  private final Session session;
  private final Object idLock = new Object();
  private final AtomicLong nextRequestId = new AtomicLong(1);
  private final ConcurrentSkipListSet<Long> inFlightIds = new ConcurrentSkipListSet<>();
  private final ConcurrentHashMap<Long, Call> calls = new ConcurrentHashMap<>();
  private final AtomicLong highestOpSeen = new AtomicLong();
  private final InFlightLimiter limiter;
  private final Random random;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final AtomicBoolean warnedUnsupported = new AtomicBoolean();
  private final CompletableFuture<Void> closeDone = new CompletableFuture<>();

  Dispatcher(ClientConfig config, long clientId, ClientScheduler scheduler, ClientTransport transport) {
    this.config = config;
    this.session = new Session(clientId, config.clientIds());
    this.requestTimeoutNs = TimeUnit.MILLISECONDS.toNanos(config.requestTimeoutMs());
    this.attemptTimeoutNs = TimeUnit.MILLISECONDS.toNanos(config.attemptTimeoutMs());
    this.backoffCapMs = Backoff.capMs(config.attemptTimeoutMs());
    this.scheduler = scheduler;
    this.transport = transport;
    this.random = config.random();
    this.limiter = new InFlightLimiter(config.maxInFlight());
    this.router = new Router(config.endpoints(), attemptTimeoutNs);
    this.links = new Links(transport, this);
  }

  /** The id of the current session (a new session after an expiry has a new id; see Session). */
  long clientId() {
    return session.clientId();
  }

  long highestOpSeen() {
    return highestOpSeen.get();
  }

  List<Endpoint> endpoints() {
    return config.endpoints();
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
      return CompletableFuture.failedFuture(tooLarge(base.getSerializedSize()));
    }
    Call call = new Call(base, Call.Kind.APPLICATION, sequentialRead, pinned, scheduler.nanoTime(), requestTimeoutNs);
    arm(call);
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
   * Sends one of the dispatcher's own session requests. It takes no in-flight slot (a registration
   * must not wait behind the writes that wait for it), so at most maxInFlight + 1 requests are out.
   */
  private Call submitInternal(Request base, Call.Kind kind, long budgetNs) {
    Call call = new Call(base, kind, false, null, scheduler.nanoTime(), budgetNs);
    call.clientId = session.clientId();
    arm(call);
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
    long id;
    synchronized (idLock) {
      id = nextRequestId.getAndIncrement();
      inFlightIds.add(id);
    }
    call.requestId = id;
    if (call.clientId == 0) {
      call.clientId = session.clientId(); // writes get theirs from the session gate, before each attempt
    }
    calls.put(id, call);
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

  private void sendAttempt(Call call, Endpoint target) {
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
          startRegistration();
          return;
        }
        case EXPIRED -> {
          finish(call, null, sessionExpired(call));
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
        onAttemptFailed(call, attempt, error, false);
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
        .setFirstIncomplete(firstIncomplete())
        .setMinOp(call.sequentialRead ? highestOpSeen.get() : 0)
        .build();
    if (request.getSerializedSize() > config.maxFrameBytes()) {
      finish(call, null, tooLarge(request.getSerializedSize()));
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
        onAttemptFailed(call, attempt, Futures.unwrap(error), true);
      }
    });
  }

  /** The lowest id still in flight, or the next id when none is: ids below it may be forgotten. */
  long firstIncomplete() {
    Long lowest = inFlightIds.ceiling(Long.MIN_VALUE);
    return lowest != null ? lowest : nextRequestId.get();
  }

  /**
   * A connect or a write failed, or the link carrying the attempt closed. writeFailed: the write itself
   * failed, so the replica never got the request whole from this attempt.
   */
  private void onAttemptFailed(Call call, int attempt, Throwable cause, boolean writeFailed) {
    Endpoint failed;
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      call.attempt++; // any other event of this attempt is stale from now on
      if (call.delivered && !writeFailed) {
        call.outcomeUnknown = true;
      }
      endAttempt(call);
      call.lastError = cause;
      failed = call.target;
    }
    log.debug("request {} to {} failed: {}", call.requestId, failed, cause.toString());
    if (call.pinned != null) {
      finish(call, null, cause instanceof ChoirException ce ? ce
          : new UnavailableException(failed + " did not answer: " + cause, cause));
      return;
    }
    router.onFailure(failed);
    scheduleRetry(call, failed);
  }

  /**
   * The attempt got no answer within the attempt timeout: move on at once (issue 9 item 2i). The link
   * it was written on is closed (abortively), so what it still queues for the silent replica is
   * discarded rather than delivered after the fault ends, and its other calls move on too.
   */
  private void onAttemptTimeout(Call call, int attempt, long nowNs) {
    Endpoint failed;
    Link link;
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      failed = call.target;
      link = call.link;
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
      endAttempt(call);
      call.lastError = new ChoirException(failed + " did not answer within the attempt timeout of "
          + config.attemptTimeoutMs() + " ms");
    }
    log.debug("request {}: no answer from {} within {} ms, trying {}", call.requestId, failed,
        config.attemptTimeoutMs(), next);
    if (link != null) {
      link.close();
    }
    sendAttempt(call, next);
  }

  /** Ends the current attempt; caller holds the call's lock and has bumped call.attempt. */
  private static void endAttempt(Call call) {
    call.delivered = false;
    call.attemptStartNs = 0;
    untrack(call);
  }

  /** Called by a link for every response frame. */
  void onResponse(Link link, Response response) {
    router.onAnswer(link.endpoint);
    if (response.getOp() > 0) {
      highestOpSeen.accumulateAndGet(response.getOp(), Math::max);
    }
    long id = response.getRequestId();
    if (id == 0) {
      onConnectionNotice(link, response);
      return;
    }
    Call call = calls.get(id);
    if (call == null) {
      log.debug("ignoring a response for request {} that is not in flight (status {})", id, response.getStatus());
      return;
    }
    switch (response.getStatus()) {
      case NOT_PRIMARY, UNAVAILABLE -> onRefusal(call, link, response);
      // BUSY to a registration means the session table is full: retrying within the deadline is
      // pointless (no live session is evicted), and the waiting writes fail at once.
      case BUSY -> {
        if (call.kind == Call.Kind.REGISTER) {
          finish(call, response, null);
        } else {
          onRefusal(call, link, response);
        }
      }
      case SESSION_EXPIRED -> onSessionExpired(call, link, response);
      // Final answers. A late one from an attempt we moved past is still the request's one true
      // answer (the replicas execute an id once and save its reply), so it is accepted.
      default -> finish(call, response, null);
    }
  }

  private void onRefusal(Call call, Link link, Response response) {
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
      endAttempt(call); // answered: this attempt did not execute (unless outcome_unknown said otherwise)
      call.lastRefusal = response.getStatus();
      call.lastError = new ChoirException(call.target + " answered " + response.getStatus()
          + (response.getError().isEmpty() ? "" : ": " + response.getError()));
      failed = call.target;
    }
    log.debug("request {} refused by {}: {} view {} hint '{}'{}", call.requestId, failed, response.getStatus(),
        response.getView(), response.getPrimaryAddress(), response.getOutcomeUnknown() ? " (outcome unknown)" : "");
    if (call.pinned != null) {
      finish(call, null, Responses.refusal(response, failed));
      return;
    }
    Endpoint hint = response.getStatus() == Status.BUSY
        ? null : router.onRefusal(failed, response.getPrimaryAddress(), response.getView(), scheduler.nanoTime());
    if (hint == null) {
      if (response.getStatus() == Status.BUSY) {
        router.onFailure(failed);
      }
      scheduleRetry(call, failed);
      return;
    }
    boolean immediate;
    synchronized (call) {
      immediate = ++call.immediateRedirects <= MAX_IMMEDIATE_REDIRECTS;
    }
    log.debug("request {}: {} says the primary is {} (view {})", call.requestId, failed, hint, response.getView());
    if (immediate) {
      sendAttempt(call, hint);
    } else {
      scheduleRetry(call, failed);
    }
  }

  /**
   * SESSION_EXPIRED: this attempt was not executed, and the session it was sent in is gone. A write
   * none of whose attempts may have executed re-registers and is resent transparently (same id: the
   * new session has never seen it); otherwise its outcome is unknown.
   */
  private void onSessionExpired(Call call, Link link, Response response) {
    boolean unknown;
    int renewals;
    Endpoint target;
    synchronized (call) {
      if (call.isFinished() || call.link != link) {
        return;
      }
      call.attempt++;
      endAttempt(call);
      call.lastError = new ChoirException(call.target + " answered SESSION_EXPIRED"
          + (response.getError().isEmpty() ? "" : ": " + response.getError()));
      unknown = call.outcomeUnknown;
      renewals = ++call.sessionRenewals;
      target = call.target;
    }
    log.debug("request {}: {} answered SESSION_EXPIRED (outcome unknown before: {})", call.requestId, target, unknown);
    if (call.kind != Call.Kind.APPLICATION) {
      finish(call, response, null); // CloseSession: already gone; RegisterSession: a broken server
      return;
    }
    session.expired(call);
    if (unknown) {
      finish(call, null, sessionExpired(call));
    } else if (renewals > MAX_SESSION_RENEWALS) {
      finish(call, null, new UnavailableException(call.describe() + " found this client's session expired "
          + renewals + " times in a row; it was not executed (" + call.lastError.getMessage() + ")"));
    } else {
      sendAttempt(call, target); // the session gate parks it and registers again
    }
  }

  private SessionExpiredException sessionExpired(Call call) {
    Throwable cause;
    synchronized (call) {
      cause = call.lastError;
    }
    return new SessionExpiredException(call.describe() + ": this client's session expired while the request was"
        + " in flight; it may or may not have executed: the outcome is unknown", cause);
  }

  private void startRegistration() {
    Call registration = submitInternal(REGISTER, Call.Kind.REGISTER, requestTimeoutNs);
    registration.future.whenComplete((response, error) -> onRegistered(registration, response, error));
  }

  private void onRegistered(Call registration, Response response, Throwable error) {
    Status status = response == null ? null : response.getStatus();
    if (status == Status.OK) {
      log.debug("session {} registered", Long.toUnsignedString(session.clientId()));
      for (Call waiting : session.registered()) {
        sendAttempt(waiting, router.guess());
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
        sendAttempt(waiting, router.guess());
      }
      return;
    }
    boolean mayHaveExecuted;
    synchronized (registration) {
      mayHaveExecuted = registration.outcomeUnknown || registration.delivered;
    }
    ChoirException failure;
    boolean retry = false;
    if (status == Status.BUSY) {
      failure = new BusyException("the replicas refused to open a session for this client ("
          + response.getError() + "); the request was not executed");
    } else {
      String why = error != null ? String.valueOf(Futures.unwrap(error).getMessage())
          : "answered " + status + (response.getError().isEmpty() ? "" : ": " + response.getError());
      failure = new UnavailableException("could not register this client's session (" + why
          + "); the request was not executed", error != null ? Futures.unwrap(error) : null);
      retry = error != null && !closed.get();
    }
    List<Call> failedWrites = session.registrationFailed(retry, mayHaveExecuted);
    if (failedWrites == null) {
      log.debug("session registration failed ({}); registering again for the writes still waiting", failure.getMessage());
      startRegistration();
      return;
    }
    for (Call waiting : failedWrites) {
      finish(waiting, null, failure);
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
  private void onConnectionNotice(Link link, Response response) {
    log.warn("{} refused the connection: {} {}", link, response.getStatus(), response.getError());
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
      finish(largest, null, new TooLargeException(link + " refused the request frame: " + response.getError()));
    }
  }

  /** Called by a link when its connection closes: its unanswered attempts move on. */
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
      onAttemptFailed(call, attempt, new UnavailableException("connection to " + link + " lost", cause), false);
    }
  }

  private void scheduleRetry(Call call, Endpoint failed) {
    int retry;
    synchronized (call) {
      if (call.isFinished()) {
        return;
      }
      retry = ++call.retries;
    }
    long delayNs = TimeUnit.MILLISECONDS.toNanos(Backoff.delayMs(retry, backoffCapMs, random));
    if (scheduler.nanoTime() + delayNs >= call.deadlineNs) {
      return; // the deadline fires first and reports what happened so far
    }
    ClientScheduler.Timer task = schedule(call, () -> sendAttempt(call, router.retryTarget(failed)), delayNs);
    synchronized (call) {
      if (!call.isFinished()) {
        call.retryTask = task;
      } else if (task != null) {
        task.cancel();
      }
    }
  }

  /**
   * Sets the call's one timer to the earlier of its deadline and its current attempt's timeout. With no
   * attempt under way it is set one attempt timeout from now, which is never later than the timeout of
   * an attempt that starts later; so the timer may fire early (and is set again), never late.
   */
  private void arm(Call call) {
    long nowNs = scheduler.nanoTime();
    long dueNs;
    synchronized (call) {
      if (call.isFinished()) {
        return;
      }
      dueNs = call.deadlineNs;
      if (call.pinned == null) {
        long attemptStart = call.attemptStartNs != 0 ? call.attemptStartNs : nowNs;
        dueNs = Math.min(dueNs, attemptStart + attemptTimeoutNs);
      }
    }
    ClientScheduler.Timer timer = schedule(call, () -> onTimer(call), Math.max(0, dueNs - nowNs));
    synchronized (call) {
      if (!call.isFinished()) {
        call.timer = timer;
        return;
      }
    }
    if (timer != null) {
      timer.cancel();
    }
  }

  private void onTimer(Call call) {
    if (call.isFinished()) {
      return;
    }
    long nowNs = scheduler.nanoTime();
    if (nowNs - call.deadlineNs >= 0) {
      onDeadline(call);
      return;
    }
    int timedOut = -1;
    synchronized (call) {
      if (call.pinned == null && call.attemptStartNs != 0 && nowNs - call.attemptStartNs >= attemptTimeoutNs) {
        timedOut = call.attempt;
      }
    }
    if (timedOut >= 0) {
      onAttemptTimeout(call, timedOut, nowNs);
    }
    arm(call);
  }

  private void onDeadline(Call call) {
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
      String what = call.describe();
      if (call.outcomeUnknown || call.delivered) {
        error = new ChoirTimeoutException(what + " got no answer within " + timeoutMs
            + " ms; the outcome is unknown" + (call.isWrite() ? ": the write may or may not have happened" : ""),
            call.lastError);
      } else if (call.lastRefusal == Status.BUSY) {
        error = new BusyException(what + " was refused as busy until the request timeout of " + timeoutMs
            + " ms ran out; it was not executed (" + call.lastError.getMessage() + ")");
      } else {
        error = new UnavailableException(what + " could not be delivered to any replica within "
            + timeoutMs + " ms; it was not executed"
            + (call.lastError == null ? "" : " (last error: " + call.lastError.getMessage() + ")"),
            call.lastError);
      }
    }
    finish(call, null, error);
  }

  /** Completes call once: frees its id and slot first, so a callback can issue the next request. */
  private void finish(Call call, Response response, Throwable error) {
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
    long id = call.requestId;
    if (id != 0) {
      calls.remove(id, call);
      inFlightIds.remove(id);
    }
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

  private ClientScheduler.Timer schedule(Call call, Runnable task, long delayNs) {
    try {
      return scheduler.schedule(task, delayNs);
    } catch (RejectedExecutionException e) {
      finish(call, null, new UnavailableException("client closed", e));
      return null;
    }
  }

  private TooLargeException tooLarge(int bytes) {
    return new TooLargeException("the request frame has " + bytes + " bytes, more than maxFrameBytes "
        + config.maxFrameBytes() + "; it was not sent");
  }

  /** What a call still pending at close learns: unknown if it may have executed, else not executed. */
  private ChoirException closedError(Call call) {
    boolean unknown;
    synchronized (call) {
      unknown = call.outcomeUnknown || call.delivered;
    }
    return unknown
        ? new ChoirTimeoutException(call.describe() + " was still in flight when the client was closed; the outcome"
            + " is unknown" + (call.isWrite() ? ": the write may or may not have happened" : ""))
        : new UnavailableException("client closed");
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
    for (Call call : new ArrayList<>(calls.values())) {
      finish(call, null, closedError(call));
    }
    CompletableFuture<?> closing = CompletableFuture.completedFuture(null);
    if (session.mayExist() && session.state() != Session.State.UNSUPPORTED) {
      long budgetNs = Math.min(requestTimeoutNs, TimeUnit.MILLISECONDS.toNanos(CLOSE_SESSION_BUDGET_MS));
      Call close = submitInternal(CLOSE, Call.Kind.CLOSE, budgetNs);
      closing = close.future.handle((response, error) -> {
        if (response != null && (response.getStatus() == Status.OK || response.getStatus() == Status.SESSION_EXPIRED)) {
          session.closed();
          log.debug("session {} closed", Long.toUnsignedString(session.clientId()));
        } else {
          log.debug("could not close session {}: {}", Long.toUnsignedString(session.clientId()),
              error != null ? error.toString() : response.getStatus());
        }
        return null;
      });
    }
    closing.whenComplete((v, e) -> {
      links.close();
      transport.close();
      closeDone.complete(null);
    });
    return closeDone;
  }
}
