package io.choir.server.core;

import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.ArrayList;
import java.util.List;

/**
 * Effects is everything one step of the {@link ReplicaCore} asks its caller to do, in this order:
 * record the view (synced, before anything is sent); then, in storage order, truncate the log after an
 * op, persist entries and record the last normal view; then send peer messages, apply committed
 * entries, truncate the log's old end, resend entries from the log, fetch a state transfer, execute
 * reads, send replies, pause or resume reading clients, and step a Tick again at nextTickNs. The caller
 * owns the object and clears it between steps (etcd-io/raft's Ready, without its channels).
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
   * (with commit) to a replica or by multicast, stopping once maxBytes of entries are sent (the rest is
   * asked for again). Ops the log no longer holds are skipped: the heartbeat's low watermark tells that
   * replica to ask for a state transfer.
   */
  public record Retransmit(int to, long view, long fromOp, long toOp, long commit, long maxBytes) {
    /** Entries fromOp..toOp with no byte bound (tests). */
    public Retransmit(int to, long view, long fromOp, long toOp, long commit) {
      this(to, view, fromOp, toOp, commit, Long.MAX_VALUE);
    }
  }

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
  /**
   * When non-negative: remove log entries above this op BEFORE persisting this step's entries (a new
   * view replaces an uncommitted suffix). Persist effects are tagged with logEpoch; report it back in
   * Event.Persisted.
   */
  public long truncateLogAfter = -1;
  /** The core's log epoch for this step's persist effect: it grows with every truncateLogAfter. */
  public long logEpoch;
  /**
   * When true: durably record the view (storage meta, synced) BEFORE sending this step's messages (VR
   * Revisited 4.2: a replica never goes back to an older view after a crash).
   */
  public boolean persistView;
  public long view;
  /**
   * When true: durably record lastNormalView as a storage task AFTER this step's log writes (and every
   * earlier one): a replica must never claim a last normal view whose log is not on disk yet.
   */
  public boolean persistLastNormalView;
  public long lastNormalView;
  /**
   * Only with persistLastNormalView: the replica's log is complete again after it had lost state
   * (RecoveredState.mustCatchUp): clear the catching-up marker in the same write as the last normal view.
   */
  public boolean caughtUp;
  /** When positive: fetch a state transfer from this replica, then step Event.StateInstalled. */
  public int stateTransferFrom;
  /** Non-null when the core wants client intake paused (true) or resumed (false). */
  public Boolean pauseIntake;
  /** When the core wants the next Tick at the latest (absolute, same clock as nowNs), or MAX_VALUE. */
  public long nextTickNs = Long.MAX_VALUE;

  // ---------------------------------------------------------------- what the core asks for

  /** Sends a peer message to replica to (or {@link #MULTICAST}) with view in its header. */
  public void send(int to, long view, MessageType type, MessageLite body) {
    sends.add(new Send(to, view, type, body));
  }

  /** Answers a client on a connection. */
  public void reply(long connectionId, Response response) {
    replies.add(new Reply(connectionId, response));
  }

  /** Runs a read against the applied state (which has reached what it needs). */
  public void read(long connectionId, Request request) {
    reads.add(new Read(connectionId, request));
  }

  /** Appends an entry to the log (after this step's truncation, if any). */
  public void persist(Entry entry) {
    persist.add(entry);
  }

  /** Appends entries, in op order, to the log. */
  public void persistAll(List<Entry> entries) {
    persist.addAll(entries);
  }

  /** Applies a committed entry (in op order). */
  public void apply(Entry entry) {
    apply.add(entry);
  }

  /** Resends entries from the log. */
  public void retransmit(Retransmit retransmit) {
    retransmits.add(retransmit);
  }

  /** Removes log entries below op (the latest such request of a burst wins). */
  public void truncateLogBefore(long op) {
    truncateLogBefore = op;
  }

  /**
   * Removes log entries above op before this burst's appends (the lowest such op of a burst wins);
   * entries above op that this burst asked to persist are dropped, as they are gone from the log.
   */
  public void truncateLogAfter(long op) {
    persist.removeIf(e -> e.getOp() > op);
    truncateLogAfter = truncateLogAfter < 0 ? op : Math.min(truncateLogAfter, op);
  }

  /** The core's log epoch, with which the caller reports this step's persist effect back. */
  public void logEpoch(long epoch) {
    logEpoch = epoch;
  }

  /** Durably records view before any message of this step is sent. */
  public void persistView(long view) {
    persistView = true;
    this.view = view;
  }

  /** Durably records the last normal view after this step's log writes. */
  public void persistLastNormalView(long lastNormalView) {
    persistLastNormalView = true;
    this.lastNormalView = lastNormalView;
  }

  /** With the last normal view: clears the catching-up marker (the log is complete again). */
  public void caughtUp() {
    caughtUp = true;
  }

  /** Fetches a state transfer from replica. */
  public void fetchStateFrom(int replica) {
    stateTransferFrom = replica;
  }

  /** Pauses (true) or resumes (false) reading from clients. */
  public void pauseIntake(boolean paused) {
    pauseIntake = paused;
  }

  /** Asks for a Tick at atNs at the latest (the earliest of a burst's requests wins). */
  public void tickBy(long atNs) {
    nextTickNs = Math.min(nextTickNs, atNs);
  }

  public void clear() {
    persist.clear();
    apply.clear();
    reads.clear();
    replies.clear();
    sends.clear();
    retransmits.clear();
    truncateLogBefore = 0;
    truncateLogAfter = -1;
    logEpoch = 0;
    persistView = false;
    view = 0;
    persistLastNormalView = false;
    lastNormalView = 0;
    caughtUp = false;
    stateTransferFrom = 0;
    pauseIntake = null;
    nextTickNs = Long.MAX_VALUE;
  }

  public boolean isEmpty() {
    return persist.isEmpty() && apply.isEmpty() && reads.isEmpty() && replies.isEmpty()
        && sends.isEmpty() && retransmits.isEmpty() && truncateLogBefore == 0 && truncateLogAfter < 0
        && !persistView && !persistLastNormalView
        && stateTransferFrom == 0 && pauseIntake == null;
  }
}
