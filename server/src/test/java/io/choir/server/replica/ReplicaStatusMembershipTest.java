package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.choir.proto.MemberRole;
import io.choir.proto.MemberStatus;
import io.choir.proto.ReplicaStatus;
import io.choir.server.config.CoreSettings;
import io.choir.server.core.Membership;
import io.choir.server.core.Membership.Member;
import io.choir.server.core.RecoveredState;
import io.choir.server.core.ReplicaCore;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * ReplicaStatusMembershipTest: a status names the replica's epoch, its members with their roles and
 * its own member role (DESIGN.md "Membership"), from the core's membership.
 */
class ReplicaStatusMembershipTest {
  private static final List<Integer> IDS = List.of(1, 2, 3);

  private static Member member(int id) {
    return new Member(id, "127.0.0.1:70" + id, "127.0.0.1:71" + id);
  }

  private static ReplicaStatus statusOf(int self, Membership m) {
    ReplicaCore core = new ReplicaCore(CoreSettings.defaults(self, IDS).build(), RecoveredState.empty(), m);
    ReplicaStatus.Builder s = ReplicaStatus.newBuilder();
    ReplicaStatusReport.membership(s, core);
    return s.build();
  }

  @Test
  void shouldShowTheEpochTheMembersAndTheOwnRole() {
    Membership m = new Membership(2, List.of(member(1), member(2), member(3)), List.of(member(4)),
        Membership.epochBase(2));

    ReplicaStatus voter = statusOf(2, m);
    assertEquals(2, voter.getEpoch());
    assertEquals(List.of(1, 2, 3, 4), voter.getMembersList().stream().map(MemberStatus::getId).toList());
    assertEquals(List.of(MemberRole.VOTER, MemberRole.VOTER, MemberRole.VOTER, MemberRole.LEARNER),
        voter.getMembersList().stream().map(MemberStatus::getRole).toList());
    assertEquals("127.0.0.1:704", voter.getMembers(3).getClientAddress());
    assertEquals(MemberRole.VOTER, voter.getMemberRole());
  }

  @Test
  void shouldShowARemovedReplicaAsRetired() {
    Membership m = new Membership(3, List.of(member(1), member(3)), List.of(), Membership.epochBase(3));

    ReplicaStatus retired = statusOf(2, m);
    assertEquals(3, retired.getEpoch());
    assertEquals(MemberRole.RETIRED, retired.getMemberRole());
    assertEquals(List.of(1, 3), retired.getMembersList().stream().map(MemberStatus::getId).toList());
  }
}
