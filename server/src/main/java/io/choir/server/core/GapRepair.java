package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.OpRange;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * GapRepair owns a backup's side of loss repair (DESIGN.md "Loss, repair and flow"; NACK timing after
 * RFC 5401): what it knows of the primary's log (its last op, commit and first op), the entries that
 * arrived beyond a gap (a bounded buffer), and when to NACK the gaps: after a random first delay (so a
 * multicast resend to another backup may fill this gap too), then with exponential backoff until they
 * are filled. Placing entries in the log is the log's job; this part hands them over in op order.
 */
final class GapRepair {
  private final CoreConfig config;
  /** The core's one seeded source: repair draws from it in step order, like every other part. */
  private final SplittableRandom random;
  private final TreeMap<Long, Entry> outOfOrder = new TreeMap<>();
  /** Bytes of the entries waiting beyond a gap (at most maxInFlightBytes). */
  private long outOfOrderBytes;
  /** The highest op this backup knows the primary's log holds. */
  private long knownLastOp;
  /** The highest commit number the primary has sent. */
  private long primaryCommit;
  /** The first op the primary's log holds (below it: state transfer). */
  private long primaryLogFirstOp = 1;
  /** When the next NACK is due, while there is a gap. */
  private OptionalLong nackDueNs = OptionalLong.empty();
  /** NACKs sent for the current gaps (the backoff doubles with each). */
  private int nackAttempts;

  GapRepair(CoreConfig config, SplittableRandom random, long knownLastOp) {
    this.config = config;
    this.random = random;
    this.knownLastOp = knownLastOp;
  }

  long knownLastOp() {
    return knownLastOp;
  }

  long primaryCommit() {
    return primaryCommit;
  }

  /** The primary's log reaches op at least. */
  void learnLastOp(long op) {
    knownLastOp = Math.max(knownLastOp, op);
  }

  /** The primary's commit number is commit at least; returns the highest known. */
  long learnPrimaryCommit(long commit) {
    primaryCommit = Math.max(primaryCommit, commit);
    return primaryCommit;
  }

  void learnPrimaryLogFirstOp(long op) {
    primaryLogFirstOp = Math.max(primaryLogFirstOp, op);
  }

  /** True when the ops after verifiedOp that this backup lacks are below what the primary's log holds. */
  boolean belowPrimaryLog(long verifiedOp) {
    return verifiedOp + 1 < primaryLogFirstOp && knownLastOp > verifiedOp;
  }

  boolean buffered(long op) {
    return outOfOrder.containsKey(op);
  }

  /** Keeps e, beyond a gap, until the gap is filled; drops it when the buffer is full (the NACK brings it back). */
  void buffer(Entry e, Counters counters) {
    if (outOfOrder.size() < config.maxOutOfOrderEntries
        && outOfOrderBytes + e.getSerializedSize() <= config.maxInFlightBytes) {
      outOfOrder.put(e.getOp(), e);
      outOfOrderBytes += e.getSerializedSize();
    } else {
      counters.outOfOrderDropped++; // bounded buffer: the NACK will bring it back
    }
  }

  /**
   * The buffered entry for op verifiedOp + 1, removed, or null; buffered entries at or below verifiedOp
   * are dropped on the way (they were placed otherwise).
   */
  Entry takeNext(long verifiedOp) {
    while (!outOfOrder.isEmpty()) {
      Map.Entry<Long, Entry> first = outOfOrder.firstEntry();
      if (first.getKey() > verifiedOp + 1) {
        return null;
      }
      outOfOrder.pollFirstEntry();
      outOfOrderBytes -= first.getValue().getSerializedSize();
      if (first.getKey() == verifiedOp + 1) {
        return first.getValue();
      }
    }
    return null;
  }

  /** Adopting a new view: what is known of its primary's log starts from our commit. */
  void newView(long commitOp) {
    outOfOrder.clear();
    outOfOrderBytes = 0;
    knownLastOp = commitOp;
    primaryCommit = commitOp;
    primaryLogFirstOp = 1;
    nackDueNs = OptionalLong.empty();
    nackAttempts = 0;
  }

  /** Rejoining after recovery (VR 4.3): the primary said its last op and commit. */
  void rejoin(long knownLastOp, long primaryCommit) {
    this.primaryCommit = primaryCommit;
    this.knownLastOp = knownLastOp;
  }

  /** This replica became primary with lastOp as its log's last op: it repairs nothing. */
  void becamePrimary(long lastOp) {
    outOfOrder.clear();
    outOfOrderBytes = 0;
    knownLastOp = lastOp;
    primaryCommit = 0;
    nackDueNs = OptionalLong.empty();
  }

  /**
   * Schedules a NACK when there is a gap (a random first delay, RFC 5401), forgets it when not, and
   * asks for the tick it is due at.
   */
  void schedule(boolean gap, long nowNs, Counters counters, Effects out) {
    if (!gap) {
      nackDueNs = OptionalLong.empty();
      nackAttempts = 0;
      return;
    }
    if (nackDueNs.isEmpty()) {
      counters.gapsDetected++;
      // A random first delay lets a multicast resend to another replica fill this gap too (RFC 5401).
      nackDueNs = OptionalLong.of(nowNs + (config.nackDelayNs > 0 ? random.nextLong(config.nackDelayNs) : 0));
    }
    out.tickBy(nackDueNs.getAsLong());
  }

  /**
   * A repair arrives piece by piece (each NACK answer is bounded): when a NACK is scheduled, asks for
   * the next piece soon rather than after the backoff the earlier NACKs built up.
   */
  void progressed(long nowNs) {
    if (nackDueNs.isPresent()) {
      nackAttempts = 0;
      nackDueNs = OptionalLong.of(Math.min(nackDueNs.getAsLong(),
          nowNs + (config.nackDelayNs > 0 ? random.nextLong(config.nackDelayNs) : 0)));
    }
  }

  /**
   * The gaps to NACK now, when a NACK is due (the next one is then scheduled with backoff); empty when
   * none is due or there are no gaps left.
   */
  List<OpRange> dueNack(long nowNs, long verifiedOp) {
    if (nackDueNs.isEmpty() || nowNs < nackDueNs.getAsLong()) {
      return List.of();
    }
    List<OpRange> ranges = missingRanges(verifiedOp, config.maxNackRanges);
    if (ranges.isEmpty()) {
      nackDueNs = OptionalLong.empty();
      nackAttempts = 0;
      return ranges;
    }
    nackAttempts++;
    long backoff = Math.min(config.nackBackoffMaxNs,
        Math.max(config.nackDelayNs, 1_000_000L) << Math.min(nackAttempts, 20));
    nackDueNs = OptionalLong.of(nowNs + backoff / 2 + random.nextLong(Math.max(1, backoff / 2)));
    return ranges;
  }

  /** When the next NACK is due, if one is scheduled. */
  OptionalLong nackDueNs() {
    return nackDueNs;
  }

  /** The gaps between verifiedOp and knownLastOp, minus what waits in the out-of-order buffer. */
  private List<OpRange> missingRanges(long verifiedOp, int max) {
    List<OpRange> ranges = new ArrayList<>();
    long from = verifiedOp + 1;
    for (long buffered : outOfOrder.keySet()) {
      if (ranges.size() >= max) {
        return ranges;
      }
      if (buffered > from) {
        ranges.add(OpRange.newBuilder().setFirst(from).setLast(buffered - 1).build());
      }
      from = Math.max(from, buffered + 1);
    }
    if (from <= knownLastOp && ranges.size() < max) {
      ranges.add(OpRange.newBuilder().setFirst(from).setLast(knownLastOp).build());
    }
    return ranges;
  }

  /** Null when the buffer is within its bounds, else what is not. */
  String boundsViolation() {
    if (outOfOrder.size() > config.maxOutOfOrderEntries || outOfOrderBytes > config.maxInFlightBytes) {
      return "out-of-order buffer " + outOfOrder.size() + " entries, " + outOfOrderBytes + " bytes";
    }
    return null;
  }

  int buffered() {
    return outOfOrder.size();
  }
}
