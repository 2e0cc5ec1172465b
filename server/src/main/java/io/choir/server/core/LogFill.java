package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import java.util.TreeMap;

/**
 * LogFill owns the new primary's fetch of the chosen log in a view change (VR Revisited 4.2 step 3,
 * with DO_VIEW_CHANGE carrying no entries, issue 9, 2e): which replica's log was chosen and up to which
 * op, the entries that arrived beyond a gap (bounded like the out-of-order buffer, and to two answers'
 * bytes), and the piece asked for last: entries are asked for by NACK in pieces the chosen replica's
 * resend budget bounds, and the next piece is asked for once the last one is in (or, by the view-change
 * timer, when it was lost). Placing the entries in the log is the log's job.
 */
final class LogFill {
  private final CoreConfig config;
  /** True while fetching from the chosen replica. */
  private boolean active;
  /** The replica whose log was chosen. */
  private int from;
  /** The chosen log's last op. */
  private long upTo;
  private final TreeMap<Long, Entry> buffer = new TreeMap<>();
  private long bufferedBytes;
  private long lastRequestNs;
  /** Entries of the chosen log received since the last request, and their bytes. */
  private long bytesSinceRequest;
  /** Of those, the bytes of entries that travel by datagram, as the answering replica charges them to its credit. */
  private long creditedBytesSinceRequest;
  private int countSinceRequest;

  LogFill(CoreConfig config) {
    this.config = config;
  }

  /** Starts fetching replica from's log, whose last op is upTo. */
  void start(int from, long upTo) {
    this.active = true;
    this.from = from;
    this.upTo = upTo;
    buffer.clear();
    bufferedBytes = 0;
    lastRequestNs = Long.MIN_VALUE / 2;
  }

  /** Stops fetching (done, refused, or the view was left). */
  void stop() {
    active = false;
    buffer.clear();
    bufferedBytes = 0;
  }

  /** True while fetching from replica id. */
  boolean isFrom(int id) {
    return active && from == id;
  }

  /** True once the log's verified part reaches the chosen log's end. */
  boolean complete(long verifiedOp) {
    return verifiedOp >= upTo;
  }

  /** True while fetching and the last request is older than intervalNs (it, or part of its answer, was lost). */
  boolean requestDue(long nowNs, long intervalNs) {
    return active && nowNs - lastRequestNs >= intervalNs;
  }

  /** The replica to send the request to. */
  int from() {
    return from;
  }

  /** A request for the rest of the chosen log after verifiedOp; a new piece starts. */
  Nack.Builder request(long verifiedOp, long nowNs) {
    lastRequestNs = nowNs;
    bytesSinceRequest = 0;
    creditedBytesSinceRequest = 0;
    countSinceRequest = 0;
    return Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(verifiedOp + 1).setLast(upTo));
  }

  /**
   * Takes entry e of the chosen log: true when it is the next to place (op verifiedOp + 1); one beyond
   * a gap waits in the buffer (or is dropped when that is full: it is asked for again). Duplicates,
   * entries beyond the chosen log and non-canonical ones are ignored.
   */
  boolean offer(Entry e, long verifiedOp, Counters counters) {
    long op = e.getOp();
    if (op <= verifiedOp || op > upTo || buffer.containsKey(op)) {
      return false;
    }
    if (!EntryBytes.canonical(e)) {
      counters.nonCanonicalEntries++;
      return false;
    }
    bytesSinceRequest += e.getSerializedSize();
    if (e.getSerializedSize() + ReplicaCore.PREPARE_OVERHEAD_BYTES <= config.maxDatagramBytes) {
      creditedBytesSinceRequest += e.getSerializedSize() + ReplicaCore.PREPARE_OVERHEAD_BYTES;
    }
    countSinceRequest++;
    if (op == verifiedOp + 1) {
      return true;
    }
    if (buffer.size() < config.maxOutOfOrderEntries
        && bufferedBytes + e.getSerializedSize() <= 2 * config.maxRetransmitBytesPerNack) {
      buffer.put(op, e);
      bufferedBytes += e.getSerializedSize();
    }
    return false;
  }

  /** The buffered entry for op verifiedOp + 1, removed, or null. */
  Entry takeNext(long verifiedOp) {
    Entry next = buffer.remove(verifiedOp + 1);
    if (next != null) {
      bufferedBytes -= next.getSerializedSize();
    }
    return next;
  }

  /**
   * True when the piece asked for is in: the chosen replica answers a NACK with entries until its byte
   * or entry budget (the same settings) is spent, or, on a cluster without a key (limited), the credit
   * the NACK earned for entries that go by datagram (creditedAnswerBytes).
   */
  boolean pieceIn(boolean limited, long creditedAnswerBytes) {
    return bytesSinceRequest >= config.maxRetransmitBytesPerNack
        || (limited && creditedBytesSinceRequest >= creditedAnswerBytes)
        || countSinceRequest >= config.maxRetransmitEntriesPerNack;
  }

  int buffered() {
    return buffer.size();
  }
}
