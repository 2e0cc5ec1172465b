package io.choir.server.core;

import java.util.List;

/**
 * CoreConfig is what the pure core needs to know: the membership and every bound it enforces. Built
 * from the server configuration, or directly by tests and the simulator.
 */
public record CoreConfig(
    int replicaId,
    List<Integer> replicaIds,
    int maxKeyBytes,
    int maxValueBytes,
    int maxBatchOps,
    int maxInFlightOps,
    long maxInFlightBytes,
    int maxQueuedRequests,
    int maxBatchEntries,
    int maxBatchBytes,
    long readTimeoutNs) {

  public CoreConfig {
    replicaIds = List.copyOf(replicaIds.stream().sorted().toList());
    if (!replicaIds.contains(replicaId)) {
      throw new IllegalArgumentException("replica " + replicaId + " not in " + replicaIds);
    }
  }

  /** A single replica with the server's default limits (tests). */
  public static CoreConfig singleReplicaDefaults() {
    return new CoreConfig(1, List.of(1), 4096, 1 << 20, 1000, 8192, 64L << 20, 16_384, 1024, 4 << 20,
        5_000_000_000L);
  }

  /** f+1: how many replicas (the primary counted) must have an entry before it commits. */
  public int quorum() {
    return replicaIds.size() / 2 + 1;
  }

  /** VR: the primary of view v is the replica at position v mod N of the sorted ids. */
  public int primaryOf(long view) {
    return replicaIds.get((int) (view % replicaIds.size()));
  }
}
