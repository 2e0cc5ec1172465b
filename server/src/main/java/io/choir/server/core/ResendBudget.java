package io.choir.server.core;

import java.util.Arrays;

/**
 * ResendBudget bounds what NACKs can make this replica send (issue 10, item 6: no request can amplify
 * traffic). Three rules, per asker (by its position in the replica ids):
 *
 * <ol>
 *   <li>Only what the asker can be missing: ops up to the last one it acknowledged to us in this view
 *       (PREPARE_OK or HEARTBEAT_OK, its most recent word: a replica that lost state acknowledges 0
 *       until it has caught up) are in its log, so a NACK for them is answered with nothing. The
 *       caller also clips to what it holds (at most its last op, at least its log's first).</li>
 *   <li>Not what was just sent to it: the {@link ResendTracker} skips an op resent to the same asker
 *       within resend_suppress (and bounds the ops one NACK may examine, skipped ones included).</li>
 *   <li>A byte budget: a token bucket of resend_bytes_per_peer_per_sec bytes per second per asker,
 *       holding at most {@link #BURST_MS} ms worth, driven by the step time the core is given. A NACK
 *       that finds the bucket empty is dropped (counted); one that finds some is answered with at most
 *       that many bytes.</li>
 *   <li>On a cluster without a key, anti-amplification (resend_amplification_limit, QUIC's rule of
 *       RFC 9000 8.1): every message from the asker earns it that many times its bytes in credit (up
 *       to {@link #creditCap}: two padded NACKs' worth), and datagram resends spend it, never beyond. A stranger who forges
 *       NACKs in a member's name (nothing stops that without a key) so makes the replica send at most
 *       that many times what the stranger sent. Resends over the peer TCP stream (entries too big
 *       for a datagram) need no credit: a stream only carries bytes to a member that completed a TCP
 *       connection from its own address.</li>
 * </ol>
 *
 * <p>Pure data with time as an argument: no clock of its own (STYLE.md habit 2).
 */
final class ResendBudget {
  /**
   * The bucket holds this many milliseconds of the rate: a backup that comes back from a pause gets
   * one quick burst, then the steady rate (aeron's and RFC 5401's pacing of retransmissions).
   */
  static final long BURST_MS = 250;

  private final long bytesPerSec;
  private final long capacity;
  private long[] tokens;
  private long[] refilledAtNs;
  /** The op each replica last acknowledged to us in this view (its latest word, which may go down). */
  private long[] acknowledged;
  private final int amplification;
  private final long creditCap;
  private long[] credit;

  /** bytesPerSec <= 0: no byte budget (only the first two rules). */
  ResendBudget(int replicas, long bytesPerSec) {
    this(replicas, bytesPerSec, 0, 0);
  }

  /**
   * amplification <= 0: no credit rule; else each asker's credit, earned at that many times its bytes,
   * holds at most creditCap bytes.
   */
  ResendBudget(int replicas, long bytesPerSec, int amplification, long creditCap) {
    this.amplification = Math.max(0, amplification);
    this.creditCap = Math.max(1, creditCap);
    this.credit = new long[replicas];
    this.bytesPerSec = bytesPerSec;
    this.capacity = bytesPerSec <= 0 ? Long.MAX_VALUE : Math.max(1, bytesPerSec / 1000 * BURST_MS);
    this.tokens = new long[replicas];
    this.refilledAtNs = new long[replicas];
    this.acknowledged = new long[replicas];
    Arrays.fill(tokens, capacity);
    Arrays.fill(refilledAtNs, Long.MIN_VALUE);
  }

  /**
   * The members changed: position i of the new layout is what position oldIndex[i] held (-1: a new
   * member, with a full bucket, no credit and nothing acknowledged).
   */
  void remap(int[] oldIndex) {
    long[] t = new long[oldIndex.length];
    long[] r = new long[oldIndex.length];
    long[] a = new long[oldIndex.length];
    long[] c = new long[oldIndex.length];
    for (int i = 0; i < oldIndex.length; i++) {
      int o = oldIndex[i];
      t[i] = o < 0 ? capacity : tokens[o];
      r[i] = o < 0 ? Long.MIN_VALUE : refilledAtNs[o];
      a[i] = o < 0 ? 0 : acknowledged[o];
      c[i] = o < 0 ? 0 : credit[o];
    }
    tokens = t;
    refilledAtNs = r;
    acknowledged = a;
    credit = c;
  }

  /** Whether datagram resends are limited by credit earned (a cluster without a key). */
  boolean limited() {
    return amplification > 0;
  }

  /** A message of wireBytes arrived from the asker: it earns amplification times that in credit. */
  void received(int index, long wireBytes) {
    if (amplification > 0) {
      credit[index] = Math.min(creditCap, credit[index] + amplification * Math.max(0, Math.min(wireBytes, creditCap)));
    }
  }

  /** Credit the asker has for datagram resends (Long.MAX_VALUE without the credit rule). */
  long credit(int index) {
    return amplification > 0 ? credit[index] : Long.MAX_VALUE;
  }

  /** Spends bytes of the asker's credit (never below zero: callers send only what fits). */
  void spendCredit(int index, long bytes) {
    if (amplification > 0) {
      credit[index] = Math.max(0, credit[index] - bytes);
    }
  }

  /** The asker's latest acknowledgement in this view (PREPARE_OK or HEARTBEAT_OK op). */
  void acknowledged(int index, long op) {
    acknowledged[index] = op;
  }

  /** A new view: what was acknowledged in the old one says nothing of the new log. */
  void newView() {
    Arrays.fill(acknowledged, 0);
  }

  /** The first op the asker can be missing: just above what it acknowledged. */
  long firstMissing(int index) {
    return acknowledged[index] + 1;
  }

  /** Bytes the asker may be sent now (refilling its bucket up to nowNs), at most the capacity. */
  long available(int index, long nowNs) {
    if (bytesPerSec <= 0) {
      return Long.MAX_VALUE;
    }
    if (refilledAtNs[index] == Long.MIN_VALUE) {
      refilledAtNs[index] = nowNs;
    }
    long elapsedNs = nowNs - refilledAtNs[index];
    if (elapsedNs > 0) {
      // In double, and at most a bucketful: no overflow whatever the rate and the time elapsed.
      long refill = (long) Math.min((double) capacity, (double) bytesPerSec * elapsedNs / 1e9);
      if (refill > 0) {
        tokens[index] = Math.min(capacity, tokens[index] + refill);
        refilledAtNs[index] = nowNs;
      }
    }
    return Math.max(0, tokens[index]);
  }

  /** Spends bytes of the asker's bucket (it may go below zero by one entry's overshoot: repaid later). */
  void spend(int index, long bytes) {
    if (bytesPerSec > 0) {
      tokens[index] -= bytes;
    }
  }
}
