package io.choir.sim;

import io.choir.proto.MemberChange;
import io.choir.proto.Request;
import io.choir.server.core.Event;
import io.choir.server.core.Membership;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * MembershipDriver drives a plan of membership changes through a simulated run (DESIGN.md
 * "Membership") and checks the membership invariants as it goes. Each step is a member change asked of
 * the primary of the highest view (every 200 ms until that primary's membership shows it done), or a
 * voter crashed for good (it never comes back; asked only while no voter is down, the faults' one-down
 * rule). Checked after every event: one membership per epoch on every live replica, and the same as the
 * one the applied entries made ({@link SimEpochs}); one primary per view. Measured: each epoch switch's
 * unavailability, from the first request of a promotion, removal or replacement to the first commit
 * beyond the switch in the new epoch, and after a crash for good, the time to the next commit.
 */
final class MembershipDriver implements SimObserver {
  private static final long MS = 1_000_000L;

  /**
   * One step of a plan: a member change, or (change null) a voter crashed for good: the primary of the
   * highest view (primary true) or the backup voter of the lowest id. A REPLACE whose replaced id is 0
   * replaces the voter crashed for good.
   */
  record Step(MemberChange.Builder change, boolean primary) {
    static Step add(int id) {
      return new Step(MemberChange.newBuilder().setKind(MemberChange.Kind.ADD_LEARNER).setId(id)
          .setClientAddress(SimClientIo.address(id)).setPeerAddress("sim-peer-" + id), false);
    }

    static Step promote(int id) {
      return new Step(MemberChange.newBuilder().setKind(MemberChange.Kind.PROMOTE).setId(id), false);
    }

    static Step remove(int id) {
      return new Step(MemberChange.newBuilder().setKind(MemberChange.Kind.REMOVE).setId(id), false);
    }

    /** Voter replaced (0: the one crashed for good) by learner id. */
    static Step replace(int replaced, int id) {
      return new Step(MemberChange.newBuilder().setKind(MemberChange.Kind.REPLACE).setId(id)
          .setReplacedId(replaced), false);
    }

    static Step crashForGood(boolean primary) {
      return new Step(null, primary);
    }

    @Override
    public String toString() {
      if (change == null) {
        return primary ? "crash the primary for good" : "crash a backup voter for good";
      }
      return change.getKind() + " " + change.getId()
          + (change.getKind() == MemberChange.Kind.REPLACE ? " for " + change.getReplacedId() : "");
    }
  }

  private final List<Step> plan;
  final List<String> violations = new ArrayList<>();
  final List<Long> unavailableNs = new ArrayList<>();
  /** From each crash for good to the next commit of a primary beyond the commit it had then. */
  final List<Long> afterCrashNs = new ArrayList<>();
  int step;
  /** The voter crashed for good, or 0. */
  int crashed;
  private long nextAskNs = 500 * MS;
  private long requestIds = 1L << 40;
  /** The promotion asked last (its time), and the epoch it must leave. */
  private long promotionAskedNs = -1;
  private long promotionFromEpoch;
  private long switchedCommit = -1;
  private long crashedAtNs = -1;
  private long crashedAtCommit;

  MembershipDriver(List<Step> plan) {
    this.plan = List.copyOf(plan);
  }

  /** True when every step of the plan was done. */
  boolean completed() {
    return step == plan.size();
  }

  @Override
  public void afterEvent(Simulation sim) {
    long now = sim.clock.now();
    SimReplica primary = checkInvariants(sim);
    if (primary == null) {
      return;
    }
    measure(primary, now);
    if (step < plan.size() && done(primary.core.membership())) {
      step++;
      nextAskNs = Math.max(nextAskNs, now);
    }
    if (step >= plan.size() || now < nextAskNs) {
      return;
    }
    Step s = plan.get(step);
    if (s.change() == null) {
      crashForGood(sim, primary, s.primary(), now);
      return;
    }
    nextAskNs = now + 200 * MS;
    MemberChange.Builder change = s.change().clone();
    if (change.getKind() == MemberChange.Kind.REPLACE && change.getReplacedId() == 0) {
      change.setReplacedId(crashed);
    }
    if (change.getKind() != MemberChange.Kind.ADD_LEARNER && promotionAskedNs < 0) {
      promotionAskedNs = now;
      promotionFromEpoch = primary.core.membership().epoch();
    }
    long id = ++requestIds;
    // A connection the replica does not know: the answer is dropped, progress is read from the core.
    primary.post(new Event.ClientRequest(-1, Request.newBuilder().setRequestId(id).setMemberChange(change).build()));
  }

  /** Checks one membership per epoch and one primary per view; returns the primary of the highest view. */
  private SimReplica checkInvariants(Simulation sim) {
    Map<Long, List<Integer>> voters = new HashMap<>();
    Map<Long, Integer> primaries = new HashMap<>();
    SimReplica primary = null;
    for (int id = 1; id <= sim.config().replicas(); id++) {
      SimReplica node = sim.node(id);
      if (node.core == null || !node.up) {
        continue;
      }
      Membership m = node.core.membership();
      List<Integer> seen = voters.putIfAbsent(m.epoch(), m.voterIds());
      if (seen != null && !seen.equals(m.voterIds())) {
        violation("epoch " + m.epoch() + " has voters " + seen + " and " + m.voterIds());
      }
      SimEpochs.Epoch applied = sim.epochs().epoch(m.epoch());
      if (applied == null) {
        violation("replica " + id + " is in epoch " + m.epoch() + ", which no applied entry made");
      } else if (!applied.membership().voterIds().equals(m.voterIds())) {
        violation("replica " + id + " has voters " + m.voterIds() + " in epoch " + m.epoch() + ", the applied entries "
            + applied.membership().voterIds());
      }
      if (node.core.isPrimary()) {
        Integer other = primaries.putIfAbsent(node.core.view(), id);
        if (other != null) {
          violation("two primaries of view " + node.core.view() + ": " + other + " and " + id);
        }
        if (primary == null || node.core.view() > primary.core.view()) {
          primary = node;
        }
      }
    }
    return primary;
  }

  private void violation(String what) {
    if (violations.isEmpty()) {
      violations.add(what);
    }
  }

  /** Crashes the primary or a backup voter for good, once no voter is down (the faults' one-down rule). */
  private void crashForGood(Simulation sim, SimReplica primary, boolean thePrimary, long now) {
    if (sim.faults().votersDown() > 0) {
      return;
    }
    SimReplica victim = thePrimary ? primary : null;
    for (int id : sim.epochs().voters()) {
      if (victim == null && id != primary.id) {
        victim = sim.node(id);
      }
    }
    if (victim == null) {
      return;
    }
    crashed = victim.id;
    crashedAtNs = now;
    crashedAtCommit = primary.core.commitOp();
    sim.bump("membership_crash_for_good");
    sim.crashForGood(victim, sim.random().nextBoolean());
    step++;
  }

  private boolean done(Membership m) {
    Step s = plan.get(step);
    if (s.change() == null) {
      return false;
    }
    MemberChange.Builder c = s.change();
    return switch (c.getKind()) {
      case ADD_LEARNER -> m.contains(c.getId());
      case REMOVE -> !m.contains(c.getId());
      case REPLACE -> m.isVoter(c.getId()) && !m.contains(c.getReplacedId() == 0 ? crashed : c.getReplacedId());
      default -> m.isVoter(c.getId());
    };
  }

  /** From the promotion's request to the first commit beyond the switch in the new epoch. */
  private void measure(SimReplica primary, long now) {
    if (crashedAtNs >= 0 && primary.core.commitOp() > crashedAtCommit) {
      afterCrashNs.add(now - crashedAtNs);
      crashedAtNs = -1;
    }
    if (promotionAskedNs < 0 || primary.core.membership().epoch() <= promotionFromEpoch) {
      return;
    }
    if (switchedCommit < 0) {
      switchedCommit = primary.core.commitOp();
    } else if (primary.core.commitOp() > switchedCommit) {
      unavailableNs.add(now - promotionAskedNs);
      promotionAskedNs = -1;
      switchedCommit = -1;
    }
  }
}
