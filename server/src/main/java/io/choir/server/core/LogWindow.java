package io.choir.server.core;

import io.choir.proto.Entry;

/**
 * LogWindow holds the entries the core still needs in memory, ops base+1 .. last in a growable ring:
 * appended at the top, released from the bottom once applied. Its size is bounded by the flow-control
 * window (max_in_flight_ops) plus the entries committed but not yet applied.
 */
final class LogWindow {
  private Entry[] ring = new Entry[64];
  private long base; // op of the entry just below the first one held
  private int size;

  LogWindow(long base) {
    this.base = base;
  }

  long base() {
    return base;
  }

  long last() {
    return base + size;
  }

  int size() {
    return size;
  }

  void append(Entry e) {
    if (e.getOp() != last() + 1) {
      throw new IllegalStateException("append op " + e.getOp() + " after " + last());
    }
    if (size == ring.length) {
      Entry[] bigger = new Entry[ring.length * 2];
      for (int i = 0; i < size; i++) {
        bigger[i] = ring[index(base + 1 + i)];
      }
      ring = bigger;
      // After copying, entry base+1+i sits at i: rebase the ring so index() maps it there.
      offset = (int) Math.floorMod(-(base + 1), (long) ring.length);
    }
    ring[index(e.getOp())] = e;
    size++;
  }

  Entry get(long op) {
    if (op <= base || op > last()) {
      throw new IllegalArgumentException("op " + op + " not in (" + base + ", " + last() + "]");
    }
    return ring[index(op)];
  }

  /** Releases every entry up to op (inclusive). */
  void releaseUpTo(long op) {
    while (base < op && size > 0) {
      ring[index(base + 1)] = null;
      base++;
      size--;
    }
    if (size == 0 && base < op) {
      base = op;
    }
  }

  /** Removes every entry above op (a new view replaces an uncommitted suffix). */
  void truncateAfter(long op) {
    if (op < base) {
      throw new IllegalArgumentException("truncate after " + op + " below the window base " + base);
    }
    while (last() > op) {
      ring[index(last())] = null;
      size--;
    }
  }

  private int offset;

  private int index(long op) {
    return (int) Math.floorMod(op + offset, (long) ring.length);
  }
}
