package io.choir.sim;

import io.choir.proto.Entry;
import io.choir.server.core.Membership;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.IntPredicate;

/**
 * SimEpochs follows the cluster's memberships as the replicas apply them (DESIGN.md "Membership"): the
 * bootstrap membership, then every configuration entry any replica applied (AddLearner, EpochChange), in
 * op order, through the core's own {@link Membership#after} (an entry that does not fit changes nothing,
 * as in every replica). The EpochChange at op n ends its epoch there: ops up to n are of the old epoch
 * (committed by its voters), ops after n of the new one. So it knows, for each op, the voters whose
 * majority must have it durable before it is acknowledged, and the latest membership, whose members the
 * faults hit.
 *
 * <p>Every configuration entry a replica acknowledges a write beyond was applied (by entries) by some
 * replica first: the one that committed it, or the one whose snapshot carried it on. So the record is
 * complete up to any acknowledged op.
 */
final class SimEpochs {
  /** One epoch: its membership (the last one of the epoch, learners included) and its first op. */
  record Epoch(Membership membership, long firstOp) {}

  private final Membership bootstrap;
  /** The configuration entries applied by some replica, by op (the first one seen at an op kept). */
  private final TreeMap<Long, Entry> configuration = new TreeMap<>();
  /** Epochs by number, from the entries. */
  private final Map<Long, Epoch> epochs = new TreeMap<>();
  private Membership latest;
  /** Ids that were members (voter or learner) of some membership so far. */
  private final Set<Integer> everMembers = new HashSet<>();

  SimEpochs(Membership bootstrap) {
    this.bootstrap = bootstrap;
    rebuild();
  }

  /** Some replica is about to apply entries: their configuration entries join the record. */
  void applying(List<Entry> entries) {
    boolean changed = false;
    for (Entry e : entries) {
      if (Membership.isConfiguration(e) && configuration.putIfAbsent(e.getOp(), e) == null) {
        changed = true;
      }
    }
    if (changed) {
      rebuild();
    }
  }

  /** Replays the configuration entries in op order from the bootstrap membership. */
  private void rebuild() {
    epochs.clear();
    everMembers.clear();
    Membership m = bootstrap;
    everMembers.addAll(m.memberIds());
    long firstOp = 0;
    for (Entry e : configuration.values()) {
      Optional<Membership> next = m.after(e);
      if (next.isEmpty()) {
        continue;
      }
      if (next.get().epoch() != m.epoch()) {
        epochs.put(m.epoch(), new Epoch(m, firstOp));
        firstOp = e.getOp() + 1;
      }
      m = next.get();
      everMembers.addAll(m.memberIds());
    }
    epochs.put(m.epoch(), new Epoch(m, firstOp));
    latest = m;
  }

  /** The membership after the last configuration entry applied anywhere. */
  Membership latest() {
    return latest;
  }

  /** The voters of the latest membership, in id order. */
  List<Integer> voters() {
    List<Integer> ids = new ArrayList<>(latest.voterIds());
    ids.sort(null);
    return ids;
  }

  /** True when id was a member of some membership and is none of the latest: removed, retired. */
  boolean removed(int id) {
    return everMembers.contains(id) && !latest.contains(id);
  }

  /** The epoch the entries made, or null when no applied entry made it. */
  Epoch epoch(long epoch) {
    return epochs.get(epoch);
  }

  /** The epoch whose ops hold op: the latest epoch starting at or before it. */
  Epoch epochOf(long op) {
    Epoch found = null;
    for (Epoch e : epochs.values()) {
      if (e.firstOp() <= op) {
        found = e;
      }
    }
    return found;
  }

  /**
   * The acknowledgement check: a write at op, acknowledged by replica by, must be durable at a majority
   * of the voters of the epoch the op was committed in. Returns the violation, or null.
   */
  String ackViolation(long op, int by, IntPredicate durablyHolds) {
    Epoch e = epochOf(op);
    List<Integer> voters = e.membership().voterIds();
    int durable = 0;
    for (int id : voters) {
      if (durablyHolds.test(id)) {
        durable++;
      }
    }
    if (durable >= e.membership().quorum()) {
      return null;
    }
    return "write at op " + op + " acknowledged by node " + by + " while only " + durable + " of epoch "
        + e.membership().epoch() + "'s voters " + voters + " had it durable";
  }
}
