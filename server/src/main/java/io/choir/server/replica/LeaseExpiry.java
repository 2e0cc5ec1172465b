package io.choir.server.replica;

import io.choir.proto.LeaseRevoke;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.Event;
import io.choir.server.statemachine.KvStateMachine;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * LeaseExpiry is the primary's side of lease expiry (docs/lease.md), on the node, outside the core:
 * every check interval it asks {@link LeaseExpiryPolicy} (the pure decision, which the simulator runs
 * too), which looks at the applied lease table's earliest deadlines and, for each that the
 * replicated clock has passed, submits an expire request through the normal write path, from a
 * connection id of its own ({@link Event.ClientRequest#LEASE_EXPIRY_CONNECTION}), which the core writes
 * as a LeaseExpire entry. The state machine deletes the lease and its keys at apply only when that
 * entry's time has reached the lease's deadline (a keep-alive may have come in between), so an early
 * or repeated request is harmless; a primary without a majority cannot commit one, so it expires
 * nothing.
 *
 * <p>The replicated clock is estimated from the time_ms of the last applied entry plus the local time
 * elapsed since it was seen applied (KvStateMachine#lastTimeMs): never ahead of the primary's own
 * clock, which stamps the entry. While the state machine knows no time yet (0), the earliest lease is
 * submitted as a probe (its entry is a no-op when early, and it gives the clock a value). A lease is
 * submitted again only after the retry interval; a backup forgets the leases it did not submit, so it
 * expires them at once when it becomes the primary. Threads: a timer thread of its own reads the state machine (thread
 * safe); submitting runs on the replica loop, which alone may ask the core whether it is the primary.
 */
final class LeaseExpiry implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(LeaseExpiry.class);
  /** The most expire requests one check submits. */
  static final int MAX_PER_CHECK = LeaseExpiryPolicy.MAX_PER_CHECK;

  /** Where the expiry hands its work: the loop, and the requests to the loop's inbox. */
  interface Loop {
    void runOnLoop(Runnable task);

    boolean offer(long connectionId, Request request);
  }

  private final KvStateMachine stateMachine;
  private final Loop loop;
  private final BooleanSupplier primaryOnLoop;
  private final LongSupplier nanoTime;
  private volatile ScheduledExecutorService timer;
  /** What to submit when (timer thread; the loop forgets those a backup did not send), under its lock. */
  private final LeaseExpiryPolicy policy;
  private final AtomicLong submitted = new AtomicLong();
  private final AtomicLong notExpired = new AtomicLong();
  private final AtomicLong refused = new AtomicLong();

  /**
   * An expiry that submits a lease again at most every retryMs; {@link #start} starts its checks.
   *
   * @param primaryOnLoop whether this replica is the primary, asked on the loop's thread only
   * @param nanoTime the local monotonic clock
   */
  LeaseExpiry(KvStateMachine stateMachine, Loop loop, BooleanSupplier primaryOnLoop, LongSupplier nanoTime,
      long retryMs, MeterRegistry metrics) {
    this.stateMachine = stateMachine;
    this.loop = loop;
    this.primaryOnLoop = primaryOnLoop;
    this.nanoTime = nanoTime;
    this.policy = new LeaseExpiryPolicy(retryMs);
    register(metrics);
  }

  /** Checks every checkIntervalMs on a daemon thread of its own, until {@link #close}; returns this. */
  LeaseExpiry start(long checkIntervalMs) {
    timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "choir-lease-expiry");
      t.setDaemon(true);
      return t;
    });
    timer.scheduleWithFixedDelay(this::checkSafely, checkIntervalMs, checkIntervalMs, TimeUnit.MILLISECONDS);
    return this;
  }

  private void register(MeterRegistry metrics) {
    Gauge.builder("choir.leases", stateMachine, KvStateMachine::leaseCount)
        .description("Live leases in the applied state").register(metrics);
    Gauge.builder("choir.lease.keys", stateMachine, KvStateMachine::leaseKeyCount)
        .description("Keys attached to a lease in the applied state").register(metrics);
    FunctionCounter.builder("choir.lease.granted", stateMachine, m -> m.leaseCounts().granted())
        .description("Leases granted by applied entries").register(metrics);
    FunctionCounter.builder("choir.lease.keepalives", stateMachine, m -> m.leaseCounts().keepAlives())
        .description("Lease keep-alives applied").register(metrics);
    FunctionCounter.builder("choir.lease.revoked", stateMachine, m -> m.leaseCounts().revoked())
        .description("Leases revoked by applied entries").register(metrics);
    FunctionCounter.builder("choir.lease.expired", stateMachine, m -> m.leaseCounts().expired())
        .description("Leases expired by applied entries").register(metrics);
    FunctionCounter.builder("choir.lease.expiry.requests", submitted, AtomicLong::get)
        .description("Expire requests this replica submitted as primary").register(metrics);
  }

  private void checkSafely() {
    try {
      check();
    } catch (RuntimeException e) {
      log.atWarn().setCause(e).log("lease expiry check failed");
    }
  }

  /** One check (timer thread): submits the leases whose deadline the estimated clock has passed. */
  void check() {
    List<Long> toSubmit;
    synchronized (policy) {
      toSubmit = policy.check(nanoTime.getAsLong(), stateMachine);
    }
    if (!toSubmit.isEmpty()) {
      loop.runOnLoop(() -> submitOnLoop(toSubmit));
    }
  }

  /** On the replica loop: as primary, hands each expire request to the inbox. */
  private void submitOnLoop(List<Long> ids) {
    if (!primaryOnLoop.getAsBoolean()) {
      synchronized (policy) {
        policy.notSent(ids); // a primary-to-be must not wait a retry interval
      }
      return;
    }
    for (long id : ids) {
      Request request = Request.newBuilder().setLeaseRevoke(LeaseRevoke.newBuilder().setId(id)).build();
      if (loop.offer(Event.ClientRequest.LEASE_EXPIRY_CONNECTION, request)) {
        submitted.incrementAndGet();
      }
    }
  }

  /** The answers to this expiry's requests (the loop's thread): counted, never sent anywhere. */
  void answered(List<Response> replies) {
    for (Response r : replies) {
      if (r.getStatus() == Status.CAS_FAILED) {
        notExpired.incrementAndGet();
      } else if (r.getStatus() != Status.OK && r.getStatus() != Status.NOT_FOUND) {
        refused.incrementAndGet(); // not primary, no quorum, busy: the next check tries again
      }
    }
  }

  /** Expire requests submitted, answered "not expired", and refused (tests, status). */
  long[] counts() {
    return new long[] {submitted.get(), notExpired.get(), refused.get()};
  }

  @Override
  public void close() {
    if (timer != null) {
      timer.shutdownNow();
    }
  }
}
