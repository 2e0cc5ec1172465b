package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.server.core.LeaseReadWindow;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;

/**
 * LeaseReadGate lets the event loops answer linearizable reads of single keys without the replica
 * loop while the primary's lease holds: the replica loop publishes the core's {@link LeaseReadWindow}
 * at the end of every burst, before the burst's effects leave the replica, and an event loop that
 * takes a read the window admits (a linearizable Get, now before the window's end, the applied number
 * at least its read index) hands it straight to the read path ({@link ClientReads}: from memory or on
 * the read pool), as if the core had released it. That saves the two thread hand-offs per read batch
 * that a lease read through the core costs. The reads it served are told to the core at the next burst
 * ({@link #takeServed}), which counts them and renews the lease in time. Once closed (the replica
 * refuses requests: shutdown, a failed core) it admits nothing again.
 *
 * <p>A sequential Get is admitted at once when the window allows sequential reads (any replica that is
 * not recovering) and the applied number has reached the op its client saw (min_op): that is the
 * core's rule for it; one that must wait for the applied number goes to the core, which queues it.
 *
 * <p>A read that arrives inside the window while the applied number still trails its read index (the
 * apply lane is behind the commit) waits here, in arrival order, until the apply lane reports an
 * applied number that reaches it ({@link #appliedTo}), and then goes to the read path: the answer is
 * from a state at or after the read index, and the read arrived while the lease held, which is all
 * the window promises (the core's own lease reads wait for the applied number the same way). At most
 * maxWaiting reads wait; one that finds no room goes to the core. A read that waited longer than the
 * read timeout, or is still waiting when the gate closes, is refused UNAVAILABLE: it was not executed.
 *
 * <p>A read it could serve but leaves to the core is counted by why: no window (a backup, no lease,
 * read_index mode), the window's end passed (the next burst had not published a new one yet), or no
 * room to wait. Thread-safe.
 */
public final class LeaseReadGate {
  private final int maxKeyBytes;
  private final LongSupplier applied;
  private final LongSupplier clock;
  private final LongAdder served = new LongAdder();
  private final LongAdder sequentialServed = new LongAdder();
  private volatile LeaseReadWindow window = LeaseReadWindow.NONE;
  private volatile boolean closed;
  private final Counter noWindow;
  private final Counter windowEnded;
  private final Counter noRoomToWait;
  private final Counter waited;
  private final Counter waitExpired;
  private final int maxWaiting;
  private final long waitTimeoutNs;
  /** Reads admitted while the applied number trailed their read index, in arrival order; guarded by this. */
  private final ArrayDeque<Waiting> waiting = new ArrayDeque<>();
  private volatile Route route;

  /** Where the reads that waited go (the client connections). */
  interface Route {
    /** The applied number reached the read's read index: to the read path (any thread). */
    void release(ClientConnection c, Request request);

    /** The read is refused (any thread): it was not executed. */
    void refuse(ClientConnection c, Request request, String why);
  }

  private record Waiting(long requiredOp, long sinceNs, ClientConnection connection, Request request) {}

  /** What {@link #admit} decided. */
  enum Admission {
    /** Answer it now without the core. */
    NOW,
    /** It waits here for the applied number; the gate hands it on. */
    WAITS,
    /** Give it to the core. */
    CORE
  }

  /** A gate whose refusals are counted in a registry of its own, 1,024 reads waiting, 5 s (tests). */
  public LeaseReadGate(int maxKeyBytes, LongSupplier applied, LongSupplier clock) {
    this(maxKeyBytes, applied, clock, new SimpleMeterRegistry(), 1024, 5_000_000_000L);
  }

  /**
   * @param maxKeyBytes max_key_bytes: a longer key goes to the core, which refuses it
   * @param applied the state machine's applied number (the state a read is answered from)
   * @param clock the replica loop's clock (the window's end is on it)
   * @param metrics where the reads it leaves to the core are counted, by reason
   * @param maxWaiting the most reads that wait for the applied number (max_queued_requests)
   * @param waitTimeoutNs how long one may wait before it is refused (read_timeout_ms)
   */
  public LeaseReadGate(int maxKeyBytes, LongSupplier applied, LongSupplier clock, MeterRegistry metrics,
      int maxWaiting, long waitTimeoutNs) {
    this.maxKeyBytes = maxKeyBytes;
    this.applied = applied;
    this.clock = clock;
    this.maxWaiting = maxWaiting;
    this.waitTimeoutNs = waitTimeoutNs;
    this.noWindow = metrics.counter("choir.lease_gate.no_window");
    this.windowEnded = metrics.counter("choir.lease_gate.window_ended");
    this.noRoomToWait = metrics.counter("choir.lease_gate.no_room_to_wait");
    this.waited = metrics.counter("choir.lease_gate.waited");
    this.waitExpired = metrics.counter("choir.lease_gate.wait_expired");
  }

  /** Sets where the reads that waited go (before the first {@link #admit}). */
  void route(Route r) {
    this.route = r;
  }

  /**
   * The core's window at the end of a burst (replica loop); ignored once closed. Reads that have
   * waited longer than the timeout are refused here.
   */
  public void publish(LeaseReadWindow w) {
    if (closed) {
      return;
    }
    window = w;
    if (closed) { // closed meanwhile: close's NONE must be the last word
      window = LeaseReadWindow.NONE;
    }
    List<Waiting> expired = null;
    long nowNs = clock.getAsLong();
    synchronized (this) {
      while (!waiting.isEmpty() && nowNs - waiting.peekFirst().sinceNs() - waitTimeoutNs > 0) {
        if (expired == null) {
          expired = new ArrayList<>();
        }
        expired.add(waiting.pollFirst());
      }
    }
    if (expired != null) {
      waitExpired.increment(expired.size());
      refuse(expired, "the read timed out waiting for the applied state (read_timeout_ms)");
    }
  }

  /** Admits nothing from now on (any thread); the reads still waiting are refused. */
  public void close() {
    closed = true;
    window = LeaseReadWindow.NONE;
    List<Waiting> left;
    synchronized (this) {
      left = new ArrayList<>(waiting);
      waiting.clear();
    }
    refuse(left, "the replica stopped serving requests");
  }

  /**
   * The state machine's applied number reached op (the apply lane, after it published it): the reads
   * waiting for op or less go to the read path, in arrival order.
   */
  public void appliedTo(long op) {
    List<Waiting> ready = null;
    synchronized (this) { // after the applied number moved: an admit after this sees it
      while (!waiting.isEmpty() && waiting.peekFirst().requiredOp() <= op) {
        if (ready == null) {
          ready = new ArrayList<>();
        }
        ready.add(waiting.pollFirst());
      }
    }
    if (ready != null) {
      for (Waiting w : ready) {
        route.release(w.connection(), w.request());
      }
    }
  }

  /** True, and counted, when request may be answered now without the core (event loop). */
  boolean admits(Request request) {
    return admit(null, request, false) == Admission.NOW;
  }

  /**
   * What to do with request from c (event loop): answer it now, let it wait here for the applied
   * number, or give it to the core. NOW and WAITS are counted as served (told to the core).
   */
  Admission admit(ClientConnection c, Request request) {
    return admit(c, request, true);
  }

  private Admission admit(ClientConnection c, Request request, boolean mayWait) {
    if (!LeaseReadWindow.eligible(request, maxKeyBytes)) {
      if (LeaseReadWindow.eligibleSequential(request, maxKeyBytes)
          && window.admitsSequential(applied.getAsLong(), request.getMinOp())) {
        sequentialServed.increment();
        return Admission.NOW; // the core's rule for a sequential read; one that must wait goes to it
      }
      return Admission.CORE;
    }
    LeaseReadWindow w = window;
    if (w.untilNs() == Long.MIN_VALUE) {
      noWindow.increment();
      return Admission.CORE;
    }
    long now = clock.getAsLong();
    if (now - w.untilNs() >= 0) {
      windowEnded.increment();
      return Admission.CORE;
    }
    if (w.admits(now, applied.getAsLong())) {
      served.increment();
      return Admission.NOW;
    }
    if (!mayWait || route == null) {
      noRoomToWait.increment();
      return Admission.CORE;
    }
    synchronized (this) {
      // Under the lock appliedTo takes after the applied number moved: either it sees this read, or
      // this sees the number it reports.
      if (closed) {
        return Admission.CORE; // the core refuses it
      }
      if (applied.getAsLong() >= w.requiredOp()) {
        served.increment();
        return Admission.NOW;
      }
      if (waiting.size() >= maxWaiting) {
        noRoomToWait.increment();
        return Admission.CORE;
      }
      waiting.addLast(new Waiting(w.requiredOp(), now, c, request));
    }
    served.increment();
    waited.increment();
    return Admission.WAITS;
  }

  /** How many reads wait for the applied number now. */
  synchronized int waiting() {
    return waiting.size();
  }

  private void refuse(List<Waiting> reads, String why) {
    Route r = route;
    if (r == null) {
      return;
    }
    for (Waiting w : reads) {
      r.refuse(w.connection(), w.request(), why);
    }
  }

  /** The sequential reads admitted since the last call (replica loop, to tell the core). */
  public long takeSequentialServed() {
    return sequentialServed.sumThenReset();
  }

  /** The linearizable reads admitted since the last call (replica loop, to tell the core). */
  public long takeServed() {
    return served.sumThenReset();
  }
}
