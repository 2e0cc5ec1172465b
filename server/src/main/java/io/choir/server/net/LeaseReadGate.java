package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.server.core.LeaseReadWindow;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
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
 * refuses requests: shutdown, a failed core) it admits nothing again. A read it may serve but does not
 * (it goes to the core) is counted by why: no window (a backup, no lease, read_index mode), the
 * window's end passed (the next burst had not published a new one yet), or the applied number behind
 * the window's read index (the apply trails the commit). Thread-safe.
 */
public final class LeaseReadGate {
  private final int maxKeyBytes;
  private final LongSupplier applied;
  private final LongSupplier clock;
  private final LongAdder served = new LongAdder();
  private volatile LeaseReadWindow window = LeaseReadWindow.NONE;
  private volatile boolean closed;
  private final Counter noWindow;
  private final Counter windowEnded;
  private final Counter appliedBehind;

  /** A gate whose refusals are counted in a registry of its own (tests). */
  public LeaseReadGate(int maxKeyBytes, LongSupplier applied, LongSupplier clock) {
    this(maxKeyBytes, applied, clock, new SimpleMeterRegistry());
  }

  /**
   * @param maxKeyBytes max_key_bytes: a longer key goes to the core, which refuses it
   * @param applied the state machine's applied number (the state a read is answered from)
   * @param clock the replica loop's clock (the window's end is on it)
   * @param metrics where the reads it leaves to the core are counted, by reason
   */
  public LeaseReadGate(int maxKeyBytes, LongSupplier applied, LongSupplier clock, MeterRegistry metrics) {
    this.maxKeyBytes = maxKeyBytes;
    this.applied = applied;
    this.clock = clock;
    this.noWindow = metrics.counter("choir.lease_gate.no_window");
    this.windowEnded = metrics.counter("choir.lease_gate.window_ended");
    this.appliedBehind = metrics.counter("choir.lease_gate.applied_behind");
  }

  /** The core's window at the end of a burst (replica loop); ignored once closed. */
  public void publish(LeaseReadWindow w) {
    if (closed) {
      return;
    }
    window = w;
    if (closed) { // closed meanwhile: close's NONE must be the last word
      window = LeaseReadWindow.NONE;
    }
  }

  /** Admits nothing from now on (any thread). */
  public void close() {
    closed = true;
    window = LeaseReadWindow.NONE;
  }

  /** True, and counted, when request may be answered now without the core (event loop). */
  boolean admits(Request request) {
    if (!LeaseReadWindow.eligible(request, maxKeyBytes)) {
      return false;
    }
    LeaseReadWindow w = window;
    if (w.untilNs() == Long.MIN_VALUE) {
      noWindow.increment();
      return false;
    }
    long now = clock.getAsLong();
    if (!w.admits(now, applied.getAsLong())) {
      (now - w.untilNs() >= 0 ? windowEnded : appliedBehind).increment();
      return false;
    }
    served.increment();
    return true;
  }

  /** The reads admitted since the last call (replica loop, to tell the core). */
  public long takeServed() {
    return served.sumThenReset();
  }
}
