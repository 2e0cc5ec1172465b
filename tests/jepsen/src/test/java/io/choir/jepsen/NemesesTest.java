package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The catalogue, the command-line parsing and the partition shapes, without Docker. */
class NemesesTest {
  private static final List<String> FIVE = List.of("n1", "n2", "n3", "n4", "n5");

  @Test
  void parsesNamesAndGroups() {
    assertEquals(List.of("partition-one", "kill-primary"),
        Nemeses.parse("partition-one, kill-primary", 3).stream().map(Nemesis::name).toList());
    assertTrue(Nemeses.parse("none", 3).isEmpty());
    assertTrue(Nemeses.parse("", 3).isEmpty());
    assertEquals(List.of("kill-one", "kill-primary", "kill-minority", "kill-all"),
        Nemeses.parse("kills", 3).stream().map(Nemesis::name).toList());
    assertEquals(List.of("multicast-cut", "multicast-loss-5", "multicast-loss-20", "multicast-loss-50"),
        Nemeses.parse("multicast", 3).stream().map(Nemesis::name).toList());
    // groups leave out what does not fit the cluster; naming it explicitly is an error
    assertFalse(Nemeses.parse("all", 3).stream().anyMatch(n -> n.name().equals("partition-ring")));
    assertTrue(Nemeses.parse("all", 5).stream().anyMatch(n -> n.name().equals("partition-ring")));
    assertThrows(IllegalArgumentException.class, () -> Nemeses.parse("partition-ring", 3));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nemeses.parse("partition-oops", 3));
    assertTrue(e.getMessage().contains("partition-one"), e.getMessage());
    // duplicates collapse
    assertEquals(1, Nemeses.parse("kill-one,kill-one,kills", 3).stream().filter(n -> n.name().equals("kill-one")).count());
  }

  @Test
  void catalogueHasTheFaultsOfTheIssue() {
    for (String required : List.of("partition-one", "partition-primary", "partition-halves", "multicast-cut",
        "multicast-loss-5", "multicast-loss-20", "multicast-loss-50", "kill-one", "kill-primary", "pause-one",
        "pause-primary")) {
      assertEquals(required, Nemeses.byName(required).name());
    }
  }

  @Test
  void isolateCutsOneNodeBothWays() {
    Map<String, Set<String>> g = Nft.Grudge.isolate("n2", List.of("n1", "n2", "n3"));
    assertEquals(Set.of("n1", "n3"), g.get("n2"));
    assertEquals(Set.of("n2"), g.get("n1"));
    assertEquals(Set.of("n2"), g.get("n3"));
  }

  @Test
  void splitIsSymmetric() {
    Map<String, Set<String>> g = Nft.Grudge.split(List.of("n1", "n2"), List.of("n3", "n4", "n5"));
    for (String a : List.of("n1", "n2")) {
      assertEquals(Set.of("n3", "n4", "n5"), g.get(a));
    }
    for (String b : List.of("n3", "n4", "n5")) {
      assertEquals(Set.of("n1", "n2"), g.get(b));
    }
  }

  @Test
  void ringGivesEveryNodeADifferentMajority() {
    Map<String, Set<String>> g = Nft.Grudge.ring(FIVE);
    Set<Set<String>> seen = new HashSet<>();
    for (String n : FIVE) {
      Set<String> hears = new TreeSet<>(FIVE);
      hears.removeAll(g.get(n));
      assertEquals(3, hears.size(), n + " hears a majority: " + hears);
      assertTrue(hears.contains(n));
      assertTrue(seen.add(hears), "no two nodes see the same majority");
      for (String cut : g.get(n)) {
        assertTrue(g.get(cut).contains(n), "the ring is symmetric");
      }
    }
    assertThrows(IllegalArgumentException.class, () -> Nft.Grudge.ring(List.of("n1", "n2", "n3")));
  }

  @Test
  void bridgeTalksToBothHalves() {
    Map<String, Set<String>> g = Nft.Grudge.bridge(FIVE);
    assertFalse(g.containsKey("n3"), "n3 is the bridge: it hears everyone");
    assertEquals(Set.of("n4", "n5"), g.get("n1"));
    assertEquals(Set.of("n1", "n2"), g.get("n5"));
  }

  @Test
  void deafToIsOneWay() {
    Map<String, Set<String>> g = Nft.Grudge.deafTo("n1", List.of("n1", "n2", "n3"));
    assertEquals(Set.of("n2", "n3"), g.keySet());
    assertEquals(Set.of("n1"), g.get("n2"));
    assertTrue(Nft.Grudge.describe(g).contains("n2 deaf to n1"));
  }

  @Test
  void nftScripts() {
    assertTrue(Nft.ensureTable().contains("type filter hook input priority 0"));
    assertEquals("add rule inet jepsen in ip saddr { 10.0.0.2, 10.0.0.3 } counter drop\n",
        Nft.dropFrom(List.of("10.0.0.3", "10.0.0.2")));
    assertEquals("", Nft.dropFrom(List.of()));
    assertEquals("add rule inet jepsen in ip daddr 239.0.0.0/8 numgen random mod 100 < 20 counter drop\n",
        Nft.multicastLoss(20));
    assertThrows(IllegalArgumentException.class, () -> Nft.multicastLoss(101));
    assertTrue(Nft.heal().contains("delete table inet jepsen"));
    String[] cmd = Nft.command("X\n");
    assertEquals(List.of("sh", "-c", "nft -f - <<'NFT'\nX\nNFT\n"), List.of(cmd));
  }

  @Test
  void subnetsOverlap() {
    assertTrue(Subnets.overlap("10.199.3.0/24", "10.199.0.0/16"));
    assertTrue(Subnets.overlap("172.17.0.1/16", "172.17.5.0/24"));
    assertFalse(Subnets.overlap("10.199.3.0/24", "10.199.4.0/24"));
    assertFalse(Subnets.overlap("fe80::1/64", "10.0.0.0/8"));
  }
}
