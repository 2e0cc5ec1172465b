package io.choir.client;

import static io.choir.proto.MemberRole.LEARNER_VALUE;
import static io.choir.proto.MemberRole.RETIRED_VALUE;
import static io.choir.proto.MemberRole.VOTER_VALUE;

/**
 * MemberRole is what a member of the cluster does (DESIGN.md "Membership"): a voter forms quorums and
 * may be primary; a learner gets the log and acknowledges it but never counts toward a quorum, until
 * it is promoted; a retired member was removed from the voters and serves only repair to laggards.
 */
public enum MemberRole {
  /** Forms quorums, elects and may be primary. */
  VOTER,
  /** Gets the log and acknowledges it, but does not vote. */
  LEARNER,
  /** Removed from the voters: votes for nothing and serves no client. */
  RETIRED,
  /** A role this client does not know (a newer server), or none reported. */
  UNKNOWN;

  /** The role of a protocol MemberRole's number (the proto enum shares this one's name). */
  static MemberRole fromNumber(int value) {
    return switch (value) {
      case VOTER_VALUE -> VOTER;
      case LEARNER_VALUE -> LEARNER;
      case RETIRED_VALUE -> RETIRED;
      default -> UNKNOWN;
    };
  }
}
