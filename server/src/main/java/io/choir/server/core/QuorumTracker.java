package io.choir.server.core;

import java.util.Arrays;
import java.util.List;

/**
 * QuorumTracker owns what the primary knows of every replica in the current view (VR Revisited 4.1
 * steps 4-5; Raft's progress tracker): the highest op each has acknowledged as persisted, when it was
 * last heard from (CheckQuorum: a primary that hears fewer than f backups within the election timeout
 * goes quiet), and the highest heartbeat round each has answered (linearizable reads, ReadIndex). It
 * also numbers the heartbeat rounds. Replicas are counted by their position among the members (Members:
 * voters, then learners); only voters count toward a quorum, learners only toward the low watermark.
 */
final class QuorumTracker {
  private final Members members;
  private final long quorumTimeoutNs;
  /** COMMIT_ALONE (test_break_protocol: commit-alone) is a deliberate bug: a quorum of one. */
  private final boolean commitAlone;
  /** The membership the arrays are laid out for (positions: Members.indexOf). */
  private List<Integer> ids;
  private boolean[] voter;
  private int n;
  private int self;
  private int voters;
  private int quorum;
  /** Highest op each replica has acknowledged as persisted, this view. */
  private long[] acked;
  private long[] lastHeardNs;
  /** Highest heartbeat round each replica has answered, this view. */
  private long[] roundAcked;
  /** The last heartbeat round sent (they count up across views). */
  private long round;

  QuorumTracker(CoreConfig config, Members members) {
    this.members = members;
    this.quorumTimeoutNs = config.quorumTimeoutNs;
    this.commitAlone = config.breakage == CoreConfig.Breakage.COMMIT_ALONE;
    this.ids = List.of();
    this.acked = new long[0];
    this.lastHeardNs = new long[0];
    this.roundAcked = new long[0];
    membersChanged(0);
  }

  /**
   * Lays the trackers out for the current membership (Members): what is known of a replica that stays
   * a member is kept, a new one counts as heard at nowNs (a grace period) and as having acknowledged
   * nothing.
   */
  void membersChanged(long nowNs) {
    List<Integer> next = members.ids();
    long[] nextAcked = new long[next.size()];
    long[] nextHeard = new long[next.size()];
    long[] nextRounds = new long[next.size()];
    boolean[] nextVoter = new boolean[next.size()];
    for (int i = 0; i < next.size(); i++) {
      int old = ids.indexOf(next.get(i));
      nextAcked[i] = old < 0 ? 0 : acked[old];
      nextHeard[i] = old < 0 ? nowNs : lastHeardNs[old];
      nextRounds[i] = old < 0 ? 0 : roundAcked[old];
      nextVoter[i] = members.isVoter(next.get(i));
    }
    this.ids = next;
    this.acked = nextAcked;
    this.lastHeardNs = nextHeard;
    this.roundAcked = nextRounds;
    this.voter = nextVoter;
    this.n = next.size();
    this.self = next.indexOf(members.self());
    this.voters = members.voterCount();
    this.quorum = members.quorum();
  }

  /** The position of replicaId among the members, or -1 when it is none. */
  int indexOf(int replicaId) {
    return ids.indexOf(replicaId);
  }

  /** The highest op member id acknowledged this view (0: none, or no member). */
  long ackedBy(int id) {
    int i = ids.indexOf(id);
    return i < 0 ? 0 : acked[i];
  }

  /** Whether member id was heard from within the election timeout (this replica always is). */
  boolean heardRecently(int id, long nowNs) {
    int i = ids.indexOf(id);
    return i == self || i >= 0 && nowNs - lastHeardNs[i] < quorumTimeoutNs;
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
      if (i != self && voter[i] && nowNs - lastHeardNs[i] < quorumTimeoutNs) {
        live++;
      }
    }
    return live;
  }

  /** This replica's own durable log reaches op. */
  void selfPersisted(long op) {
    if (self >= 0) {
      acked[self] = op;
    }
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
    long[] sorted = new long[voters];
    int k = 0;
    for (int i = 0; i < n; i++) {
      if (voter[i]) {
        sorted[k++] = i == self && !selfCounts ? 0 : acked[i];
      }
    }
    Arrays.sort(sorted);
    long c = sorted[voters - (commitAlone ? 1 : quorum)];
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

  /** The highest heartbeat round that f backups (voters) have answered in this view. */
  long confirmedRound() {
    if (voters == 1) {
      return Long.MAX_VALUE;
    }
    long[] rounds = new long[voters - (self >= 0 && voter[self] ? 1 : 0)];
    int k = 0;
    for (int i = 0; i < n; i++) {
      if (i != self && voter[i]) {
        rounds[k++] = roundAcked[i];
      }
    }
    Arrays.sort(rounds);
    return rounds[rounds.length - voters / 2];
  }

  /** A view is left: answers to rounds of it say nothing of the next. */
  void forgetRounds() {
    Arrays.fill(roundAcked, 0);
  }

  /**
   * This replica, the primary of the old epoch's last view, starts the new epoch's first view as its
   * primary (DESIGN.md "Membership"): every member that switches holds the same log through endOp, the
   * EpochChange, so what it knows of the members that stay (their acknowledged ops, at most endOp, and
   * when it last heard them) still holds; the heartbeat rounds start over. Only the new epoch's voters
   * count toward its commits (membersChanged laid them out), and no carried ack passes endOp, which is
   * committed already.
   */
  void startEpoch(long persistedOp, long endOp) {
    for (int i = 0; i < n; i++) {
      acked[i] = Math.min(acked[i], endOp);
    }
    if (self >= 0) {
      acked[self] = persistedOp;
    }
    Arrays.fill(roundAcked, 0);
  }

  /** This replica starts a view as its primary with its log persisted up to persistedOp. */
  void startView(long persistedOp, long nowNs) {
    Arrays.fill(acked, 0);
    if (self >= 0) {
      acked[self] = persistedOp;
    }
    Arrays.fill(lastHeardNs, nowNs);
    Arrays.fill(roundAcked, 0);
  }
}
