package io.choir.server.metrics;

import io.choir.proto.MemberRole;
import io.choir.proto.ReplicaStatus;

/**
 * ReplicaSnapshot is one consistent look at a replica, taken on its loop thread: its status (what
 * `choir status` shows, every counter included) and what readiness needs besides.
 *
 * @param status the STATUS reply's replica part
 * @param logFirstOp the first op the log still holds (log entries = op - logFirstOp + 1)
 * @param pendingReads reads waiting in the core (for the applied state or a heartbeat round)
 * @param mustCatchUp the replica lost state it may have acknowledged and catches up before it votes
 * @param multiReplica the replica has peers (a single replica never hears a primary)
 * @param primarySilentNs for a backup: how long since the loop last took a message from its primary
 *     (Long.MAX_VALUE: never); 0 for a primary or a single replica
 * @param refusing why the replica refuses every request (shutting down, a fatal error), or null
 * @param takenNs when it was taken (System.nanoTime())
 */
public record ReplicaSnapshot(ReplicaStatus status, long logFirstOp, int pendingReads, boolean mustCatchUp,
    boolean multiReplica, long primarySilentNs, String refusing, long takenNs) {

  /** Log entries held (op - first op + 1, at least 0). */
  public long logEntries() {
    return Math.max(0, status.getOp() - logFirstOp + 1);
  }

  /** A counter of the status by name, 0 when it has none. */
  public long counter(String name) {
    return status.getCountersOrDefault(name, 0L);
  }

  /**
   * Why this replica is not ready, or null when it is: it must serve (not refusing), be in a normal
   * view (not in a view change or recovering), be a voter or a learner (not retired, removed or a
   * joiner not yet added), not catch up (a state transfer pending, an incomplete log, lost state), have
   * applied within lagToleranceOps of the highest op it knows of and of its commit number, and, as a
   * backup, have heard its primary within primarySilenceNs.
   */
  public String notReadyReason(long lagToleranceOps, long primarySilenceNs) {
    String role = status.getRole();
    if (refusing != null) {
      return "refusing requests: " + refusing;
    }
    if (status.getMemberRole() == MemberRole.RETIRED) {
      return "not a member of epoch " + status.getEpoch() + " (retired, removed or not yet added)";
    }
    if (role.equals("view-change") || role.equals("recovering")) {
      return "not in a normal view (" + role + ", view " + status.getView() + ")";
    }
    if (role.equals("catching-up") || mustCatchUp) {
      return "catching up (applied " + status.getApplied() + ")";
    }
    long lag = counter("lag");
    long behindCommit = status.getCommit() - status.getApplied();
    if (lag > lagToleranceOps || behindCommit > lagToleranceOps) {
      return "applied " + status.getApplied() + " is " + Math.max(lag, behindCommit) + " ops behind (commit "
          + status.getCommit() + ", tolerance " + lagToleranceOps + ")";
    }
    if (multiReplica && !role.equals("primary") && primarySilentNs > primarySilenceNs) {
      return "no word from primary " + status.getPrimaryId() + " for "
          + (primarySilentNs == Long.MAX_VALUE ? "ever" : primarySilentNs / 1_000_000 + " ms");
    }
    return null;
  }
}
