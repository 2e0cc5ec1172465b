package io.choir.client;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * Session is this client's side of its session on the replicas (Raft thesis section 6.3; client.proto
 * RegisterSession). The replicas execute a write only inside a registered session, and keep the saved
 * replies that make retries exactly-once in it; when the session expires or is closed, those replies
 * are gone, and a retry of a write that may have executed can no longer be told apart from a new one.
 *
 * <p>Ids: the replicas assign each session its id, the op of its RegisterSession entry (unique, never
 * reused), and answer it as Response.session_id; the session's writes (and its CloseSession) carry it
 * as client_id. The registration itself carries this client instance's own random id ({@link
 * #instanceId}), which only names that request, so that the primary recognises its retries while its
 * entry is in flight. Because a session's id is never registered again, no late copy of an old
 * request (held in a paused replica's socket buffer, or resent by TCP after a partition heals) can
 * run in a later session: not even after a late copy of the old registration, which opens a session
 * of its own under a new id. (With client-chosen ids it re-created the old one, and the old write
 * ran again.)
 *
 * <p>The client registers lazily, before its first write (one registration in flight; writes wait for
 * it, reads need none), and again when a write is answered SESSION_EXPIRED. Each successful
 * registration starts a new <em>generation</em>. The gate ({@link #admit}) keeps exactly-once across
 * generations: a write that may have executed in one generation is never sent in another, because the
 * new session would execute it again; it fails with {@link SessionExpiredException} instead. A write
 * that cannot have executed is resent in the new session under its old request id: that session has
 * never seen it.
 *
 * <p>A registration whose answer is lost after its entry committed may have opened a session this
 * client never learns the id of: it cannot close it, and it expires unused after the replicas'
 * session timeout (one table row meanwhile; see KvStateMachine).
 *
 * <p>Thread-safe; the lock is never held while calling out, and never taken under a call's lock. A
 * write to a registered session passes the gate without the lock, from a volatile snapshot: a stale
 * snapshot (the session just expired) can only send the write under the old session id, which is
 * gone for good, so the replicas refuse it (SESSION_EXPIRED) and it comes back to the gate.
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

  private final long instanceId;
  private State state = State.NONE; // guarded by this
  private long sessionId; // guarded by this: the current session's id, from the replicas; 0 when none
  private long generation; // guarded by this: successful registrations so far
  private final LinkedHashSet<Call> waiting = new LinkedHashSet<>(); // guarded by this
  /** The registered session, or null when not REGISTERED: the gate's lock-free fast path. */
  private volatile Registered registered;

  private record Registered(long generation, long sessionId) {}

  /**
   * @param instanceId this client instance's id, not 0: the client_id of its registrations (and of
   *     its writes on replicas from before sessions)
   */
  Session(long instanceId) {
    if (instanceId == 0) {
      throw new IllegalArgumentException("the client instance id must not be 0");
    }
    this.instanceId = instanceId;
  }

  /** This client instance's id: the client_id of its RegisterSession requests. */
  long instanceId() {
    return instanceId;
  }

  /** The id of the current session (as the replicas assigned it), or 0 when none is registered. */
  synchronized long sessionId() {
    return state == State.REGISTERED ? sessionId : 0;
  }

  /** Decides whether call (a write about to be sent) may go now; records its generation when it may. */
  Gate admit(Call call) {
    Registered r = registered;
    if (r != null) {
      if (call.outcomeUnknown && call.sessionGeneration != r.generation()) {
        return Gate.EXPIRED;
      }
      call.sessionGeneration = r.generation();
      call.clientId = r.sessionId();
      return Gate.SEND;
    }
    return admitLocked(call);
  }

  private synchronized Gate admitLocked(Call call) {
    switch (state) {
      case UNSUPPORTED:
        call.clientId = instanceId;
        return Gate.SEND;
      case REGISTERED:
        if (call.outcomeUnknown && call.sessionGeneration != generation) {
          return Gate.EXPIRED;
        }
        call.sessionGeneration = generation;
        call.clientId = sessionId;
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
          return Gate.REGISTER;
        }
        return Gate.WAIT;
    }
  }

  /**
   * The registration succeeded and the replicas opened session newSessionId: a new generation;
   * returns the writes to send now.
   */
  synchronized List<Call> registered(long newSessionId) {
    if (newSessionId == 0) {
      throw new IllegalArgumentException("a session id is never 0");
    }
    state = State.REGISTERED;
    generation++;
    sessionId = newSessionId;
    registered = new Registered(generation, newSessionId);
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
   */
  synchronized List<Call> registrationFailed(boolean retry) {
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
      forgetSession();
    }
  }

  /** The session closedId was closed (or found gone) on the replicas; a newer one is kept. */
  synchronized void closed(long closedId) {
    if (state == State.REGISTERED && sessionId == closedId) {
      forgetSession();
    }
  }

  private void forgetSession() {
    state = State.NONE;
    registered = null;
    sessionId = 0;
  }

  /** A finished call leaves the queue at once, so the queue stays within maxInFlight. */
  synchronized void forget(Call call) {
    waiting.remove(call);
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
