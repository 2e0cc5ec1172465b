package io.choir.client;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * Session is this client's side of its session on the replicas (Raft thesis section 6.3; client.proto
 * RegisterSession). The replicas execute a write only inside a registered session, and keep the saved
 * replies that make retries exactly-once in it; when the session expires or is closed, those replies
 * are gone, and a retry of a write that may have executed can no longer be told apart from a new one.
 *
 * <p>The client registers lazily, before its first write (one registration in flight; writes wait for
 * it, reads need none), and again when a write is answered SESSION_EXPIRED. Each successful
 * registration starts a new <em>generation</em>. The gate ({@link #admit}) keeps exactly-once across
 * generations: a write that may have executed in one generation is never sent in another, because the
 * new session would execute it again; it fails with {@link SessionExpiredException} instead.
 *
 * <p>A new session after an expiry gets a new client id (Raft thesis section 6.3: RegisterClient
 * returns a fresh id). Were the old id registered again, a copy of an old request still on its way
 * (held in a paused replica's socket buffer, or retransmitted by TCP after a partition heals) would
 * find a live session under its id with no saved reply, and execute a second time. Under a new id the
 * old one is never registered again, so every such straggler is answered SESSION_EXPIRED. (The first
 * registration, and one retried after an unknown outcome, keep the id: no session of it was lost.)
 *
 * <p>Thread-safe; the lock is never held while calling out, and never taken under a call's lock. A
 * write to a registered session passes the gate without the lock, from a volatile snapshot: a stale
 * snapshot (the session just expired) can only send the write under the old client id, whose session
 * is gone for good, so the replicas refuse it (SESSION_EXPIRED) and it comes back to the gate.
 * {@code waiting} is bounded by maxInFlight: every waiting call holds an in-flight slot.
 */
final class Session {
  /** Where the session stands, as far as this client knows. */
  enum State {
    /** Never registered, or the current generation's session is known to be gone. */
    NONE,
    /** A registration is in flight; writes wait for it. */
    REGISTERING,
    /** Registered; writes go out in the current generation. */
    REGISTERED,
    /** The replicas answered the registration INVALID: a server from before sessions; writes go out without one. */
    UNSUPPORTED
  }

  /** What a write may do now. */
  enum Gate {
    /** Send it, in the current generation. */
    SEND,
    /** It waits for the registration in flight. */
    WAIT,
    /** It waits, and the caller must start a registration. */
    REGISTER,
    /** It may have executed in a session that is gone: fail it with SessionExpiredException. */
    EXPIRED
  }

  private final LongSupplier newClientId;
  private State state = State.NONE; // guarded by this
  private long clientId; // guarded by this: the id of the current (or next) session
  private boolean newIdNeeded; // guarded by this: the session of clientId expired
  private long generation; // guarded by this: successful registrations so far
  private boolean mayExist; // guarded by this: a session of ours may be open on the replicas
  private final LinkedHashSet<Call> waiting = new LinkedHashSet<>(); // guarded by this
  /** The registered session, or null when not REGISTERED: the gate's lock-free fast path. */
  private volatile Registered registered;

  private record Registered(long generation, long clientId) {}

  Session(long clientId, LongSupplier newClientId) {
    this.clientId = clientId;
    this.newClientId = newClientId;
  }

  /** The client id requests carry now: the current session's, or the one the next registration opens. */
  synchronized long clientId() {
    return clientId;
  }

  /** Decides whether call (a write about to be sent) may go now; records its generation when it may. */
  Gate admit(Call call) {
    Registered r = registered;
    if (r != null) {
      if (call.outcomeUnknown && call.sessionGeneration != r.generation()) {
        return Gate.EXPIRED;
      }
      call.sessionGeneration = r.generation();
      call.clientId = r.clientId();
      return Gate.SEND;
    }
    return admitLocked(call);
  }

  private synchronized Gate admitLocked(Call call) {
    switch (state) {
      case UNSUPPORTED:
        call.clientId = clientId;
        return Gate.SEND;
      case REGISTERED:
        if (call.outcomeUnknown && call.sessionGeneration != generation) {
          return Gate.EXPIRED;
        }
        call.sessionGeneration = generation;
        call.clientId = clientId;
        return Gate.SEND;
      default:
        // The session of every earlier generation is gone (or there never was one): a write that may
        // have executed in it cannot be resent.
        if (call.outcomeUnknown) {
          return Gate.EXPIRED;
        }
        waiting.add(call);
        if (state == State.NONE) {
          state = State.REGISTERING;
          if (newIdNeeded) {
            newIdNeeded = false;
            long next;
            do {
              next = newClientId.getAsLong();
            } while (next == 0 || next == clientId);
            clientId = next;
          }
          return Gate.REGISTER;
        }
        return Gate.WAIT;
    }
  }

  /** The registration succeeded: a new generation; returns the writes to send now. */
  synchronized List<Call> registered() {
    state = State.REGISTERED;
    generation++;
    mayExist = true;
    registered = new Registered(generation, clientId);
    return drain();
  }

  /** The replicas do not know sessions: returns the writes to send now (without a session). */
  synchronized List<Call> unsupported() {
    state = State.UNSUPPORTED;
    return drain();
  }

  /**
   * The registration failed. When retry is true and some waiting write is still unfinished, the writes
   * keep waiting and the caller must start another registration (returns null); otherwise the state is
   * NONE and the waiting writes are returned, for the caller to fail.
   *
   * @param mayHaveExecuted the registration may have reached the replicas (its outcome is unknown)
   */
  synchronized List<Call> registrationFailed(boolean retry, boolean mayHaveExecuted) {
    mayExist |= mayHaveExecuted;
    waiting.removeIf(Call::isFinished);
    if (retry && !waiting.isEmpty()) {
      state = State.REGISTERING;
      return null;
    }
    state = State.NONE;
    return drain();
  }

  /**
   * call, a write, was answered SESSION_EXPIRED: the session of the generation it was sent in is gone
   * (an answer about an older generation says nothing about the current one).
   */
  synchronized void expired(Call call) {
    if (state == State.UNSUPPORTED) {
      state = State.NONE; // the replicas were upgraded since: they do know sessions now
      return;
    }
    if (state == State.REGISTERED && call.sessionGeneration == generation) {
      state = State.NONE;
      registered = null;
      mayExist = false;
      newIdNeeded = true;
    }
  }

  /** The session was closed (or found gone) on the replicas. */
  synchronized void closed() {
    state = State.NONE;
    registered = null;
    mayExist = false;
  }

  /** A finished call leaves the queue at once, so the queue stays within maxInFlight. */
  synchronized void forget(Call call) {
    waiting.remove(call);
  }

  /** Whether a session of ours may be open on the replicas (then close() ends it). */
  synchronized boolean mayExist() {
    return mayExist || state == State.REGISTERED;
  }

  synchronized State state() {
    return state;
  }

  synchronized long generation() {
    return generation;
  }

  private List<Call> drain() {
    List<Call> all = new ArrayList<>(waiting);
    waiting.clear();
    return all;
  }
}
