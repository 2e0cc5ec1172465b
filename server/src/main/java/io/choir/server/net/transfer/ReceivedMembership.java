package io.choir.server.net.transfer;

import io.choir.proto.MemberAddress;
import io.choir.proto.MembershipRecord;
import io.choir.server.core.Membership;
import java.util.HashSet;
import java.util.Set;

/**
 * ReceivedMembership checks the membership row that the last chunk of a state transfer carries
 * (DESIGN.md "Membership") before the receiver installs it: it comes from the network, and a row that
 * could not be a membership fails the transfer instead of reaching the state machine and the core.
 */
final class ReceivedMembership {
  private ReceivedMembership() {}

  /**
   * What is wrong with a received membership row, or null: an epoch beyond any view, a record of a
   * later epoch without voters, an id 0 or one named twice (none is installed: the next fetch asks again).
   */
  static String problem(MembershipRecord m) {
    if (m == null || m.equals(MembershipRecord.getDefaultInstance())) {
      return null;
    }
    if (m.getEpoch() < 1 || m.getEpoch() > Membership.MAX_EPOCH) {
      return "a membership of epoch " + Long.toUnsignedString(m.getEpoch());
    }
    if (m.getVotersCount() == 0) {
      return "a membership of epoch " + m.getEpoch() + " without voters";
    }
    Set<Integer> ids = new HashSet<>();
    for (MemberAddress a : m.getVotersList()) {
      if (a.getId() == 0 || !ids.add(a.getId())) {
        return "a membership naming replica " + a.getId() + " twice or as 0";
      }
    }
    for (MemberAddress a : m.getLearnersList()) {
      if (a.getId() == 0 || !ids.add(a.getId())) {
        return "a membership naming replica " + a.getId() + " twice or as 0";
      }
    }
    return null;
  }

}
