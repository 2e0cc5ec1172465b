package io.choir.server.core;

import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.server.core.ReplicaCore.Mode;
import java.util.HashMap;
import java.util.Map;

/**
 * EpochNotices are the notices a replica sends so that a replica still in an older epoch learns that a
 * later one exists (part of {@link MembershipPath}): to former members (removed from the membership while
 * cut off or down, so they still take themselves for members) and, from a primary quiet for want of a
 * quorum, to the members it has not heard. Each notice is one HEARTBEAT_OK of this replica's view, which
 * starts the receiver's laggard timer ({@link MembershipPath#onLaterEpoch}). Pure: time comes in nowNs.
 */
final class EpochNotices {
  private final CoreConfig config;
  private final int self;
  private final ViewState views;
  private final Members members;
  private final QuorumTracker quorum;
  private final Counters counters;
  /** When this replica last told each replica removed from the membership that a later epoch exists. */
  private final Map<Integer, Long> toldFormerNs = new HashMap<>();
  /** When this replica, a quiet primary, last told the members it has not heard that its epoch exists. */
  private long toldUnheardNs = Long.MIN_VALUE / 2;

  EpochNotices(CoreConfig config, ViewState views, QuorumTracker quorum, Counters counters) {
    this.config = config;
    this.self = config.replicaId();
    this.views = views;
    this.members = views.members();
    this.quorum = quorum;
    this.counters = counters;
  }

  /** The membership changed: forget the notices of replicas that are no former members any more. */
  void membersChanged() {
    toldFormerNs.keySet().retainAll(members.former());
  }

  /**
   * A message of an epoch before the current one from a replica removed from the membership since: it
   * was cut off or down when the change committed, so it still takes itself for a member (a voter, or
   * its epoch's primary). Dropped (counted), but it is told, at most once per heartbeat interval, that a
   * later epoch exists: one HEARTBEAT_OK of this epoch starts its laggard timer, which brings it over by
   * a state transfer; the membership it installs has it no more, so it retires.
   */
  void onFormerMember(Event.Peer p, long nowNs, Effects out) {
    if (Membership.epochOfView(p.view()) >= members.epoch()) {
      counters.droppedUnexpected++; // a retired replica's word: it is no member
      toldFormerNs.put(p.from(), Long.MAX_VALUE); // in this epoch: it knows, it retired
      return;
    }
    counters.droppedOldEpoch++;
    if (nowNs - toldFormerNs.getOrDefault(p.from(), Long.MIN_VALUE / 2) >= config.heartbeatIntervalNs) {
      tellFormer(p.from(), nowNs, out);
    }
  }

  /** The notices due at nowNs: to the former members, and a quiet primary's to the members unheard. */
  void tick(long nowNs, Effects out) {
    tellFormerMembers(nowNs, out);
    tellUnheardMembers(nowNs, out);
  }

  private void tellFormer(int id, long nowNs, Effects out) {
    toldFormerNs.put(id, nowNs);
    counters.toldFormerMembers++;
    out.send(id, views.view(), MessageType.HEARTBEAT_OK, HeartbeatOk.getDefaultInstance());
  }

  /**
   * The primary tells every removed replica it remembers that a later epoch exists, once per election
   * timeout, until it hears from it in this epoch: a removed primary that lost its quorum goes quiet
   * and sends nothing to be answered, and without multicast it hears nothing of this epoch either.
   */
  private void tellFormerMembers(long nowNs, Effects out) {
    if (!views.isPrimary() || views.mode() != Mode.NORMAL) {
      return;
    }
    for (int id : members.former()) {
      long told = toldFormerNs.getOrDefault(id, Long.MIN_VALUE / 2);
      if (told == Long.MAX_VALUE) {
        continue;
      }
      long dueNs = told + config.quorumTimeoutNs;
      if (nowNs >= dueNs) {
        tellFormer(id, nowNs, out);
        dueNs = nowNs + config.quorumTimeoutNs;
      }
      out.tickBy(dueNs);
    }
  }

  /**
   * A primary quiet for want of a quorum (CheckQuorum) waits to hear from its backups, but a member still
   * in the older epoch may have nothing to say there (a learner has no election timer; a log without a
   * gap asks for nothing) and hears nothing of this epoch: neither would ever speak (the single-voter
   * simulation's seed 64). So in any epoch after the first (in the first, no member can be in an older
   * one), once per heartbeat interval, it sends each member it has not heard within the election timeout
   * one message of its view, a HEARTBEAT_OK: a laggard acts on it (onLaterEpoch: it answers, and fetches
   * a state transfer), a backup of this epoch drops it (it is no heartbeat, so it keeps no backup from
   * electing a primary that has a quorum).
   */
  private void tellUnheardMembers(long nowNs, Effects out) {
    if (members.epoch() == 1 || !views.isPrimary() || quorum.live(nowNs) >= members.quorum()) {
      return;
    }
    if (nowNs - toldUnheardNs >= config.heartbeatIntervalNs) {
      toldUnheardNs = nowNs;
      for (int id : members.ids()) {
        if (id != self && !quorum.heardRecently(id, nowNs)) {
          counters.unheardMemberNotices++;
          out.send(id, views.view(), MessageType.HEARTBEAT_OK, HeartbeatOk.getDefaultInstance());
        }
      }
    }
    out.tickBy(toldUnheardNs + config.heartbeatIntervalNs);
  }
}
