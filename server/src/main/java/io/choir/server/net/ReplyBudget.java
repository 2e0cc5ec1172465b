package io.choir.server.net;

import java.util.Comparator;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * ReplyBudget counts client reply bytes in flight, from the moment a reply is computed until the
 * socket took it, per connection (max_reply_bytes_per_connection) and over all connections
 * (max_reply_bytes_total), admits read replies only where they fit, and keeps the connections that
 * wait for the total to drop, ordered by the total they wait for, so a release wakes exactly those it
 * makes room for (no thundering herd). Thread-safe: replies are computed on the read pool and the
 * replica thread, released on the event loops.
 *
 * <p>Admission of a read reply: a connection holding none may always take one reply of any size under
 * its own bound; the total admits a reply only if it fits, except a reply of at most {@link
 * #SMALL_REPLY_BYTES} to a connection holding none (so well-behaved clients are served while attackers
 * fill the total) and a reply larger than the whole bound when nothing else is in flight.
 */
final class ReplyBudget {
  /**
   * A read reply at most this large is sent to a connection holding no reply bytes even when the
   * replica-wide total is full: well-behaved clients (small values, replies read at once) keep being
   * served while attackers hold the total. At most one such reply per connection is outside the total.
   */
  static final long SMALL_REPLY_BYTES = 64 << 10;

  /** Whether a read reply fits, and if not, which bound it does not fit. */
  enum Room { YES, NOT_IN_CONNECTION, NOT_IN_TOTAL }

  /** A connection waiting for the total to drop to threshold or under; ordered by threshold. */
  record Waiter(long threshold, long seq, ClientConnection connection) {}

  private final long maxPerConnection;
  private final long maxTotal;
  private final AtomicLong total = new AtomicLong();
  private final ConcurrentSkipListSet<Waiter> waiters = new ConcurrentSkipListSet<>(
      Comparator.comparingLong(Waiter::threshold).thenComparingLong(Waiter::seq));
  private final AtomicLong waiterSeq = new AtomicLong();
  private final Consumer<Waiter> wake;

  /**
   * @param wake called (any thread) for a waiter the total now has room for, taken out of the set; it
   *     is to run {@link #woke} and go on with the connection on its event loop
   */
  ReplyBudget(long maxPerConnection, long maxTotal, Consumer<Waiter> wake) {
    this.maxPerConnection = maxPerConnection;
    this.maxTotal = maxTotal;
    this.wake = wake;
  }

  /** Reply bytes computed and not yet taken by a socket, over all connections. */
  long total() {
    return total.get();
  }

  /**
   * Reserves bytes of a read reply for c if the bounds have room: under c's bound (or c holds none: one
   * reply of any size), and under the replica's total (or the reply is at most
   * {@link #SMALL_REPLY_BYTES} and c holds none, so well-behaved clients are served while attackers
   * hold the total). Any thread; compare-and-set, so the bounds hold with reads racing.
   */
  Room tryReserve(ClientConnection c, long bytes) {
    long mine;
    do {
      mine = c.replyBytes.get();
      if (mine > 0 && mine + bytes > maxPerConnection) {
        return Room.NOT_IN_CONNECTION;
      }
    } while (!c.replyBytes.compareAndSet(mine, mine + bytes));
    boolean exempt = mine == 0 && bytes <= SMALL_REPLY_BYTES;
    long t;
    do {
      t = total.get();
      // A reply above the whole bound goes out only when nothing else is in flight.
      if (!exempt && t + bytes > maxTotal && t > 0) {
        c.replyBytes.addAndGet(-bytes);
        return Room.NOT_IN_TOTAL;
      }
    } while (!total.compareAndSet(t, t + bytes));
    return Room.YES;
  }

  /** Reserves bytes for c whether or not they fit (write replies: their writes are done). */
  void reserve(ClientConnection c, long bytes) {
    c.replyBytes.addAndGet(bytes);
    total.addAndGet(bytes);
  }

  /** Releases bytes of c (the socket took them, or failed) and wakes the waiters that now fit. */
  void release(ClientConnection c, long bytes) {
    c.replyBytes.addAndGet(-bytes);
    long after = total.addAndGet(-bytes);
    if (!waiters.isEmpty()) {
      // Every waiter whose threshold the total is now at or under; only those (no thundering herd).
      for (Waiter w : waiters.tailSet(new Waiter(after, Long.MIN_VALUE, null))) {
        if (waiters.remove(w)) {
          wake.accept(w);
        }
      }
    }
  }

  /**
   * The highest replica-wide total at which c may go on (Long.MAX_VALUE: the total does not hold it):
   * a connection holding reply bytes waits while the total is at its bound; one whose next read is known
   * to need {@code need} bytes waits until they fit (unless small and it holds none: exempt); a reply
   * larger than the whole bound waits until nothing else is in flight.
   */
  private long threshold(long mine, int running, long need) {
    long t = mine > 0 || running > 0 ? maxTotal - 1 : Long.MAX_VALUE;
    boolean exempt = mine == 0 && need <= SMALL_REPLY_BYTES;
    if (!exempt && need > 0) {
      t = Math.min(t, need > maxTotal ? 0 : maxTotal - need);
    }
    return t;
  }

  private long threshold(ClientConnection c) {
    return threshold(c.replyBytes.get(), c.readsRunning, c.needBytes);
  }

  /** True when the replica-wide total has no room for c now (c's event loop). */
  boolean overTotal(ClientConnection c) {
    return total.get() > threshold(c);
  }

  /**
   * Puts c among the connections to wake when the total drops to its threshold (c's event loop). It
   * joins the set before the total is read again, so a drop that happens meanwhile finds it there (no
   * lost wake-up).
   */
  void waitForTotal(ClientConnection c) {
    long threshold = threshold(c);
    Waiter old = c.waiter;
    if (old != null) {
      if (old.threshold() == threshold && waiters.contains(old)) {
        return;
      }
      waiters.remove(old);
    }
    Waiter w = new Waiter(threshold, waiterSeq.incrementAndGet(), c);
    c.waiter = w;
    waiters.add(w);
    if (total.get() <= threshold && waiters.remove(w)) {
      wake.accept(w);
    }
  }

  /** Notes on w's connection that w was woken (its event loop). */
  void woke(Waiter w) {
    ClientConnection c = w.connection();
    if (c.waiter == w) {
      c.waiter = null;
    }
  }

  /** Forgets c's wait (it closed). */
  void forget(ClientConnection c) {
    if (c.waiter != null) {
      waiters.remove(c.waiter);
    }
  }
}
