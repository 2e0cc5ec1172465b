package io.choir.server.statemachine;

import io.choir.server.storage.Versioned;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * RecentValues remembers the applied value (or the absence) of recently written and read keys, so that
 * a put, delete or compare-and-set does not read RocksDB for the value it replaces (the version, the
 * previous value of a watch event): at 64 clients that read was about a third of the apply thread's
 * CPU. It is a least-recently-used map bounded by bytes (keys and values, plus a fixed overhead per
 * entry), so its memory never grows past maxBytes whatever the key space.
 *
 * <p>It holds only what is applied and written: {@link #learned} records a value read from storage
 * (the applied state), {@link #written} the changes of an apply call once its write set is in
 * storage. Whoever replaces the state (a load, a state-transfer install, a failed write) calls {@link
 * #clear}. Apply thread only, except {@link #readable}.
 *
 * <p>Readers on other threads (Gets on the event loops and the read pool) see it through {@link
 * #readable}: a concurrent map holding the same keys, which answers a Get with one hash lookup instead
 * of a search of RocksDB's memtables (in workload B that search was about a fifth of the primary's
 * CPU). It holds for each of its keys what storage holds, except from {@link #writing} (an apply
 * call's write set is about to go to storage) until {@link #published} (that call's changes are in
 * it): meanwhile storage may be ahead, so readers go to storage. A sequence lock on a generation
 * number, odd in that window, tells readers; so an answer from it is storage's at one moment between
 * two apply calls' writes, never part of one call, and, as the applied number moves on only after
 * {@link #published}, never older than the applied number a reader read before it. An entry evicted,
 * too large or cleared leaves it at once (its readers go to storage, which holds at least as much).
 */
final class RecentValues {
  /** What an entry costs beyond its key and value bytes: the map node, the key wrapper, the Versioned. */
  static final int ENTRY_OVERHEAD_BYTES = 144;
  /** A cached absence: the key is not in the state. */
  static final Versioned ABSENT = new Versioned(new byte[0], -1);

  private final long maxBytes;
  private final LinkedHashMap<Key, Versioned> values = new LinkedHashMap<>(1024, 0.75f, true);
  /** What readers on other threads see: a subset of values, changed as the class comment says. */
  private final ConcurrentHashMap<Key, Versioned> readable = new ConcurrentHashMap<>(1024);
  /**
   * Odd from {@link #writing} (before an apply call's write set goes to storage) until {@link
   * #published}: meanwhile storage may hold more than readable, so readers go to storage. Written by
   * the apply thread only.
   */
  private volatile long generation;
  private long bytes;
  private long hits;
  private long misses;

  /** A cache of at most maxBytes; 0 turns it off (every lookup misses, nothing is kept). */
  RecentValues(long maxBytes) {
    if (maxBytes < 0) {
      throw new IllegalArgumentException("maxBytes must be at least 0: " + maxBytes);
    }
    this.maxBytes = maxBytes;
  }

  /** Looked is a lookup's outcome: known (value null means absent), or not known here. */
  record Looked(boolean known, Versioned value) {
    static final Looked UNKNOWN = new Looked(false, null);
  }

  Looked lookup(byte[] key) {
    if (maxBytes == 0) {
      misses++;
      return Looked.UNKNOWN;
    }
    Versioned v = values.get(new Key(key));
    if (v == null) {
      misses++;
      return Looked.UNKNOWN;
    }
    hits++;
    return new Looked(true, v == ABSENT ? null : v);
  }

  /** The applied state holds value (null: nothing) at key, as read from storage. */
  void learned(byte[] key, Versioned value) {
    remember(key, value);
  }

  /** An apply call's write set holding this change is in storage (value null: key deleted). */
  void written(byte[] key, Versioned value) {
    remember(key, value);
  }

  /** An apply call's write set is about to go to storage: readers go to storage until {@link #published}. */
  void writing() {
    if ((generation & 1) == 0) {
      generation++;
    }
  }

  /** The apply call's write set is in storage and its changes are {@link #written}: readers may use readable again. */
  void published() {
    if ((generation & 1) != 0) {
      generation++;
    }
  }

  /**
   * What a reader on any thread may answer for key: null when not known here (or while an apply call's
   * write set goes to storage), {@link #ABSENT} when the state does not hold it, else its value. The
   * answer is storage's for that key at one moment of the call, between two apply calls' writes (a
   * sequence lock on the generation): a reader never sees part of an apply call, nor less than storage
   * held when the caller read the applied number.
   */
  Versioned readable(byte[] key) {
    long g = generation;
    if ((g & 1) != 0 || readable.isEmpty()) {
      return null;
    }
    Versioned v = readable.get(new Key(key));
    return generation == g ? v : null;
  }

  /** Forgets everything (the state was replaced or may differ from what is remembered). */
  void clear() {
    writing();
    readable.clear();
    values.clear();
    bytes = 0;
    generation++; // even: readers find nothing until something is written again
  }

  long bytes() {
    return bytes;
  }

  int size() {
    return values.size();
  }

  long hits() {
    return hits;
  }

  long misses() {
    return misses;
  }

  private void remember(byte[] key, Versioned value) {
    if (maxBytes == 0) {
      return;
    }
    Versioned stored = value == null ? ABSENT : value;
    long cost = cost(key, stored);
    Key k = new Key(key);
    if (cost > maxBytes / 4) { // a huge value would push out everything else: not kept
      readable.remove(k);
      Versioned old = values.remove(k);
      if (old != null) {
        bytes -= cost(key, old);
      }
      return;
    }
    Versioned old = values.put(k, stored);
    readable.put(k, stored);
    bytes += cost - (old == null ? 0 : cost(key, old));
    if (bytes > maxBytes) {
      var it = values.entrySet().iterator();
      while (bytes > maxBytes && it.hasNext()) {
        Map.Entry<Key, Versioned> eldest = it.next();
        bytes -= cost(eldest.getKey().bytes, eldest.getValue());
        readable.remove(eldest.getKey());
        it.remove();
      }
    }
  }

  private static long cost(byte[] key, Versioned v) {
    return (long) key.length + v.value().length + ENTRY_OVERHEAD_BYTES;
  }

  /** Key wraps a byte[] with value equality (the caller does not change the array afterwards). */
  private record Key(byte[] bytes) {
    @Override
    public boolean equals(Object other) {
      return other instanceof Key key && Arrays.equals(bytes, key.bytes);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(bytes);
    }
  }
}
