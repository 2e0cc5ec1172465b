package io.choir.client;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.wire.FrameDecoder;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.Future;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Dispatcher sends requests and matches responses: it owns the request ids, the in-flight set behind
 * {@code first_incomplete}, the leader guess, one {@link Connection} per endpoint, retries with
 * backoff, and the deadline of every call. The public clients only build requests and map responses.
 *
 * <p>Exactly-once (Raft thesis 6.3; RIFL, Lee et al. 2015): a request keeps its id across every retry,
 * and every request carries the lowest id this client still waits for, so the replicas can keep one
 * saved reply per outstanding id and forget the rest. Ids are allocated and added to the in-flight set
 * under one lock; otherwise a request could announce a first_incomplete above an id that is allocated
 * but not yet registered, and the replicas would forget (or refuse) that id's reply.
 *
 * <p>Routing: writes and reads go to the leader guess. NOT_PRIMARY with an address moves the guess and
 * resends at once (up to {@link #MAX_IMMEDIATE_REDIRECTS} times a call, then with backoff, so two
 * replicas naming each other during a view change cannot spin a call). A lost connection, a failed
 * connect, NOT_PRIMARY without an address, UNAVAILABLE and BUSY retry the same request on the next
 * endpoint after {@link Backoff}. OK, NOT_FOUND, CAS_FAILED, TOO_LARGE and INVALID are final.
 */
final class Dispatcher implements AutoCloseable {
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
  /** Flushes a connection coalesces before it must flush anyway (Netty's FlushConsolidationHandler). */
  static final int MAX_COALESCED_FLUSHES = 256;
  /** The calls written to a channel and not yet answered: failed over when the channel closes. */
  static final AttributeKey<Set<Call>> AWAITING = AttributeKey.valueOf("choir.client.awaiting");

  private final ClientConfig config;
  private final long clientId;
  private final long requestTimeoutNs;
  private final EventLoopGroup group;
  private final Bootstrap bootstrap;
  private final ConcurrentHashMap<Endpoint, Connection> connections = new ConcurrentHashMap<>();
  private final AtomicReference<Endpoint> leaderGuess;
  private final Object idLock = new Object();
  private final AtomicLong nextRequestId = new AtomicLong(1);
  private final ConcurrentSkipListSet<Long> inFlightIds = new ConcurrentSkipListSet<>();
  private final ConcurrentHashMap<Long, Call> calls = new ConcurrentHashMap<>();
  private final AtomicLong highestOpSeen = new AtomicLong();
  private final InFlightLimiter limiter;
  private final Random random;
  private final AtomicBoolean closed = new AtomicBoolean();

  Dispatcher(ClientConfig config, long clientId) {
    this.config = config;
    this.clientId = clientId;
    this.requestTimeoutNs = TimeUnit.MILLISECONDS.toNanos(config.requestTimeoutMs());
    this.random = config.random();
    this.limiter = new InFlightLimiter(config.maxInFlight());
    this.leaderGuess = new AtomicReference<>(config.endpoints().get(0));
    this.group = new MultiThreadIoEventLoopGroup(config.eventLoopThreads(),
        new DefaultThreadFactory("choir-client", true), NioIoHandler.newFactory());
    ResponseHandler handler = new ResponseHandler(this);
    FrameEncoder encoder = new FrameEncoder();
    ProtobufFrameDecoder<Response> decoder = new ProtobufFrameDecoder<>(Response.parser());
    this.bootstrap = new Bootstrap()
        .group(group)
        .channel(NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_KEEPALIVE, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, config.connectTimeoutMs()))
        .handler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.attr(AWAITING).set(ConcurrentHashMap.newKeySet());
            ch.pipeline()
                .addLast("flush", new FlushConsolidationHandler(MAX_COALESCED_FLUSHES, true))
                .addLast("frames", new FrameDecoder(config.maxFrameBytes()))
                .addLast("decode", decoder)
                .addLast("encode", encoder)
                .addLast("handler", handler);
          }
        });
  }

  long clientId() {
    return clientId;
  }

  long highestOpSeen() {
    return highestOpSeen.get();
  }

  List<Endpoint> endpoints() {
    return config.endpoints();
  }

  /**
   * Sends base (an operation without ids) and completes with the final response: OK, NOT_FOUND,
   * CAS_FAILED, TOO_LARGE or INVALID (or an unknown status from a newer server). Completes
   * exceptionally with ChoirTimeoutException, UnavailableException or BusyException when the request
   * timeout ends first. A pinned call asks only that endpoint, once, and fails with its refusal.
   */
  CompletableFuture<Response> submit(Request base, boolean sequentialRead, Endpoint pinned) {
    if (closed.get()) {
      return CompletableFuture.failedFuture(new UnavailableException("client closed"));
    }
    if (base.getSerializedSize() > config.maxFrameBytes()) {
      return CompletableFuture.failedFuture(tooLarge(base.getSerializedSize()));
    }
    Call call = new Call(base, sequentialRead, pinned, System.nanoTime() + requestTimeoutNs, group.next());
    call.deadlineTask = schedule(call, () -> onDeadline(call), requestTimeoutNs);
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
   * Gives call, which was just handed an in-flight slot, its id and sends the first attempt. Returns
   * false when the call gave the slot straight back (it was already finished, or is refused now); the
   * caller then passes the slot on, in a loop rather than by recursion, so a long queue of expiring
   * waiters cannot overflow the stack.
   */
  private boolean start(Call call) {
    call.slotHeld.set(true);
    ChoirException refusal = null;
    long remainingNs = call.deadlineNs - System.nanoTime();
    if (closed.get()) {
      refusal = new UnavailableException("client closed");
    } else if (remainingNs < requestTimeoutNs / MIN_SEND_BUDGET_DIVISOR) {
      // Waited for a slot nearly all its budget: sending now could only end in an unknown outcome.
      refusal = new BusyException("an in-flight slot freed only " + TimeUnit.NANOSECONDS.toMillis(remainingNs)
          + " ms before the request timeout of " + config.requestTimeoutMs() + " ms (maxInFlight "
          + limiter.maxInFlight() + "); the request was not sent");
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
    calls.put(id, call);
    call.started = true;
    if (closed.get()) {
      finish(call, null, new UnavailableException("client closed"));
      return true;
    }
    if (call.isFinished()) {
      // Finished (deadline) while its id was being registered: clean up what finish could not see.
      cleanUp(call);
      return true;
    }
    sendAttempt(call, call.pinned != null ? call.pinned : leaderGuess.get());
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
    int attempt;
    synchronized (call) {
      if (call.isFinished()) {
        return;
      }
      attempt = ++call.attempt;
      call.target = target;
      call.channel = null;
      call.delivered = false;
      call.retryTask = null;
    }
    Connection connection;
    try {
      connection = connections.computeIfAbsent(target, e -> new Connection(e, bootstrap));
    } catch (RuntimeException e) {
      onAttemptFailed(call, attempt, e);
      return;
    }
    CompletableFuture<Channel> channel;
    try {
      channel = connection.channel();
    } catch (RejectedExecutionException e) {
      finish(call, null, new UnavailableException("client closed", e));
      return;
    }
    channel.whenComplete((ch, error) -> {
      if (error != null) {
        onAttemptFailed(call, attempt, error);
      } else {
        write(call, attempt, ch);
      }
    });
  }

  private void write(Call call, int attempt, Channel channel) {
    Request request = call.base.toBuilder()
        .setClientId(clientId)
        .setRequestId(call.requestId)
        .setFirstIncomplete(firstIncomplete())
        .setMinOp(call.sequentialRead ? highestOpSeen.get() : 0)
        .build();
    if (request.getSerializedSize() > config.maxFrameBytes()) {
      finish(call, null, tooLarge(request.getSerializedSize()));
      return;
    }
    Set<Call> awaiting = channel.attr(AWAITING).get();
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      call.channel = channel;
      // Added under the call's lock so finish() either sees the channel and removes the call, or this
      // block sees the call finished.
      awaiting.add(call);
    }
    // A closed channel fails the write, so a call added after channelInactive ran is still failed over.
    channel.writeAndFlush(request).addListener(f -> {
      if (f.isSuccess()) {
        synchronized (call) {
          if (call.attempt == attempt && !call.isFinished()) {
            call.delivered = true;
          }
        }
      } else {
        onAttemptFailed(call, attempt, f.cause());
      }
    });
  }

  /** The lowest id still in flight, or the next id when none is: ids below it may be forgotten. */
  long firstIncomplete() {
    Long lowest = inFlightIds.ceiling(Long.MIN_VALUE);
    return lowest != null ? lowest : nextRequestId.get();
  }

  /** A connect or a write failed, or the connection carrying the attempt closed. */
  private void onAttemptFailed(Call call, int attempt, Throwable cause) {
    Endpoint failed;
    synchronized (call) {
      if (call.isFinished() || call.attempt != attempt) {
        return;
      }
      call.attempt++; // any other event of this attempt is stale from now on
      if (call.delivered) {
        call.outcomeUnknown = true;
      }
      call.delivered = false;
      untrack(call);
      call.lastError = cause;
      failed = call.target;
    }
    log.debug("request {} to {} failed: {}", call.requestId, failed, cause.toString());
    if (call.pinned != null) {
      finish(call, null, cause instanceof ChoirException ce ? ce
          : new UnavailableException(failed + " did not answer: " + cause, cause));
      return;
    }
    leaderGuess.compareAndSet(failed, nextAfter(failed));
    scheduleRetry(call, failed);
  }

  /** Called by the handler for every response frame. */
  void onResponse(Channel channel, Response response) {
    if (response.getOp() > 0) {
      highestOpSeen.accumulateAndGet(response.getOp(), Math::max);
    }
    long id = response.getRequestId();
    if (id == 0) {
      onConnectionNotice(channel, response);
      return;
    }
    Call call = calls.get(id);
    if (call == null) {
      log.debug("ignoring a response for request {} that is not in flight (status {})", id, response.getStatus());
      return;
    }
    switch (response.getStatus()) {
      case NOT_PRIMARY, UNAVAILABLE, BUSY -> onRefusal(call, channel, response);
      // Final answers. A late one from an attempt we moved past is still the request's one true
      // answer (the replicas execute an id once and save its reply), so it is accepted.
      default -> finish(call, response, null);
    }
  }

  private void onRefusal(Call call, Channel channel, Response response) {
    Endpoint failed;
    Endpoint hint = null;
    boolean immediate = false;
    synchronized (call) {
      if (call.isFinished() || call.channel != channel) {
        return; // a refusal of an attempt already given up on
      }
      call.attempt++;
      call.delivered = false; // answered: this attempt did not execute
      untrack(call);
      call.lastRefusal = response.getStatus();
      call.lastError = new ChoirException(call.target + " answered " + response.getStatus()
          + (response.getError().isEmpty() ? "" : ": " + response.getError()));
      failed = call.target;
      if (response.getStatus() == Status.NOT_PRIMARY && call.pinned == null) {
        hint = parseHint(response.getPrimaryAddress(), failed);
        if (hint != null) {
          immediate = ++call.immediateRedirects <= MAX_IMMEDIATE_REDIRECTS;
        }
      }
    }
    if (call.pinned != null) {
      finish(call, null, Responses.refusal(response, failed));
      return;
    }
    if (hint != null) {
      log.debug("request {}: {} says the primary is {}", call.requestId, failed, hint);
      leaderGuess.set(hint);
      if (immediate) {
        sendAttempt(call, hint);
      } else {
        scheduleRetry(call, failed);
      }
      return;
    }
    leaderGuess.compareAndSet(failed, nextAfter(failed));
    scheduleRetry(call, failed);
  }

  /**
   * A response with request id 0 is about the connection, not a request: the server refused it (too
   * many connections) or refused a frame it could not read, and closes the connection next. A frame
   * over the server's max_frame_bytes cannot be matched to its id, but the largest request awaiting an
   * answer on this connection is at least as large as the refused frame, so it is certainly too large:
   * it fails with TooLargeException instead of being retried (and killing the connection) until its
   * timeout. The others on the connection are retried when it closes.
   */
  private void onConnectionNotice(Channel channel, Response response) {
    log.warn("{} refused the connection: {} {}", channel.remoteAddress(), response.getStatus(), response.getError());
    if (response.getStatus() != Status.TOO_LARGE) {
      return;
    }
    Set<Call> awaiting = channel.attr(AWAITING).get();
    Call largest = null;
    for (Call call : awaiting) {
      if (largest == null || call.base.getSerializedSize() > largest.base.getSerializedSize()) {
        largest = call;
      }
    }
    if (largest != null) {
      finish(largest, null, new TooLargeException(channel.remoteAddress() + " refused the request frame: "
          + response.getError()));
    }
  }

  /** Called by the handler when a connection closes: its unanswered attempts move on. */
  void onChannelClosed(Channel channel) {
    Set<Call> awaiting = channel.attr(AWAITING).get();
    if (awaiting == null) {
      return;
    }
    List<Call> lost = new ArrayList<>(awaiting);
    awaiting.clear();
    ClosedChannelException cause = new ClosedChannelException();
    for (Call call : lost) {
      int attempt;
      synchronized (call) {
        if (call.channel != channel) {
          continue;
        }
        attempt = call.attempt;
      }
      onAttemptFailed(call, attempt, new UnavailableException(
          "connection to " + channel.remoteAddress() + " lost", cause));
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
    long delayNs = TimeUnit.MILLISECONDS.toNanos(Backoff.delayMs(retry, random));
    if (System.nanoTime() + delayNs >= call.deadlineNs) {
      return; // the deadline fires first and reports what happened so far
    }
    ScheduledFuture<?> task = schedule(call, () -> sendAttempt(call, retryTarget(failed)), delayNs);
    synchronized (call) {
      if (!call.isFinished()) {
        call.retryTask = task;
      } else if (task != null) {
        task.cancel(false);
      }
    }
  }

  private Endpoint retryTarget(Endpoint failed) {
    Endpoint guess = leaderGuess.get();
    return guess.equals(failed) ? nextAfter(failed) : guess;
  }

  /** The configured endpoint after e, round robin; the first one when e was learned from a redirect. */
  private Endpoint nextAfter(Endpoint e) {
    List<Endpoint> all = config.endpoints();
    int i = all.indexOf(e);
    return all.get(i < 0 ? 0 : (i + 1) % all.size());
  }

  private static Endpoint parseHint(String address, Endpoint failed) {
    if (address == null || address.isBlank()) {
      return null;
    }
    try {
      Endpoint hint = Endpoint.parse(address);
      return hint.equals(failed) ? null : hint;
    } catch (IllegalArgumentException e) {
      log.debug("ignoring a malformed primary address {}", address);
      return null;
    }
  }

  private void onDeadline(Call call) {
    if (call.isFinished()) {
      return;
    }
    long timeoutMs = config.requestTimeoutMs();
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
      String what = "request " + call.requestId + " (" + call.base.getOpCase() + ")";
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
    ScheduledFuture<?> deadline;
    ScheduledFuture<?> retry;
    synchronized (call) {
      untrack(call);
      deadline = call.deadlineTask;
      retry = call.retryTask;
    }
    if (deadline != null) {
      deadline.cancel(false);
    }
    if (retry != null) {
      retry.cancel(false);
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

  /** Removes call from its channel's awaiting set; caller holds the call's lock. */
  private static void untrack(Call call) {
    Channel channel = call.channel;
    if (channel != null) {
      Set<Call> awaiting = channel.attr(AWAITING).get();
      if (awaiting != null) {
        awaiting.remove(call);
      }
      call.channel = null;
    }
  }

  private ScheduledFuture<?> schedule(Call call, Runnable task, long delayNs) {
    try {
      return call.timerLoop.schedule(task, delayNs, TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      finish(call, null, new UnavailableException("client closed", e));
      return null;
    }
  }

  private TooLargeException tooLarge(int bytes) {
    return new TooLargeException("the request frame has " + bytes + " bytes, more than maxFrameBytes "
        + config.maxFrameBytes() + "; it was not sent");
  }

  /**
   * Fails every pending call with UnavailableException("client closed"), closes the connections and
   * stops the event loops (no quiet period: nothing of ours runs on them any more).
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    for (Call call : limiter.drainWaiting()) {
      finish(call, null, new UnavailableException("client closed"));
    }
    for (Call call : new ArrayList<>(calls.values())) {
      finish(call, null, new UnavailableException("client closed"));
    }
    for (Connection connection : connections.values()) {
      connection.close();
    }
    Future<?> terminated = group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    if (!inAnyEventLoop()) {
      // Waiting on an event loop for the loops to end would wait for itself.
      terminated.awaitUninterruptibly(2, TimeUnit.SECONDS);
    }
  }

  /** Whether the current thread is one of this client's I/O threads (where blocking would deadlock). */
  boolean inAnyEventLoop() {
    for (var executor : group) {
      if (executor.inEventLoop()) {
        return true;
      }
    }
    return false;
  }
}
