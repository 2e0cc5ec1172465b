package io.choir.client;

import io.choir.proto.LeaseInfo;

/**
 * LeaseStatus is one lease as a replica's applied state holds it (docs/lease.md).
 *
 * @param id the lease's id (the op of its grant)
 * @param ttlMs its time to live, as granted (raised to the cluster's minimum)
 * @param remainingMs the time it has left, by the replicated clock, as of the answer (0: its deadline
 *     passed and the primary is about to expire it)
 * @param keys the number of keys attached to it
 */
public record LeaseStatus(long id, long ttlMs, long remainingMs, int keys) {
  static LeaseStatus fromProto(LeaseInfo info) {
    return new LeaseStatus(info.getId(), info.getTtlMs(), Math.max(0, info.getDeadlineMs() - info.getNowMs()),
        info.getKeys());
  }
}
