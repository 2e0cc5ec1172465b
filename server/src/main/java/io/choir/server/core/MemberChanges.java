package io.choir.server.core;

import io.choir.proto.MemberChange;
import io.choir.server.core.Membership.Member;
import io.choir.server.core.Membership.Role;

/**
 * MemberChanges holds the refusals of a membership change that depend on the membership alone
 * (DESIGN.md "Membership"): one change at a time, unknown ids, ids already members, no voter left and
 * address clashes. A refusal means nothing was executed. What depends on the other replicas' progress
 * (a majority of the new voters caught up and alive) is MembershipPath's.
 */
final class MemberChanges {
  private MemberChanges() {}

  /**
   * Null when change c may be made to membership now, else why not; pendingConfigOp is the op of a
   * configuration entry in the log not yet applied (0: none).
   */
  static String refusal(MemberChange c, Membership now, long pendingConfigOp) {
    if (pendingConfigOp != 0) {
      return "change in progress: the configuration entry at op " + pendingConfigOp + " is not applied yet";
    }
    Role role = now.roleOf(c.getId());
    switch (c.getKind()) {
      case ADD_LEARNER -> {
        if (!now.learners().isEmpty()) {
          return "change in progress: learner " + now.learners().get(0).id()
              + " is not promoted yet (promote, replace with or remove it first)";
        }
        if (role != Role.NONE) {
          return "replica " + c.getId() + " is already a member (" + role.name().toLowerCase() + ")";
        }
        for (Member m : now.voters()) {
          String clash = clash(m, c.getClientAddress(), c.getPeerAddress());
          if (clash != null) {
            return "address clash: " + clash;
          }
        }
        return null;
      }
      case PROMOTE -> {
        return role == Role.LEARNER ? null : notLearner(c.getId(), role);
      }
      case REMOVE -> {
        if (role == Role.NONE) {
          return "unknown id: replica " + c.getId() + " is no member of epoch " + now.epoch();
        }
        if (role == Role.VOTER && now.voterCount() == 1) {
          return "would leave no voter: replica " + c.getId() + " is the only one";
        }
        return null;
      }
      case REPLACE -> {
        if (role != Role.LEARNER) {
          return notLearner(c.getId(), role);
        }
        Role replaced = now.roleOf(c.getReplacedId());
        if (replaced != Role.VOTER) {
          return "unknown id: replica " + c.getReplacedId() + " is no voter of epoch " + now.epoch();
        }
        return null;
      }
      default -> {
        return "member change without a kind";
      }
    }
  }

  private static String notLearner(int id, Role role) {
    return role == Role.NONE ? "unknown id: replica " + id + " is no member (add it as a learner first)"
        : "replica " + id + " is a voter already, not a learner";
  }

  private static String clash(Member m, String clientAddress, String peerAddress) {
    if (!clientAddress.isEmpty() && (clientAddress.equals(m.clientAddress()) || clientAddress.equals(m.peerAddress()))) {
      return clientAddress + " is replica " + m.id() + "'s";
    }
    if (!peerAddress.isEmpty() && (peerAddress.equals(m.peerAddress()) || peerAddress.equals(m.clientAddress()))) {
      return peerAddress + " is replica " + m.id() + "'s";
    }
    if (!clientAddress.isEmpty() && clientAddress.equals(peerAddress)) {
      return "the client and peer address are the same, " + clientAddress;
    }
    return null;
  }
}
