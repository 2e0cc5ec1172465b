package io.choir.server.security;

import java.util.Arrays;

/**
 * ReplayWindow remembers which sealed datagrams of one sender were accepted, so that a copy of one
 * (captured and sent again by anyone) is dropped: the sender's epoch (its start number), the highest
 * counter accepted in that epoch, and a bitmap of the last {@link #WINDOW_BITS} counters below it
 * (RFC 6479, IPsec anti-replay without bit shifting: the bitmap is a ring indexed by counter).
 *
 * <p>A datagram of an older epoch than the newest accepted is a replay of an earlier start of that
 * sender and is refused; one of a newer epoch starts a fresh window. A counter more than WINDOW_BITS
 * below the highest is refused too (it cannot be told apart from a replay); a real one that late is
 * repaired like any lost datagram (NACK).
 *
 * <p>Use: {@link #isFresh} before opening the seal (cheap, and refuses a replay without the cost of
 * AES-GCM), {@link #accept} only after the seal opened, so that forgeries never move the window. Not
 * thread-safe: the transport's one receiving thread owns it. State is fixed: about 2 KiB.
 */
public final class ReplayWindow {
  /**
   * Counters remembered below the highest. Multicast and unicast of one sender arrive on two sockets
   * whose datagrams the event loop interleaves, so one socket's backlog can be overtaken by the other's
   * newer datagrams: the default receive buffer (receive_buffer_bytes 4 MiB, which Linux doubles, at
   * about 1 KiB of kernel memory per small datagram) holds about 8,000, and 16,384 keeps that whole
   * backlog inside the window, at 2 KiB per member. A datagram later than that is dropped as
   * below_window and repaired by NACK like a lost one.
   */
  public static final int WINDOW_BITS = 16_384;

  /** What the window says of a datagram (epoch, counter) of its sender. */
  public enum Check {
    /** Not accepted before: may be opened. */
    FRESH,
    /** Accepted before: a replay. */
    SEEN,
    /** Of an earlier epoch than the newest accepted: a replay of an earlier start of the sender. */
    OLD_EPOCH,
    /** More than WINDOW_BITS below the highest counter: a replay, or a datagram far too late. */
    BELOW_WINDOW
  }

  private final long[] bits = new long[WINDOW_BITS / 64];
  private long epoch = -1;
  private long highest = -1;

  /** What the window says of a datagram (epoch, counter) of this sender. */
  public Check check(long epoch, long counter) {
    if (this.epoch < 0 || epoch > this.epoch) {
      return Check.FRESH;
    }
    if (epoch < this.epoch) {
      return Check.OLD_EPOCH;
    }
    if (counter > highest) {
      return Check.FRESH;
    }
    if (highest - counter >= WINDOW_BITS) {
      return Check.BELOW_WINDOW;
    }
    return bit(counter) ? Check.SEEN : Check.FRESH;
  }

  /** True when a datagram (epoch, counter) of this sender has not been accepted and may be. */
  public boolean isFresh(long epoch, long counter) {
    return check(epoch, counter) == Check.FRESH;
  }

  /** Records (epoch, counter) as accepted; call only when {@link #isFresh} said so and the seal opened. */
  public void accept(long epoch, long counter) {
    if (this.epoch < 0 || epoch > this.epoch) {
      this.epoch = epoch;
      this.highest = counter;
      Arrays.fill(bits, 0);
      set(counter);
      return;
    }
    if (epoch != this.epoch) {
      throw new IllegalStateException("accept of an older epoch " + epoch + " < " + this.epoch);
    }
    if (counter > highest) {
      if (counter - highest >= WINDOW_BITS) {
        Arrays.fill(bits, 0);
      } else {
        for (long c = highest + 1; c < counter; c++) {
          clear(c);
        }
      }
      highest = counter;
    }
    set(counter);
  }

  /** The newest epoch accepted, -1 before the first. */
  public long epoch() {
    return epoch;
  }

  /** The highest counter accepted in {@link #epoch()}, -1 before the first. */
  public long highest() {
    return highest;
  }

  private boolean bit(long counter) {
    int i = (int) (counter % WINDOW_BITS);
    return (bits[i >>> 6] & (1L << (i & 63))) != 0;
  }

  private void set(long counter) {
    int i = (int) (counter % WINDOW_BITS);
    bits[i >>> 6] |= 1L << (i & 63);
  }

  private void clear(long counter) {
    int i = (int) (counter % WINDOW_BITS);
    bits[i >>> 6] &= ~(1L << (i & 63));
  }
}
