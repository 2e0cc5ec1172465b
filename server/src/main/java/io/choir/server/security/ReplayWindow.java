package io.choir.server.security;

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
 * thread-safe: the transport's one receiving thread owns it. State is fixed: about 0.5 KiB.
 */
public final class ReplayWindow {
  /**
   * Counters remembered below the highest. Multicast and unicast of one sender arrive on two sockets
   * whose datagrams the event loop interleaves, and a receive buffer holds thousands: 4096 keeps every
   * reordering those buffers allow inside the window, at 512 bytes per member.
   */
  public static final int WINDOW_BITS = 4096;

  private final long[] bits = new long[WINDOW_BITS / 64];
  private long epoch = -1;
  private long highest = -1;

  /** True when a datagram (epoch, counter) of this sender has not been accepted and may be. */
  public boolean isFresh(long epoch, long counter) {
    if (this.epoch < 0 || epoch > this.epoch) {
      return true;
    }
    if (epoch < this.epoch) {
      return false;
    }
    if (counter > highest) {
      return true;
    }
    if (highest - counter >= WINDOW_BITS) {
      return false;
    }
    return !bit(counter);
  }

  /** Records (epoch, counter) as accepted; call only when {@link #isFresh} said so and the seal opened. */
  public void accept(long epoch, long counter) {
    if (this.epoch < 0 || epoch > this.epoch) {
      this.epoch = epoch;
      this.highest = counter;
      java.util.Arrays.fill(bits, 0);
      set(counter);
      return;
    }
    if (epoch != this.epoch) {
      throw new IllegalStateException("accept of an older epoch " + epoch + " < " + this.epoch);
    }
    if (counter > highest) {
      if (counter - highest >= WINDOW_BITS) {
        java.util.Arrays.fill(bits, 0);
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
