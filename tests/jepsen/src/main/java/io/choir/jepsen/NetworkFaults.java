package io.choir.jepsen;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * NetworkFaults are the nftables faults of the catalogue ({@link Nemeses}): the partitions, multicast
 * cut and loss, the repair-path cut and duplication. Each installs its rules inside the containers
 * ({@link Nft}) and deletes the harness's tables on stop; the counters it reads back before the heal
 * go into the stop detail.
 */
final class NetworkFaults {
  // logs under Nemeses' name, as before these faults had a class of their own
  private static final Logger log = LoggerFactory.getLogger(Nemeses.class);

  /** DUPLICATE_PERCENT is the share of peer datagrams {@code duplicate} sends twice. */
  static final int DUPLICATE_PERCENT = 50;
  /**
   * REPAIR_CUT_LOSS_PERCENT is the multicast loss that goes with the repair cut: enough that a backup
   * meets a gap within a few PREPAREs, not so much that it misses the election timeout's worth of
   * heartbeats (a backup hears one every 50 ms; ten lost in a row at 20% is a chance of 1e-7).
   */
  static final int REPAIR_CUT_LOSS_PERCENT = 20;

  private NetworkFaults() {}

  /** all are the network faults in catalogue order. */
  static List<Nemesis> all() {
    List<Nemesis> out = new ArrayList<>();
    out.add(partition("partition-one", (c, r) -> {
      String victim = Targets.pick(c.nodes(), r).name();
      return Nft.Grudge.isolate(victim, Targets.names(c));
    }, (c, g) -> List.of(isolated(g))));
    out.add(partition("partition-primary", (c, r) -> {
      String victim = Targets.primaryOrRandom(c, r).name();
      return Nft.Grudge.isolate(victim, Targets.names(c));
    }, (c, g) -> List.of(isolated(g))));
    out.add(partition("partition-halves", (c, r) -> {
      List<String> order = Targets.shuffled(Targets.names(c), r);
      int minority = order.size() / 2;
      return Nft.Grudge.split(order.subList(0, minority), order.subList(minority, order.size()));
    }, (c, g) -> minoritySide(g)));
    out.add(partition("partition-ring", (c, r) -> Nft.Grudge.ring(Targets.shuffled(Targets.names(c), r)),
        (c, g) -> new ArrayList<>(g.keySet())));
    out.add(partition("partition-bridge", (c, r) -> Nft.Grudge.bridge(Targets.shuffled(Targets.names(c), r)),
        (c, g) -> new ArrayList<>(g.keySet())));
    out.add(partition("partition-primary-oneway", (c, r) -> {
      String primary = Targets.primaryOrRandom(c, r).name();
      return Nft.Grudge.deafTo(primary, Targets.names(c));
    }, (c, g) -> List.copyOf(g.values().iterator().next())));
    out.add(new MulticastFault("multicast-cut", Nft.dropMulticast(), "every node drops all multicast datagrams"));
    for (int pct : new int[] {5, 20, 50}) {
      out.add(new MulticastFault("multicast-loss-" + pct, Nft.multicastLoss(pct),
          "every node drops " + pct + "% of arriving multicast datagrams at random"));
    }
    out.add(new RepairCutFault("repair-path-cut", false));
    out.add(new RepairCutFault("repair-path-cut-all", true));
    out.add(new DuplicateFault("duplicate", DUPLICATE_PERCENT));
    return out;
  }

  private static Nemesis partition(String name,
      BiFunction<Cluster, Random, Map<String, Set<String>>> grudge,
      BiFunction<Cluster, Map<String, Set<String>>, List<String>> targets) {
    return new Nemesis() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public Active start(Cluster cluster, Random random) {
        Map<String, Set<String>> g = grudge.apply(cluster, random);
        for (Map.Entry<String, Set<String>> e : g.entrySet()) {
          if (e.getValue().isEmpty()) {
            continue;
          }
          List<String> ips = e.getValue().stream().map(x -> cluster.node(x).ip()).toList();
          nft(cluster, cluster.node(e.getKey()), Nft.ensureTable() + Nft.dropFrom(ips));
        }
        return Active.of(targets.apply(cluster, g), Nft.Grudge.describe(g), () -> {
          for (String n : g.keySet()) {
            nft(cluster, cluster.node(n), Nft.heal());
          }
        });
      }
    };
  }

  private record MulticastFault(String name, String rule, String detail) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      for (Cluster.Node n : cluster.nodes()) {
        nft(cluster, n, Nft.ensureTable() + rule);
      }
      return Active.of(Targets.names(cluster), detail, () -> {
        for (Cluster.Node n : cluster.nodes()) {
          nft(cluster, n, Nft.heal());
        }
      });
    }
  }

  /**
   * RepairCutFault cuts the repair path on every node ({@link Nft#repairCut}) and adds multicast loss,
   * on one random backup or on every node, so that gaps appear and stay until the heal. Without loss
   * the cut alone changes nothing on a bridge that loses nothing.
   */
  private record RepairCutFault(String name, boolean lossEverywhere) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      List<String> lossy = lossEverywhere ? Targets.names(cluster)
          : List.of(Targets.pickBackup(Targets.names(cluster), Targets.findPrimary(cluster).map(Cluster.Node::name), random));
      try {
        for (Cluster.Node n : cluster.nodes()) {
          nft(cluster, n, Nft.ensureTable() + Nft.repairCut()
              + (lossy.contains(n.name()) ? Nft.multicastLoss(REPAIR_CUT_LOSS_PERCENT) : ""));
        }
      } catch (RuntimeException e) {
        healQuietly(cluster); // not half a fault for the rest of the run
        throw e;
      }
      String detail = "repair path cut on every node (unicast NACK and PREPARE resends to port " + NodeSpec.PEER_PORT
          + ", state-transfer TCP); " + REPAIR_CUT_LOSS_PERCENT + "% multicast loss on "
          + (lossEverywhere ? "every node" : String.join(",", lossy) + " (a backup)");
      return new Active() {
        private String outcome = "stopped";

        @Override
        public List<String> nodes() {
          return lossy;
        }

        @Override
        public String detail() {
          return detail;
        }

        @Override
        public void stop() {
          String applied = appliedSummary(cluster); // before the heal: how far behind the lossy nodes fell
          long repair = 0;
          long tcp = 0;
          long loss = 0;
          for (Cluster.Node n : cluster.nodes()) {
            String listing = listRules(cluster, n);
            repair += Nft.packets(listing, "@th,");
            tcp += Nft.packets(listing, "tcp ");
            loss += Nft.packets(listing, "numgen");
          }
          for (Cluster.Node n : cluster.nodes()) {
            nft(cluster, n, Nft.heal());
          }
          outcome = "dropped " + repair + " repair datagrams (NACKs, resends), " + tcp
              + " state-transfer TCP segments and " + loss + " multicast datagrams; before the heal: " + applied;
        }

        @Override
        public String stopDetail() {
          return outcome;
        }
      };
    }
  }

  /** DuplicateFault makes every node send a share of its peer datagrams twice ({@link Nft#duplicate}). */
  private record DuplicateFault(String name, int percent) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      for (Cluster.Node n : cluster.nodes()) {
        Docker.ExecResult r = cluster.exec(n, Nft.command(Nft.duplicate(percent)));
        if (!r.ok()) {
          Docker.ExecResult uname = cluster.exec(n, "uname", "-r");
          healQuietly(cluster);
          throw new IllegalStateException("nft netdev egress dup on " + n + " exited " + r.exitCode() + ": "
              + r.stderr().trim() + " (kernel " + uname.stdout().trim() + "; the egress hook needs Linux 5.16)");
        }
      }
      List<String> nodes = Targets.names(cluster);
      return new Active() {
        private String outcome = "stopped";

        @Override
        public List<String> nodes() {
          return nodes;
        }

        @Override
        public String detail() {
          return "every node sends " + percent + "% of its peer datagrams (UDP from port " + NodeSpec.PEER_PORT
              + ") twice (nft netdev egress dup to " + Nft.DEVICE + ")";
        }

        @Override
        public void stop() {
          long copies = 0;
          for (Cluster.Node n : cluster.nodes()) {
            copies += Nft.packets(listRules(cluster, n), "dup to");
          }
          for (Cluster.Node n : cluster.nodes()) {
            nft(cluster, n, Nft.heal());
          }
          outcome = "sent " + copies + " duplicate datagrams";
        }

        @Override
        public String stopDetail() {
          return outcome;
        }
      };
    }
  }

  /** healQuietly deletes the harness's tables on every node it can reach, logging what fails. */
  private static void healQuietly(Cluster cluster) {
    for (Cluster.Node n : cluster.nodes()) {
      try {
        nft(cluster, n, Nft.heal());
      } catch (RuntimeException e) {
        log.warn("heal nft {}: {}", n, e.toString());
      }
    }
  }

  /** listRules is the node's harness tables with their counters ("" when the exec fails). */
  private static String listRules(Cluster cluster, Cluster.Node n) {
    try {
      return cluster.exec(n, Nft.list()).stdout();
    } catch (RuntimeException e) {
      log.debug("listing the rules of {}: {}", n, e.toString());
      return "";
    }
  }

  /** appliedSummary is every node's applied op, e.g. "n1 applied 950, n2 applied 712, n3 down". */
  static String appliedSummary(Cluster cluster) {
    List<String> parts = new ArrayList<>();
    try {
      cluster.status().forEach((n, st) -> parts.add(n.name() + (st.info() == null ? " down"
          : " applied " + st.info().applied())));
    } catch (RuntimeException e) {
      return "no status (" + e.getMessage() + ")";
    }
    return String.join(", ", parts);
  }

  private static void nft(Cluster cluster, Cluster.Node n, String script) {
    Docker.ExecResult r = cluster.exec(n, Nft.command(script));
    if (!r.ok()) {
      throw new IllegalStateException("nft on " + n + " exited " + r.exitCode() + ": " + r.stderr().trim());
    }
  }

  private static String isolated(Map<String, Set<String>> g) {
    // the isolated node is the one deaf to all the others
    return g.entrySet().stream().max((a, b) -> Integer.compare(a.getValue().size(), b.getValue().size()))
        .map(Map.Entry::getKey).orElseThrow();
  }

  private static List<String> minoritySide(Map<String, Set<String>> g) {
    // the minority's members are deaf to the majority: their sets are the larger ones
    int max = g.values().stream().mapToInt(Set::size).max().orElse(0);
    return g.entrySet().stream().filter(e -> e.getValue().size() == max).map(Map.Entry::getKey).toList();
  }
}
