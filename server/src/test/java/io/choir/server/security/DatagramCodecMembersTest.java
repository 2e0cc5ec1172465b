package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * DatagramCodec.updateMembers (a membership change, through PeerDirectory.update): a new member's
 * sealed datagrams are accepted with a fresh replay window, a removed member is an unknown sender, and
 * a member that stays keeps its window (a replay stays a replay across the update).
 */
class DatagramCodecMembersTest {
  private static final long CLUSTER = 0xabcdL;

  @Test
  void shouldFollowTheMembersAndKeepTheReplayWindowsOfThoseThatStay() {
    byte[] k = new byte[ClusterKeys.KEY_BYTES];
    new SplittableRandom(7).nextBytes(k);
    ClusterKeys keys = ClusterKeys.of(Map.of(1, k));
    DatagramCodec self = new DatagramCodec(1, CLUSTER, Set.of(1, 2, 3), keys, 1);
    DatagramCodec two = new DatagramCodec(2, CLUSTER, Set.of(1, 2, 3, 4), keys, 1);
    DatagramCodec four = new DatagramCodec(4, CLUSTER, Set.of(1, 2, 3, 4), keys, 1);
    byte[] fromTwo = two.encode(3, 1, new byte[] {1, 2});
    byte[] fromFour = four.encode(3, 1, new byte[] {3});
    assertInstanceOf(DatagramCodec.Accepted.class, self.decode(fromTwo, fromTwo.length));
    assertEquals("unknown_sender", ((DatagramCodec.Dropped) self.decode(fromFour, fromFour.length)).reason());

    self.updateMembers(Set.of(1, 2, 4));
    assertInstanceOf(DatagramCodec.Accepted.class, self.decode(fromFour, fromFour.length), "4 is a member now");
    assertEquals("replay", ((DatagramCodec.Dropped) self.decode(fromTwo, fromTwo.length)).reason(),
        "2 stayed: its window stayed");
    byte[] fromThree = new DatagramCodec(3, CLUSTER, Set.of(1, 2, 3), keys, 1).encode(3, 1, new byte[] {4});
    assertEquals("unknown_sender", ((DatagramCodec.Dropped) self.decode(fromThree, fromThree.length)).reason(),
        "3 was removed");
  }
}
