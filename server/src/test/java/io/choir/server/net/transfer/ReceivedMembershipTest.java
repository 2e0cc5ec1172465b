package io.choir.server.net.transfer;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.choir.proto.MemberAddress;
import io.choir.proto.MembershipRecord;
import io.choir.server.core.Membership;
import org.junit.jupiter.api.Test;

/** ReceivedMembershipTest: a state transfer's membership row is checked before it is installed. */
class ReceivedMembershipTest {
  private static MemberAddress member(int id) {
    return MemberAddress.newBuilder().setId(id).setClientAddress("127.0.0.1:73" + id).build();
  }

  @Test
  void shouldAcceptNoneTheBootstrapAndAWellFormedRow() {
    assertNull(ReceivedMembership.problem(null));
    assertNull(ReceivedMembership.problem(MembershipRecord.getDefaultInstance()));
    assertNull(ReceivedMembership.problem(MembershipRecord.newBuilder().setEpoch(2).addVoters(member(1))
        .addVoters(member(2)).addLearners(member(3)).build()));
  }

  @Test
  void shouldRefuseRowsThatCannotBeAMembership() {
    assertNotNull(ReceivedMembership.problem(MembershipRecord.newBuilder().setEpoch(2).build()), "no voters");
    assertNotNull(ReceivedMembership.problem(MembershipRecord.newBuilder().setEpoch(Membership.MAX_EPOCH + 1)
        .addVoters(member(1)).build()), "an epoch beyond any view");
    assertNotNull(ReceivedMembership.problem(MembershipRecord.newBuilder().setEpoch(0).addVoters(member(1))
        .build()), "epoch 0 with members");
    assertNotNull(ReceivedMembership.problem(MembershipRecord.newBuilder().setEpoch(2).addVoters(member(1))
        .addLearners(member(1)).build()), "an id twice");
    assertNotNull(ReceivedMembership.problem(MembershipRecord.newBuilder().setEpoch(2).addVoters(member(0))
        .build()), "id 0");
  }
}
