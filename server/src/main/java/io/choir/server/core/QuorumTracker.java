package io.choir.server.core;

import java.util.Arrays;
import java.util.List;

/**
 * QuorumTracker owns what the primary knows of every replica in the current view (VR Revisited 4.1
 * steps 4-5; Raft's progress tracker): the highest op each has acknowledged as persisted, when it was
 * last heard from (CheckQuorum: a primary that hears fewer than f backups within the election timeout
 * goes quiet), and the highest heartbeat round each has answered (linearizable reads, ReadIndex). It
 * also numbers the heartbeat rounds. Replicas are counted by their position in replicaIds.
 */
final class QuorumTracker {
  private final int n;
  private final int self;
  private final List<Integer> replicaIds;
  private final int quorum;
  private final long quorumTimeoutNs;
  /** COMMIT_ALONE (test_break_protocol: commit-alone) is a deliberate bug: a quorum of one. */
  private final boolean commitAlone;
  /** Highest op each replica has acknowledged as persisted, this view. */
  private final long[] acked;
  private final long[] lastHeardNs;
  /** Highest heartbeat round each replica has answered, this view. */
  private final long[] roundAcked;
  /** The last heartbeat round sent (they count up across views). */
  private long round;

  QuorumTracker(CoreConfig config) {
    this.replicaIds = config.replicaIds();
    this.n = replicaIds.size();
    this.self = replicaIds.indexOf(config.replicaId());
    this.quorum = config.quorum();
    this.quorumTimeoutNs = config.quorumTimeoutNs;
    this.commitAlone = config.breakage == CoreConfig.Breakage.COMMIT_ALONE;
    this.acked = new long[n];
    this.lastHeardNs = new long[n];
    this.roundAcked = new long[n];
  }

  /** The position of replicaId in replicaIds, or -1 when it is no member. */
  int indexOf(int replicaId) {
    return replicaIds.indexOf(replicaId);
  }

  /** Everyone counts as heard at nowNs (a grace period: nobody is presumed dead at start). */
  void heardAll(long nowNs) {
    Arrays.fill(lastHeardNs, nowNs);
  }

  void heard(int index, long nowNs) {
    lastHeardNs[index] = nowNs;
  }

  /** Replicas (this one included) heard from within the election timeout. */
  int live(long nowNs) {
    int live = 1;
    for (int i = 0; i < n; i++) {
      if (i != self && nowNs - lastHeardNs[i] < quorumTimeoutNs) {
        live++;
      }
    }
    return live;
  }

  /** This replica's own durable log reaches op. */
  void selfPersisted(long op) {
    acked[self] = op;
  }

  /** Replica index acknowledged op (capped at lastOp); true when that is news. */
  boolean ack(int index, long op, long lastOp) {
    if (op > acked[index]) {
      acked[index] = Math.min(op, lastOp);
      return true;
    }
    return false;
  }

  /**
   * The highest op that f+1 replicas have persisted in this view, at most lastOp; this replica's own
   * copy counts only when selfCounts (its last normal view of this view is on disk, as for a backup's ack).
   */
  long commit(boolean selfCounts, long lastOp) {
    long[] sorted = acked.clone();
    if (!selfCounts) {
      sorted[self] = 0;
    }
    Arrays.sort(sorted);
    long c = sorted[n - (commitAlone ? 1 : quorum)];
    return Math.min(c, lastOp);
  }

  /** The lowest op every replica has acknowledged: the log below it is needed by nobody. */
  long lowWatermark() {
    return Arrays.stream(acked).min().orElse(0);
  }

  /** The last heartbeat round sent. */
  long round() {
    return round;
  }

  /** Numbers a new heartbeat round. */
  long nextRound() {
    return ++round;
  }

  void roundAnswered(int index, long answered) {
    roundAcked[index] = Math.max(roundAcked[index], answered);
  }

  /** The highest heartbeat round that f backups have answered in this view. */
  long confirmedRound() {
    if (n == 1) {
      return Long.MAX_VALUE;
    }
    long[] rounds = new long[n - 1];
    int k = 0;
    for (int i = 0; i < n; i++) {
      if (i != self) {
        rounds[k++] = roundAcked[i];
      }
    }
    Arrays.sort(rounds);
    return rounds[rounds.length - n / 2];
  }

  /** A view is left: answers to rounds of it say nothing of the next. */
  void forgetRounds() {
    Arrays.fill(roundAcked, 0);
  }

  /** This replica starts a view as its primary with its log persisted up to persistedOp. */
  void startView(long persistedOp, long nowNs) {
    Arrays.fill(acked, 0);
    acked[self] = persistedOp;
    Arrays.fill(lastHeardNs, nowNs);
    Arrays.fill(roundAcked, 0);
  }
}
