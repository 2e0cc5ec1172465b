package io.choir.server.net;

import java.util.concurrent.atomic.AtomicLong;

/**
 * FrameMemory bounds the bytes of client frames buffered and not yet decoded, over all connections
 * (max_frame_bytes_total). Each connection's first {@link #FREE_BYTES} are its own (every small request
 * fits there, so small requests never meet the bound); what a connection holds beyond them it reserves
 * here, and a connection whose frame would pass the bound is answered UNAVAILABLE and closed. Without it,
 * many connections that each start a frame of max_frame_bytes and finish none (each within its frame
 * timeout) would hold max_connections times max_frame_bytes. Thread-safe.
 */
final class FrameMemory {
  /** What a connection may hold without reserving: a small request and the rest of its socket read. */
  static final int FREE_BYTES = 4096;

  private final long limit;
  private final AtomicLong held = new AtomicLong();

  FrameMemory(long limit) {
    if (limit < 1) {
      throw new IllegalArgumentException("max_frame_bytes_total must be positive: " + limit);
    }
    this.limit = limit;
  }

  /** max_frame_bytes_total as set, or for 0 a quarter of the JVM's direct memory limit (where sockets read into). */
  static long limit(long setting) {
    return setting != 0 ? setting : Math.max(FREE_BYTES, DirectMemory.max() / 4);
  }

  long limit() {
    return limit;
  }

  /** Reserves bytes more, unless that would pass the bound (then nothing is reserved). */
  boolean reserve(long bytes) {
    long now = held.get();
    while (true) {
      if (now + bytes > limit) {
        return false;
      }
      long witness = held.compareAndExchange(now, now + bytes);
      if (witness == now) {
        return true;
      }
      now = witness;
    }
  }

  void release(long bytes) {
    held.addAndGet(-bytes);
  }

  /** Bytes reserved now over all connections (status). */
  long held() {
    return held.get();
  }
}
