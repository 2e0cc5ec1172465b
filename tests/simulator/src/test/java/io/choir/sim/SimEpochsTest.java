package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.AddLearner;
import io.choir.proto.Entry;
import io.choir.proto.EpochChange;
import io.choir.proto.MemberAddress;
import io.choir.server.core.Membership;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * SimEpochsTest checks the simulator's record of the memberships by op and its acknowledgement check:
 * a write must be durable at a majority of the voters of the epoch its op was committed in, not at any
 * majority of the bootstrap's size among all replicas (the check as it was, which a write durable only on
 * the old epoch's voters passed). Epochs here: 1 = voters 1, 2, 3 (ops up to 8, learner 4 added at 5);
 * 2 = voters 2, 3, 4 (ops 9 to 12, learner 5 added at 10); 3 = voters 3, 4, 5 (from op 13).
 */
class SimEpochsTest {
  private static MemberAddress member(int id) {
    return MemberAddress.newBuilder().setId(id).setClientAddress(SimClientIo.address(id))
        .setPeerAddress("sim-peer-" + id).build();
  }

  private static List<MemberAddress> members(int... ids) {
    return Arrays.stream(ids).mapToObj(SimEpochsTest::member).toList();
  }

  private static Entry addLearner(long op, long epoch, int learner, int[] voters, int... learners) {
    return Entry.newBuilder().setOp(op).setAddLearner(AddLearner.newBuilder().setLearner(member(learner))
        .setEpoch(epoch).addAllVoters(members(voters)).addAllLearners(members(learners))
        .setStartView(Membership.epochBase(epoch))).build();
  }

  private static Entry epochChange(long op, long epoch, int... voters) {
    return Entry.newBuilder().setOp(op).setEpochChange(EpochChange.newBuilder().setEpoch(epoch)
        .addAllVoters(members(voters)).setStartView(Membership.epochBase(epoch))).build();
  }

  private static final List<Entry> FIRST = List.of(addLearner(5, 1, 4, new int[] {1, 2, 3}, 4), epochChange(8, 2, 2, 3, 4));
  private static final List<Entry> SECOND = List.of(addLearner(10, 2, 5, new int[] {2, 3, 4}, 5), epochChange(12, 3, 3, 4, 5));

  private static SimEpochs epochs() {
    return new SimEpochs(Membership.bootstrap(List.of(1, 2, 3), Map.of()));
  }

  private static String check(SimEpochs e, long op, Integer... durableAt) {
    Set<Integer> durable = Set.of(durableAt);
    return e.ackViolation(op, 1, durable::contains);
  }

  @Test
  void shouldCountOnlyTheVotersOfTheEpochAnOpWasCommittedIn() {
    SimEpochs e = epochs();
    e.applying(FIRST);
    e.applying(SECOND);
    assertNull(check(e, 7, 1, 2));
    assertNull(check(e, 8, 1, 2), "the epoch change itself is the old epoch's last op");
    assertNotNull(check(e, 9, 1, 2), "replica 1 is no voter of epoch 2");
    assertNull(check(e, 9, 2, 4));
    assertNotNull(check(e, 11, 4, 5), "learner 5 does not count");
    String v = check(e, 13, 1, 2, 3);
    assertNotNull(v, "durable only at the first epoch's voters: one copy among epoch 3's");
    assertTrue(v.contains("only 1 of epoch 3's voters [3, 4, 5]"), v);
    assertNull(check(e, 13, 3, 5));
  }

  @Test
  void shouldFailTheWriteThatTheBootstrapQuorumCheckLetPass() {
    SimEpochs e = epochs();
    e.applying(FIRST);
    e.applying(SECOND);
    // The check as it was: any 2 (the bootstrap quorum) of all the replicas.
    Set<Integer> durable = Set.of(1, 2);
    int bootstrapQuorum = Membership.bootstrap(List.of(1, 2, 3), Map.of()).quorum();
    assertTrue(durable.size() >= bootstrapQuorum);
    assertNotNull(e.ackViolation(13, 3, durable::contains));
  }

  @Test
  void shouldFollowTheEntriesInOpOrderWhateverOrderTheyAreSeenIn() {
    SimEpochs e = epochs();
    e.applying(SECOND); // seen first from a replica that installed a snapshot past ops 5 and 8
    assertEquals(1, e.latest().epoch(), "AddLearner of epoch 2 does not fit epoch 1");
    e.applying(FIRST);
    assertEquals(3, e.latest().epoch());
    assertEquals(List.of(3, 4, 5), e.voters());
    assertEquals(List.of(2, 3, 4), e.epoch(2).membership().voterIds());
    assertEquals(9, e.epochOf(9).firstOp());
    assertEquals(13, e.epochOf(100).firstOp());
    assertTrue(e.removed(1));
    assertFalse(e.removed(3));
  }

  @Test
  void shouldIgnoreAConfigurationEntryThatDoesNotFit() {
    SimEpochs e = epochs();
    e.applying(List.of(epochChange(4, 3, 1, 2)));
    assertEquals(1, e.latest().epoch());
    assertEquals(List.of(1, 2, 3), e.voters());
    assertNotNull(check(e, 5, 1));
    assertNull(check(e, 5, 2, 3));
  }
}
