package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MessageType;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.config.ServerConfig;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
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
    assertEquals(List.of("kill-one", "kill-primary", "kill-minority", "kill-all", "restart-all"),
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
        "pause-primary", "repair-path-cut", "repair-path-cut-all", "duplicate", "disk-full", "disk-full-primary",
        "restart-all", "pause-one-short", "pause-primary-short", "pause-backup")) {
      assertEquals(required, Nemeses.byName(required).name());
    }
  }

  @Test
  void catalogueListsTheFamiliesInTheHelpTextsOrder() {
    // the order of `all` and of the help text: network faults, then process faults, then disk faults
    assertEquals(List.of("partition-one", "partition-primary", "partition-halves", "partition-ring", "partition-bridge",
        "partition-primary-oneway", "multicast-cut", "multicast-loss-5", "multicast-loss-20", "multicast-loss-50",
        "repair-path-cut", "repair-path-cut-all", "duplicate", "kill-one", "kill-primary", "kill-minority", "kill-all",
        "restart-all", "pause-one", "pause-primary", "pause-backup", "pause-one-short", "pause-primary-short",
        "disk-full", "disk-full-primary", "member-replace"), Nemeses.names());
  }

  @Test
  void newGroupsCollectTheirFaults() {
    assertEquals(List.of("repair-path-cut", "repair-path-cut-all"),
        Nemeses.parse("repair", 3).stream().map(Nemesis::name).toList());
    assertEquals(List.of("disk-full", "disk-full-primary"), Nemeses.parse("disk", 3).stream().map(Nemesis::name).toList());
    assertEquals(List.of("pause-one", "pause-primary", "pause-backup", "pause-one-short", "pause-primary-short"),
        Nemeses.parse("pauses", 3).stream().map(Nemesis::name).toList());
    List<String> network = Nemeses.parse("network", 5).stream().map(Nemesis::name).toList();
    assertTrue(network.containsAll(List.of("partition-ring", "multicast-cut", "repair-path-cut", "duplicate")), network.toString());
    assertFalse(network.stream().anyMatch(n -> n.startsWith("kill-") || n.startsWith("pause-") || n.startsWith("disk-")));
    // every fault is in some group besides all, so a group run can reach it
    for (String name : Nemeses.names()) {
      assertTrue(Nemeses.groups().stream().filter(g -> !g.equals("all"))
          .anyMatch(g -> Nemeses.parse(g, 5).stream().anyMatch(n -> n.name().equals(name))), name + " is in a group");
    }
    assertEquals(Nemeses.names().size(), Nemeses.parse("all", 5).size());
  }

  @Test
  void memberReplaceHasItsGroupAndFitsThreeOrFiveNodes() {
    assertEquals(List.of("member-replace"), Nemeses.parse("membership", 3).stream().map(Nemesis::name).toList());
    assertTrue(Nemeses.parse("all", 3).stream().anyMatch(n -> n.name().equals("member-replace")));
    assertTrue(Nemeses.parse("all", 5).stream().anyMatch(n -> n.name().equals("member-replace")));
    assertFalse(Nemeses.parse("network", 5).stream().anyMatch(n -> n.name().equals("member-replace")));
    assertEquals(3, Nemeses.minNodes("member-replace"));
    // the newcomer's replicas list the voters and itself, at most 7: no room with 7 voters
    assertTrue(Nemeses.parse("all", 7).stream().noneMatch(n -> n.name().equals("member-replace")));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nemeses.parse("member-replace", 7));
    assertTrue(e.getMessage().contains("at most 6"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Nemeses.parse("member-replace", 1));
  }

  /**
   * The cut: any member can be the target (the primary too), with 5 nodes one more node, so a bare majority
   * is left; the same seed gives the same cut. The grudge isolates each cut node from everyone and leaves
   * the rest a connected majority.
   */
  @Test
  void memberReplaceCutsTheTargetAndWithFiveNodesOneMore() {
    long seed = Long.getLong("choir.jepsen.test.seed", 12);
    System.out.println("memberReplaceCutsTheTargetAndWithFiveNodesOneMore seed " + seed);
    Random seeds = new Random(seed);
    Set<String> targets = new TreeSet<>();
    for (int i = 0; i < 200; i++) {
      long s = seeds.nextLong();
      List<String> three = MembershipFaults.cut(List.of("n1", "n2", "n3"), new Random(s));
      assertEquals(1, three.size(), "seed " + s);
      List<String> five = MembershipFaults.cut(FIVE, new Random(s));
      assertEquals(2, five.size(), "seed " + s);
      assertEquals(2, new HashSet<>(five).size(), "two different nodes; seed " + s);
      assertEquals(five, MembershipFaults.cut(FIVE, new Random(s)), "replays from the seed " + s);
      targets.add(five.get(0));

      Map<String, Set<String>> g = Nft.Grudge.isolateEach(five, FIVE);
      List<String> live = FIVE.stream().filter(n -> !five.contains(n)).toList();
      assertEquals(3, live.size(), "a bare majority of 5 is left");
      for (String c : five) {
        assertEquals(FIVE.stream().filter(n -> !n.equals(c)).collect(Collectors.toSet()), g.get(c),
            c + " hears nobody; seed " + s);
      }
      for (String l : live) {
        assertEquals(new TreeSet<>(five), g.get(l), l + " hears every live node and no cut one; seed " + s);
      }
    }
    assertEquals(new TreeSet<>(FIVE), targets, "every member is a target for some seed (the primary too)");
  }

  @Test
  void faultsThatNeedPeersRefuseOneNode() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nemeses.parse("repair-path-cut", 1));
    assertTrue(e.getMessage().contains("at least 3 nodes"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Nemeses.parse("duplicate", 1));
    assertEquals(List.of("disk-full", "disk-full-primary"), Nemeses.parse("disk", 1).stream().map(Nemesis::name).toList());
    assertTrue(Nemeses.parse("all", 1).stream().noneMatch(n -> n.name().startsWith("repair-")));
    assertEquals(2, Nemeses.parse("restart-all,pause-one-short", 1).size());
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

  /** The byte offsets of the repair cut are the wire's: encode a real header and look where nft looks. */
  @Test
  void repairCutMatchesTheDatagramHeaderOnTheWire() {
    ByteBuf udp = Unpooled.buffer();
    udp.writeZero(8); // the UDP header: @th counts from its first bit
    new DatagramHeader(DatagramHeader.PROTOCOL_VERSION,
        MessageType.FRAGMENT_VALUE, 0, 0x1234L, 7, 2).encode(udp);
    udp.writeByte(MessageType.PREPARE_VALUE); // a fragment's body starts with the inner type
    assertEquals(DatagramHeader.MAGIC, udp.getInt(Nft.MAGIC_BIT / 8));
    assertEquals(Long.decode(Nft.MAGIC).intValue(), DatagramHeader.MAGIC);
    assertEquals(MessageType.FRAGMENT_VALUE, udp.getUnsignedByte(Nft.TYPE_BIT / 8));
    assertEquals(MessageType.PREPARE_VALUE, udp.getUnsignedByte(Nft.FRAGMENT_INNER_TYPE_BIT / 8));
    assertEquals(8 + DatagramHeader.SIZE, Nft.FRAGMENT_INNER_TYPE_BIT / 8);
    assertEquals(MessageType.PREPARE_VALUE, Nft.PREPARE);
    assertEquals(MessageType.NACK_VALUE, Nft.NACK);
    assertEquals(MessageType.FRAGMENT_VALUE, Nft.FRAGMENT);
  }

  @Test
  void repairCutRuleText() {
    String peer = "ip daddr != 224.0.0.0/4 udp dport 7401 @th,64,32 0x43484f52 ";
    assertEquals("add rule inet jepsen in " + peer + "@th,104,8 { 1, 4 } counter drop\n"
        + "add rule inet jepsen in " + peer + "@th,104,8 12 @th,416,8 1 counter drop\n"
        + "add rule inet jepsen in tcp dport 7401 counter drop\n"
        + "add rule inet jepsen in tcp sport 7401 counter drop\n", Nft.repairCut());
    // what the cut leaves alone: PREPARE_OK (2), HEARTBEAT (3), HEARTBEAT_OK (13), the view change (5-7)
    for (int type : new int[] {2, 3, 5, 6, 7, 13}) {
      assertFalse(Nft.repairCut().contains("@th,104,8 " + type + " "), "type " + type);
    }
  }

  @Test
  void duplicateRuleText() {
    assertEquals("table netdev jepsen {\n"
        + "  chain egress { type filter hook egress device \"eth0\" priority 0; policy accept; }\n"
        + "}\n"
        + "add rule netdev jepsen egress meta mark 0x4a455053 counter accept\n"
        + "add rule netdev jepsen egress udp sport 7401 numgen random mod 100 < 50 meta mark set 0x4a455053"
        + " counter dup to \"eth0\"\n", Nft.duplicate(50));
    assertFalse(Nft.duplicate(100).contains("numgen"), "100% needs no random draw");
    assertThrows(IllegalArgumentException.class, () -> Nft.duplicate(0));
    assertThrows(IllegalArgumentException.class, () -> Nft.duplicate(101));
    // the mark test comes first: a copy passes the egress hook again and must not be copied again
    String d = Nft.duplicate(50);
    assertTrue(d.indexOf("meta mark 0x4a455053 counter accept") < d.indexOf("meta mark set"));
  }

  @Test
  void healDeletesBothTables() {
    assertTrue(Nft.heal().contains("delete table inet jepsen\n"));
    assertTrue(Nft.heal().contains("table netdev jepsen\ndelete table netdev jepsen\n"));
  }

  @Test
  void packetCountersAreSummedPerKindOfRule() {
    String listing = "table inet jepsen {\n\tchain in {\n"
        + "\t\tip daddr != 224.0.0.0/4 udp dport 7401 @th,64,32 0x43484f52 @th,104,8 { 0x1, 0x4 } counter packets 12 bytes 900 drop\n"
        + "\t\tip daddr != 224.0.0.0/4 udp dport 7401 @th,64,32 0x43484f52 @th,104,8 0xc @th,416,8 0x1 counter packets 3 bytes 4000 drop\n"
        + "\t\ttcp dport 7401 counter packets 5 bytes 300 drop\n"
        + "\t\ttcp sport 7401 counter packets 1 bytes 60 drop\n"
        + "\t\tip daddr 239.0.0.0/8 numgen random mod 100 < 20 counter packets 40 bytes 9999 drop\n\t}\n}\n";
    assertEquals(15, Nft.packets(listing, "@th,"));
    assertEquals(6, Nft.packets(listing, "tcp "));
    assertEquals(40, Nft.packets(listing, "numgen"));
    assertEquals(0, Nft.packets("", "numgen"));
  }

  @Test
  void repairCutLossyNodeIsABackupChosenBySeed() {
    List<String> three = List.of("n1", "n2", "n3");
    Set<String> chosen = new TreeSet<>();
    // step seeds come from the plan's nextLong() (NemesisSchedule): small consecutive seeds would all make
    // the same first draw in java.util.Random
    Random steps = new Random(42);
    for (int i = 0; i < 50; i++) {
      long seed = steps.nextLong();
      String a = Targets.pickBackup(three, Optional.of("n2"), new Random(seed));
      String b = Targets.pickBackup(three, Optional.of("n2"), new Random(seed));
      assertEquals(a, b, "seed " + seed + " replays");
      assertFalse(a.equals("n2"), "never the primary");
      chosen.add(a);
    }
    assertEquals(Set.of("n1", "n3"), chosen, "both backups get their turn");
    // no primary known: any node
    Set<String> any = new TreeSet<>();
    for (int i = 0; i < 50; i++) {
      long seed = steps.nextLong();
      any.add(Targets.pickBackup(three, Optional.empty(), new Random(seed)));
    }
    assertEquals(Set.copyOf(three), any);
  }

  @Test
  void shortPausesAreHalfTheElectionTimeout() {
    assertEquals((int) ServerConfig.ELECTION_TIMEOUT_MS.defaultValue(), ProcessFaults.ELECTION_TIMEOUT_MS_DEFAULT,
        "the harness's copy of the server default");
    assertEquals(250, ProcessFaults.shortPauseMillis(Map.of()));
    assertEquals(400, ProcessFaults.shortPauseMillis(Map.of("election_timeout_ms", "800")), "a --server-setting is a string");
    assertEquals(100, ProcessFaults.shortPauseMillis(Map.of("election_timeout_ms", 200)));
    // the schedule's shortest hold is far longer: the short pause must end by itself
    assertTrue(ProcessFaults.shortPauseMillis(Map.of()) < NemesisSchedule.Timing.defaults().holdMin().toMillis());
  }

  @Test
  void restartExitCodesSayWhetherTheShutdownWasClean() {
    Map<String, Long> exits = new LinkedHashMap<>();
    exits.put("n1", 0L);
    exits.put("n2", 137L);
    exits.put("n3", 4L);
    assertEquals("n1 exit 0, n2 exit 137 (SIGKILL: no clean shutdown), n3 exit 4 (error)", ProcessFaults.describeExits(exits));
  }

  @Test
  void activeFaultsSayStoppedByDefault() {
    Nemesis.Active a = new Nemesis.Active() {
      @Override
      public List<String> nodes() {
        return List.of();
      }

      @Override
      public String detail() {
        return "";
      }

      @Override
      public void stop() {}
    };
    assertEquals("stopped", a.stopDetail());
  }

  @Test
  void subnetsOverlap() {
    assertTrue(Subnets.overlap("10.199.3.0/24", "10.199.0.0/16"));
    assertTrue(Subnets.overlap("172.17.0.1/16", "172.17.5.0/24"));
    assertFalse(Subnets.overlap("10.199.3.0/24", "10.199.4.0/24"));
    assertFalse(Subnets.overlap("fe80::1/64", "10.0.0.0/8"));
  }
}
