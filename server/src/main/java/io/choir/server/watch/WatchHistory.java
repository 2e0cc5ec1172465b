package io.choir.server.watch;

import com.google.protobuf.ByteString;
import io.choir.proto.WatchEvent;

/**
 * WatchHistory is the ring of the latest changes a replica keeps in memory, so that a watch can start
 * from a recent revision and a watcher that fell behind can catch up: at most maxEvents events and
 * maxBytes bytes (keys, values, previous values), the oldest evicted first. Every event has a sequence
 * number (seq), counted from the replica's start and never reused, so that a watcher's place survives
 * evictions: the history holds the seqs [headSeq, tailSeq).
 *
 * <p>floor: every event of every revision above it is held. It is the applied op when the history
 * starts (or the state is replaced), and moves up to the revision of each evicted event (that
 * revision is then no longer whole). The oldest revision a watch may start from is floor + 1.
 *
 * <p>Not thread-safe: {@link WatchHub} calls it under its lock.
 */
final class WatchHistory {
  /** Overhead counted per event beside its keys and values (object headers, references, numbers). */
  static final int EVENT_OVERHEAD_BYTES = 96;

  /** One kept event: both forms (with and without the previous value) share their byte strings. */
  record Event(long revision, ByteString key, WatchEvent plain, WatchEvent withPrev, long bytes) {}

  private final int maxEvents;
  private final long maxBytes;
  private Event[] ring = new Event[16];
  private int head; // index of headSeq in ring
  private int size;
  private long headSeq;
  private long bytes;
  private long floor;

  WatchHistory(int maxEvents, long maxBytes) {
    if (maxEvents < 1 || maxBytes < 1) {
      throw new IllegalArgumentException("bad watch history bounds: " + maxEvents + " events, " + maxBytes + " bytes");
    }
    this.maxEvents = maxEvents;
    this.maxBytes = maxBytes;
  }

  long headSeq() {
    return headSeq;
  }

  long tailSeq() {
    return headSeq + size;
  }

  long floor() {
    return floor;
  }

  int size() {
    return size;
  }

  long bytes() {
    return bytes;
  }

  /** The event of seq (headSeq <= seq < tailSeq). */
  Event get(long seq) {
    if (seq < headSeq || seq >= tailSeq()) {
      throw new IndexOutOfBoundsException("seq " + seq + " not in [" + headSeq + ", " + tailSeq() + ")");
    }
    return ring[(head + (int) (seq - headSeq)) % ring.length];
  }

  /** Appends an event (its revision at least every held one's); evicts nothing yet ({@link #trim}). */
  void append(Event e) {
    if (size == ring.length) {
      Event[] bigger = new Event[ring.length * 2];
      for (int i = 0; i < size; i++) {
        bigger[i] = ring[(head + i) % ring.length];
      }
      ring = bigger;
      head = 0;
    }
    ring[(head + size) % ring.length] = e;
    size++;
    bytes += e.bytes();
  }

  /** Evicts the oldest events until the bounds hold, raising the floor; returns how many went. */
  int trim() {
    int evicted = 0;
    while (size > 0 && (size > maxEvents || bytes > maxBytes)) {
      Event e = ring[head];
      ring[head] = null;
      head = (head + 1) % ring.length;
      size--;
      headSeq++;
      bytes -= e.bytes();
      floor = Math.max(floor, e.revision());
      evicted++;
    }
    if (size == 0 && ring.length > 16) {
      ring = new Event[16];
      head = 0;
    }
    return evicted;
  }

  /** Forgets every event: the state is now the one at applied, which becomes the floor. */
  void reset(long applied) {
    headSeq = tailSeq();
    ring = new Event[16];
    head = 0;
    size = 0;
    bytes = 0;
    floor = applied;
  }

  /** The first seq whose event's revision is at least revision (tailSeq when none). */
  long firstSeqAtOrAfter(long revision) {
    long lo = headSeq;
    long hi = tailSeq();
    while (lo < hi) {
      long mid = (lo + hi) >>> 1;
      if (get(mid).revision() < revision) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
}
