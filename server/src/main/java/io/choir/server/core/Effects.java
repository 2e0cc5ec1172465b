package io.choir.server.core;

import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.ArrayList;
import java.util.List;

/**
 * Effects is everything one step of the {@link ReplicaCore} asks its caller to do: persist entries,
 * apply committed entries, execute reads, send replies and peer messages, resend entries from the log,
 * truncate the log, fetch a state transfer, pause or resume reading clients, and step a Tick again at
 * nextTickNs. Do them in field order: persisting before sending is what lets the primary's own ack
 * count only once its fsync is done. The caller owns the object and clears it between steps
 * (etcd-io/raft's Ready, without its channels).
 */
public final class Effects {
  /** Destination of a peer message sent to every replica by multicast. */
  public static final int MULTICAST = 0;

  /** A reply to send on a connection. */
  public record Reply(long connectionId, Response response) {}

  /** A read to execute against the applied state, which has reached what the read needs. */
  public record Read(long connectionId, Request request) {}

  /** A peer message: to a replica id, or to {@link #MULTICAST}; view is the header's view. */
  public record Send(int to, long view, MessageType type, MessageLite body) {}

  /**
   * Entries fromOp..toOp, no longer in the core's memory, to read from the log and send as PREPAREs
   * (with commit) to a replica or by multicast. Ops the log no longer holds are skipped: the heartbeat's
   * low watermark tells that replica to ask for a state transfer.
   */
  public record Retransmit(int to, long view, long fromOp, long toOp, long commit) {}

  /** Entries to append to the log, in op order; the caller reports back with Event.Persisted. */
  public final List<Entry> persist = new ArrayList<>();
  /** Committed entries to apply, in op order; the caller reports back with Event.Applied. */
  public final List<Entry> apply = new ArrayList<>();
  public final List<Read> reads = new ArrayList<>();
  public final List<Reply> replies = new ArrayList<>();
  public final List<Send> sends = new ArrayList<>();
  public final List<Retransmit> retransmits = new ArrayList<>();
  /** When positive: remove log entries below this op (they are applied everywhere that matters). */
  public long truncateLogBefore;
  /** When positive: fetch a state transfer from this replica, then step Event.StateInstalled. */
  public int stateTransferFrom;
  /** Non-null when the core wants client intake paused (true) or resumed (false). */
  public Boolean pauseIntake;
  /** When the core wants the next Tick at the latest (absolute, same clock as nowNs), or MAX_VALUE. */
  public long nextTickNs = Long.MAX_VALUE;

  public void clear() {
    persist.clear();
    apply.clear();
    reads.clear();
    replies.clear();
    sends.clear();
    retransmits.clear();
    truncateLogBefore = 0;
    stateTransferFrom = 0;
    pauseIntake = null;
    nextTickNs = Long.MAX_VALUE;
  }

  public boolean isEmpty() {
    return persist.isEmpty() && apply.isEmpty() && reads.isEmpty() && replies.isEmpty()
        && sends.isEmpty() && retransmits.isEmpty() && truncateLogBefore == 0
        && stateTransferFrom == 0 && pauseIntake == null;
  }
}
