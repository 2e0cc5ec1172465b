package io.choir.server.replica;

import io.choir.server.statemachine.KvStateMachine;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * LeaseExpiryPolicy is the decision of lease expiry (docs/lease.md), pure and clock-injected: given the
 * local monotonic time of a check and the applied state machine, which leases the primary should submit
 * expire requests for now. {@link LeaseExpiry} runs it on the node's timer thread; the deterministic
 * simulator runs it on simulated time, so both test the same logic.
 *
 * <p>The replicated clock is estimated from the time_ms of the last applied entry plus the local time
 * elapsed since that value was first seen: never ahead of the primary's clock, which stamps the entry.
 * While the state machine knows no time yet (0), the earliest lease is submitted as a probe. A lease is
 * submitted again only after the retry interval; one that was not sent (this replica was no primary) is
 * forgotten at once ({@link #notSent}). Not thread safe: one caller at a time.
 */
public final class LeaseExpiryPolicy {
  /** The most expire requests one check submits. */
  public static final int MAX_PER_CHECK = 64;

  private final long retryNs;
  /** The lease ids submitted, with the local time they were. */
  private final Map<Long, Long> submittedNs = new HashMap<>();
  private long seenTimeMs;
  private long seenAtNs;

  /** A policy that submits a lease again at most every retryMs. */
  public LeaseExpiryPolicy(long retryMs) {
    this.retryNs = TimeUnit.MILLISECONDS.toNanos(retryMs);
  }

  /**
   * One check at local monotonic time nowNs: the ids of the leases to submit expire requests for now
   * (empty: none), which it counts as submitted at nowNs.
   */
  public List<Long> check(long nowNs, KvStateMachine stateMachine) {
    long applied = stateMachine.lastTimeMs();
    if (applied != seenTimeMs) {
      seenTimeMs = applied;
      seenAtNs = nowNs;
    }
    long earliest = stateMachine.earliestLeaseDeadline();
    if (earliest == Long.MAX_VALUE) {
      submittedNs.clear();
      return List.of();
    }
    List<Long> due = seenTimeMs == 0
        ? stateMachine.leasesExpiredBy(earliest, 1) // the clock is unknown yet: probe with one
        : stateMachine.leasesExpiredBy(estimatedClockMs(nowNs), MAX_PER_CHECK);
    submittedNs.keySet().retainAll(due);
    List<Long> toSubmit = due.stream().filter(id -> {
      Long at = submittedNs.get(id);
      return at == null || nowNs - at >= retryNs;
    }).toList();
    for (Long id : toSubmit) {
      submittedNs.put(id, nowNs);
    }
    return toSubmit;
  }

  /** The replicated clock as this policy estimates it at nowNs (0: unknown yet). */
  public long estimatedClockMs(long nowNs) {
    return seenTimeMs == 0 ? 0 : seenTimeMs + TimeUnit.NANOSECONDS.toMillis(nowNs - seenAtNs);
  }

  /** ids were not sent (this replica was no primary): a primary-to-be must not wait a retry interval. */
  public void notSent(List<Long> ids) {
    ids.forEach(submittedNs::remove);
  }
}
