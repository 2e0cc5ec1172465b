package io.choir.jepsen;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Nemeses is the catalogue of faults, by name:
 *
 * <table>
 *   <caption>faults</caption>
 *   <tr><td>partition-one</td><td>a random node cut off from all others, both ways (nftables)</td></tr>
 *   <tr><td>partition-primary</td><td>the current primary cut off from all others</td></tr>
 *   <tr><td>partition-halves</td><td>a random minority and majority cut from each other</td></tr>
 *   <tr><td>partition-ring</td><td>(5+ nodes) every node hears only its ring neighbours: overlapping majorities</td></tr>
 *   <tr><td>partition-bridge</td><td>two halves that cannot talk, one node talking to both</td></tr>
 *   <tr><td>partition-primary-oneway</td><td>the others stop hearing the primary; it still hears them</td></tr>
 *   <tr><td>multicast-cut</td><td>every node drops all multicast; unicast (repair) still works</td></tr>
 *   <tr><td>multicast-loss-5/20/50</td><td>every node drops that share of arriving multicast at random</td></tr>
 *   <tr><td>kill-one, kill-primary, kill-minority, kill-all</td><td>docker kill -s KILL (kill -9), restart on stop</td></tr>
 *   <tr><td>pause-one, pause-primary</td><td>docker pause (cgroup freezer), unpause on stop</td></tr>
 * </table>
 *
 * Network rules are installed inside the containers ({@link Nft}); the harness's clients are never cut.
 */
public final class Nemeses {
  private static final Logger log = LoggerFactory.getLogger(Nemeses.class);

  private static final Map<String, Nemesis> ALL = new LinkedHashMap<>();

  static {
    add(partition("partition-one", (c, r) -> {
      String victim = pick(c.nodes(), r).name();
      return Nft.Grudge.isolate(victim, names(c));
    }, (c, g) -> List.of(isolated(g))));
    add(partition("partition-primary", (c, r) -> {
      String victim = primaryOrRandom(c, r).name();
      return Nft.Grudge.isolate(victim, names(c));
    }, (c, g) -> List.of(isolated(g))));
    add(partition("partition-halves", (c, r) -> {
      List<String> order = shuffled(names(c), r);
      int minority = order.size() / 2;
      return Nft.Grudge.split(order.subList(0, minority), order.subList(minority, order.size()));
    }, (c, g) -> minoritySide(g)));
    add(partition("partition-ring", (c, r) -> Nft.Grudge.ring(shuffled(names(c), r)),
        (c, g) -> new ArrayList<>(g.keySet())));
    add(partition("partition-bridge", (c, r) -> Nft.Grudge.bridge(shuffled(names(c), r)),
        (c, g) -> new ArrayList<>(g.keySet())));
    add(partition("partition-primary-oneway", (c, r) -> {
      String primary = primaryOrRandom(c, r).name();
      return Nft.Grudge.deafTo(primary, names(c));
    }, (c, g) -> List.copyOf(g.values().iterator().next())));
    add(new MulticastFault("multicast-cut", Nft.dropMulticast(), "every node drops all multicast datagrams"));
    for (int pct : new int[] {5, 20, 50}) {
      add(new MulticastFault("multicast-loss-" + pct, Nft.multicastLoss(pct),
          "every node drops " + pct + "% of arriving multicast datagrams at random"));
    }
    add(new KillFault("kill-one", (c, r) -> List.of(pick(c.nodes(), r))));
    add(new KillFault("kill-primary", (c, r) -> List.of(primaryOrRandom(c, r))));
    add(new KillFault("kill-minority", (c, r) -> shuffled(c.nodes(), r).subList(0, c.nodes().size() / 2)));
    add(new KillFault("kill-all", (c, r) -> c.nodes()));
    add(new PauseFault("pause-one", (c, r) -> pick(c.nodes(), r)));
    add(new PauseFault("pause-primary", Nemeses::primaryOrRandom));
  }

  private Nemeses() {}

  /** names are every fault's name, in catalogue order. */
  public static List<String> names() {
    return List.copyOf(ALL.keySet());
  }

  /**
   * parse turns a comma-separated list into faults; {@code none} (or empty) is no fault, {@code all}
   * every fault that fits {@code nodes} nodes, {@code partitions}, {@code kills}, {@code pauses},
   * {@code multicast} the groups.
   */
  public static List<Nemesis> parse(String list, int nodes) {
    List<Nemesis> out = new ArrayList<>();
    for (String raw : list.split(",")) {
      String name = raw.trim();
      if (name.isEmpty() || name.equals("none")) {
        continue;
      }
      List<String> group = switch (name) {
        case "all" -> names();
        case "partitions" -> names().stream().filter(n -> n.startsWith("partition-")).toList();
        case "kills" -> names().stream().filter(n -> n.startsWith("kill-")).toList();
        case "pauses" -> names().stream().filter(n -> n.startsWith("pause-")).toList();
        case "multicast" -> names().stream().filter(n -> n.startsWith("multicast-")).toList();
        default -> {
          if (!ALL.containsKey(name)) {
            throw new IllegalArgumentException("unknown nemesis '" + name + "'; known: " + names()
                + " and the groups none, all, partitions, kills, pauses, multicast");
          }
          yield List.of(name);
        }
      };
      boolean explicit = group.size() == 1 && group.get(0).equals(name);
      for (String n : group) {
        if (!fits(n, nodes)) {
          if (explicit) {
            throw new IllegalArgumentException(n + " needs at least 5 nodes");
          }
          continue;
        }
        if (out.stream().noneMatch(x -> x.name().equals(n))) {
          out.add(ALL.get(n));
        }
      }
    }
    return out;
  }

  /** byName is one fault. */
  public static Nemesis byName(String name) {
    Nemesis n = ALL.get(name);
    if (n == null) {
      throw new IllegalArgumentException("unknown nemesis '" + name + "'; known: " + names());
    }
    return n;
  }

  static boolean fits(String name, int nodes) {
    return switch (name) {
      case "partition-ring", "partition-bridge" -> nodes >= 5;
      default -> nodes >= 3 || !(name.startsWith("partition-") || name.equals("kill-minority"));
    };
  }

  /**
   * healAll undoes every fault on every node: resumes paused containers, starts stopped ones (same data),
   * then deletes the nftables table in each; returns what it did.
   */
  public static String healAll(Cluster cluster) {
    List<String> done = new ArrayList<>();
    for (Cluster.Node n : cluster.nodes()) {
      try {
        if (cluster.isPaused(n)) {
          cluster.unpause(n);
          done.add("unpaused " + n);
        }
        if (!cluster.isRunning(n)) {
          cluster.restart(n);
          done.add("restarted " + n);
        }
      } catch (RuntimeException e) {
        done.add(n + ": " + e.getMessage());
        log.warn("heal {}: {}", n, e.toString());
      }
    }
    for (Cluster.Node n : cluster.nodes()) {
      try {
        Docker.ExecResult r = cluster.exec(n, Nft.command(Nft.heal()));
        if (!r.ok()) {
          done.add(n + " nft: " + r.stderr().trim());
        }
      } catch (RuntimeException e) {
        done.add(n + " nft: " + e.getMessage());
        log.warn("heal nft {}: {}", n, e.toString());
      }
    }
    return done.isEmpty() ? "network healed on all nodes" : "network healed; " + String.join(", ", done);
  }

  // ---------------------------------------------------------------- faults

  private static void add(Nemesis n) {
    ALL.put(n.name(), n);
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
        List<String> nodes = targets.apply(cluster, g);
        String detail = Nft.Grudge.describe(g);
        return new Active() {
          @Override
          public List<String> nodes() {
            return nodes;
          }

          @Override
          public String detail() {
            return detail;
          }

          @Override
          public void stop() {
            for (String n : g.keySet()) {
              nft(cluster, cluster.node(n), Nft.heal());
            }
          }
        };
      }
    };
  }

  private record MulticastFault(String name, String rule, String detail) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      for (Cluster.Node n : cluster.nodes()) {
        nft(cluster, n, Nft.ensureTable() + rule);
      }
      List<String> nodes = names(cluster);
      return new Active() {
        @Override
        public List<String> nodes() {
          return nodes;
        }

        @Override
        public String detail() {
          return detail;
        }

        @Override
        public void stop() {
          for (Cluster.Node n : cluster.nodes()) {
            nft(cluster, n, Nft.heal());
          }
        }
      };
    }
  }

  private record KillFault(String name, BiFunction<Cluster, Random, List<Cluster.Node>> victims) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      List<Cluster.Node> killed = List.copyOf(victims.apply(cluster, random));
      for (Cluster.Node n : killed) {
        cluster.kill(n);
      }
      List<String> nodes = killed.stream().map(Cluster.Node::name).toList();
      return new Active() {
        @Override
        public List<String> nodes() {
          return nodes;
        }

        @Override
        public String detail() {
          return "kill -9 (docker kill -s KILL) of " + String.join(",", nodes) + "; restarted on stop";
        }

        @Override
        public void stop() {
          for (Cluster.Node n : killed) {
            if (!cluster.isRunning(n)) {
              cluster.restart(n);
            }
          }
        }
      };
    }
  }

  private record PauseFault(String name, BiFunction<Cluster, Random, Cluster.Node> victim) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      Cluster.Node n = victim.apply(cluster, random);
      cluster.pause(n);
      return new Active() {
        @Override
        public List<String> nodes() {
          return List.of(n.name());
        }

        @Override
        public String detail() {
          return "docker pause of " + n.name() + "; unpaused on stop";
        }

        @Override
        public void stop() {
          if (cluster.isPaused(n)) {
            cluster.unpause(n);
          }
        }
      };
    }
  }

  // ---------------------------------------------------------------- helpers

  private static void nft(Cluster cluster, Cluster.Node n, String script) {
    Docker.ExecResult r = cluster.exec(n, Nft.command(script));
    if (!r.ok()) {
      throw new IllegalStateException("nft on " + n + " exited " + r.exitCode() + ": " + r.stderr().trim());
    }
  }

  static List<String> names(Cluster c) {
    return c.nodes().stream().map(Cluster.Node::name).toList();
  }

  static <T> T pick(List<T> from, Random r) {
    return from.get(r.nextInt(from.size()));
  }

  static <T> List<T> shuffled(List<T> in, Random r) {
    List<T> out = new ArrayList<>(in);
    Collections.shuffle(out, r);
    return out;
  }

  /**
   * primaryOrRandom asks the replicas who is primary (retrying up to 5 s, e.g. through a view change);
   * without an answer it takes a random node, and says so in the log.
   */
  static Cluster.Node primaryOrRandom(Cluster c, Random r) {
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (System.nanoTime() < deadline) {
      Optional<Cluster.Node> p = c.primary();
      if (p.isPresent()) {
        r.nextInt(); // keep the random stream aligned with the fallback path
        return p.get();
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    Cluster.Node n = pick(c.nodes(), r);
    log.warn("no primary found; targeting random node {}", n);
    return n;
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
