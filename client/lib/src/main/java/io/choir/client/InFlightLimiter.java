package io.choir.client;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * InFlightLimiter bounds the requests one client has outstanding ({@code maxInFlight}), so a burst of
 * async calls cannot grow the server's saved-reply table or this client's memory without limit. A call
 * that finds no free slot waits in FIFO order without blocking its thread; the dispatcher drops it with
 * BusyException when its request timeout ends first.
 */
final class InFlightLimiter {
  private final int maxInFlight;
  private final LinkedHashSet<Call> waiting = new LinkedHashSet<>(); // guarded by this
  private int inUse; // guarded by this

  InFlightLimiter(int maxInFlight) {
    this.maxInFlight = maxInFlight;
  }

  int maxInFlight() {
    return maxInFlight;
  }

  /** Takes a slot for call and returns true, or queues call (it gets a slot from {@link #release}). */
  synchronized boolean acquireOrWait(Call call) {
    if (inUse < maxInFlight && waiting.isEmpty()) {
      inUse++;
      return true;
    }
    waiting.add(call);
    return false;
  }

  /** Removes a waiting call (its time ran out); false when it is not waiting any more. */
  synchronized boolean remove(Call call) {
    return waiting.remove(call);
  }

  /**
   * Frees a slot: hands it to the longest waiting call and returns that call (which now holds the
   * slot and must be started), or returns null.
   */
  Call release() {
    synchronized (this) {
      Iterator<Call> it = waiting.iterator();
      if (it.hasNext()) {
        Call next = it.next();
        it.remove();
        return next;
      }
      inUse--;
      return null;
    }
  }

  /** Removes and returns every waiting call (the client is closing). */
  synchronized List<Call> drainWaiting() {
    List<Call> all = new ArrayList<>(waiting);
    waiting.clear();
    return all;
  }

  synchronized int inUse() {
    return inUse;
  }
}
