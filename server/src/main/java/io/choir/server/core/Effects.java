package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.ArrayList;
import java.util.List;

/**
 * Effects is everything one step of the {@link ReplicaCore} asks its caller to do, in this order:
 * persist entries, apply committed entries, execute reads, send replies, pause or resume reading
 * clients, and step a Tick again at nextTickNs. The caller owns the object and clears it between
 * steps (etcd-io/raft's Ready, without its channels).
 */
public final class Effects {
  /** A reply to send on a connection. */
  public record Reply(long connectionId, Response response) {}

  /** A read to execute against the applied state, which has reached what the read needs. */
  public record Read(long connectionId, Request request) {}

  /** Entries to append to the log, in op order; the caller reports back with Event.Persisted. */
  public final List<Entry> persist = new ArrayList<>();
  /** Committed entries to apply, in op order; the caller reports back with Event.Applied. */
  public final List<Entry> apply = new ArrayList<>();
  public final List<Read> reads = new ArrayList<>();
  public final List<Reply> replies = new ArrayList<>();
  /** Non-null when the core wants client intake paused (true) or resumed (false). */
  public Boolean pauseIntake;
  /** When the core wants the next Tick at the latest (absolute, same clock as nowNs), or MAX_VALUE. */
  public long nextTickNs = Long.MAX_VALUE;

  public void clear() {
    persist.clear();
    apply.clear();
    reads.clear();
    replies.clear();
    pauseIntake = null;
    nextTickNs = Long.MAX_VALUE;
  }

  public boolean isEmpty() {
    return persist.isEmpty() && apply.isEmpty() && reads.isEmpty() && replies.isEmpty()
        && pauseIntake == null;
  }
}
