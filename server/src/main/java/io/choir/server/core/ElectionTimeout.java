package io.choir.server.core;

import java.util.SplittableRandom;

/**
 * ElectionTimeout draws a replica's randomized election timeouts in [T, 2T) (VR Revisited 4.2 step 1;
 * Raft's randomized timeouts), so that replicas rarely time out together. It draws from the replica's
 * one seeded random source, shared with GapRepair and the recovery nonce: the simulator replays a run
 * from its seed only while every part draws from it in the same order.
 */
final class ElectionTimeout {
  private final long quorumTimeoutNs;
  private final SplittableRandom random;

  ElectionTimeout(long quorumTimeoutNs, SplittableRandom random) {
    this.quorumTimeoutNs = quorumTimeoutNs;
    this.random = random;
  }

  /** An election timeout in [T, 2T). */
  long draw() {
    return quorumTimeoutNs + random.nextLong(Math.max(1, quorumTimeoutNs));
  }
}
