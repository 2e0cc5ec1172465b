package io.choir.client;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * RequestIds owns the request ids of one client instance: the next id to hand out, the ids still in
 * flight (the lowest of them is the {@code first_incomplete} every request carries) and the call each
 * in-flight id belongs to, so that a response finds its call.
 *
 * <p>Exactly-once (Raft thesis 6.3; RIFL, Lee et al. 2015): the replicas keep one saved reply per id at
 * or above first_incomplete and forget the rest. An id is therefore allocated and added to the in-flight
 * set under one lock; otherwise a request could announce a first_incomplete above an id that is
 * allocated but not yet in the set, and the replicas would forget (or refuse) that id's reply. Ids start
 * at 1: a call's request id 0 means it has none yet.
 */
final class RequestIds {
  private final Object lock = new Object();
  private final AtomicLong next = new AtomicLong(1);
  private final ConcurrentSkipListSet<Long> inFlight = new ConcurrentSkipListSet<>();
  private final ConcurrentHashMap<Long, Call> calls = new ConcurrentHashMap<>();

  /** Gives call the next id (its id for every attempt) and registers it as in flight. */
  void assign(Call call) {
    long id;
    synchronized (lock) {
      id = next.getAndIncrement();
      inFlight.add(id);
    }
    call.requestId = id;
    calls.put(id, call);
  }

  /** The call in flight under id, or null (an answer to a call that has finished, or a stray id). */
  Call call(long id) {
    return calls.get(id);
  }

  /** Idempotent: forgets call's id, if it has one; ids below the lowest left may then be forgotten. */
  void release(Call call) {
    long id = call.requestId;
    if (id != 0) {
      calls.remove(id, call);
      inFlight.remove(id);
    }
  }

  /** The lowest id still in flight, or the next id when none is: ids below it may be forgotten. */
  long firstIncomplete() {
    Long lowest = inFlight.ceiling(Long.MIN_VALUE);
    return lowest != null ? lowest : next.get();
  }

  /** A copy of the calls in flight (for close). */
  List<Call> inFlightCalls() {
    return new ArrayList<>(calls.values());
  }
}
