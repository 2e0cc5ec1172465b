package io.choir.server.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Members owns the replica's current {@link Membership} (VR Revisited section 7) and answers, for every
 * role, what the fixed list of replica ids used to: the quorum and f of the voters, the primary of a
 * view, whether a replica is a voter or a learner, and each member's position (the index the
 * per-replica trackers use: voters first, then learners). Only {@link #switchTo} changes it, when a
 * committed configuration entry is applied.
 */
final class Members {
  private final int self;
  private Membership current;
  private List<Integer> ids;
  /** The epoch before the current one, the last view this replica was in there and its last op; null: none. */
  private Membership previous;
  private long previousLastView = -1;
  private long previousEndOp;
  /**
   * Replicas removed by the epoch switches this replica made since it started, newest last, at most
   * {@link #MAX_FORMER} (in memory only): one cut off when it was removed still thinks itself a member,
   * and is told of the later epoch when it speaks (MembershipPath#onFormerMember).
   */
  private final Deque<Integer> former = new ArrayDeque<>();

  /** How many removed replicas are remembered: the last 16, as the row's recent changes. */
  static final int MAX_FORMER = 16;

  Members(int self, Membership initial) {
    this.self = self;
    this.current = initial;
    this.ids = initial.memberIds();
  }

  Membership current() {
    return current;
  }

  long epoch() {
    return current.epoch();
  }

  int self() {
    return self;
  }

  int quorum() {
    return current.quorum();
  }

  int f() {
    return current.f();
  }

  int voterCount() {
    return current.voterCount();
  }

  int primaryOf(long view) {
    return current.primaryOf(view);
  }

  boolean isVoter(int id) {
    return current.isVoter(id);
  }

  /** Whether this replica is a voter of the current epoch. */
  boolean selfVotes() {
    return current.isVoter(self);
  }

  /** Members (voters, then learners) as ids, in position order. */
  List<Integer> ids() {
    return ids;
  }

  /** The position of id among the members, or -1 when it is none. */
  int indexOf(int id) {
    return ids.indexOf(id);
  }

  String clientAddress(int id) {
    return current.clientAddress(id);
  }

  /** The committed configuration entry of next was applied: it is the membership from now on. */
  void switchTo(Membership next) {
    current = next;
    ids = next.memberIds();
  }

  /** An EpochChange at endOp was applied while this replica was in lastView: next is the new epoch's. */
  void switchEpoch(Membership next, long lastView, long endOp) {
    previous = current;
    previousLastView = lastView;
    previousEndOp = endOp;
    for (int id : current.memberIds()) {
      if (!next.contains(id) && id != self) {
        former.remove(id);
        former.addLast(id);
      }
    }
    former.removeIf(next::contains);
    while (former.size() > MAX_FORMER) {
      former.removeFirst();
    }
    switchTo(next);
  }

  /** Whether id was removed from the membership by a switch this replica made (and not added again). */
  boolean isFormer(int id) {
    return former.contains(id);
  }

  /** The removed replicas remembered, oldest first. */
  List<Integer> former() {
    return new ArrayList<>(former);
  }

  /** The previous epoch's membership, or null. */
  Membership previous() {
    return previous;
  }

  /** The last view of the previous epoch this replica was in (-1: none). */
  long previousLastView() {
    return previousLastView;
  }

  /** The op of the EpochChange that ended the previous epoch. */
  long previousEndOp() {
    return previousEndOp;
  }

  /** This replica's part in the current epoch. */
  Membership.Role selfRole() {
    return current.roleOf(self);
  }
}
