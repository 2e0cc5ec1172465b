package io.choir.client;

import io.choir.proto.MemberStatus;

/**
 * Member is one member of the cluster as the answering replica knows it.
 *
 * @param id the replica id
 * @param clientAddress host:port of its client endpoint ("" when not known)
 * @param peerAddress host:port of its peer endpoint ("" when not known)
 * @param role voter, learner or retired
 * @param ackedOp the highest op the member has acknowledged, as the primary knows it; 0 when the
 *     answer came from another replica or the primary has heard nothing from it
 */
public record Member(int id, String clientAddress, String peerAddress, MemberRole role, long ackedOp) {
  static Member fromProto(MemberStatus m) {
    return new Member(m.getId(), m.getClientAddress(), m.getPeerAddress(), MemberRole.fromNumber(m.getRoleValue()),
        m.getAckedOp());
  }
}
