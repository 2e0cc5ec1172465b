package io.choir.jepsen;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
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
 *   <tr><td>repair-path-cut</td><td>every node drops the repair path (unicast NACKs and resent PREPAREs,
 *       state-transfer TCP) while multicast PREPAREs and PREPARE_OKs flow, and one random backup loses 20%
 *       of its multicast: it falls behind with gaps it cannot fill until the heal, the others serve</td></tr>
 *   <tr><td>repair-path-cut-all</td><td>the same cut with 20% multicast loss on every node: no backup can
 *       fill its gaps, so commits stop until the heal (no view change: heartbeats and PREPARE_OKs still
 *       flow)</td></tr>
 *   <tr><td>duplicate</td><td>every node sends 50% of its peer datagrams twice (nftables netdev egress
 *       {@code dup to eth0})</td></tr>
 *   <tr><td>kill-one, kill-primary, kill-minority, kill-all</td><td>docker kill -s KILL (kill -9), restart on stop</td></tr>
 *   <tr><td>restart-all</td><td>docker stop (SIGTERM, a clean shutdown) of every node at once, start on stop:
 *       every acknowledged write must survive</td></tr>
 *   <tr><td>pause-one, pause-primary, pause-backup</td><td>docker pause (cgroup freezer) of a random node, the
 *       primary, or a random backup; unpause on stop: longer than the election timeout</td></tr>
 *   <tr><td>pause-one-short, pause-primary-short</td><td>docker pause for half the election timeout (250 ms by
 *       default), then unpaused by itself however long the fault is held: no view change should follow</td></tr>
 *   <tr><td>disk-full, disk-full-primary</td><td>the node's data file system ({@link DataDisks}, a
 *       loop-mounted ext2 on the host) filled to the last block; the replica meets ENOSPC at its next
 *       write and stops (fail-stop, exit code 4); on stop the filler is deleted and a stopped replica
 *       started again (same data). Needs root</td></tr>
 *   <tr><td>member-replace</td><td>(3 or 5 nodes) a random member cut off (alive), with 5 nodes one more,
 *       and replaced by a fresh replica (join: true) through the bare majority left; healed on stop, the
 *       removed node's state recorded and its container stopped ({@link MembershipFaults})</td></tr>
 * </table>
 *
 * <p>Groups: {@code all}; {@code partitions} (partition-*); {@code kills} (kill-* and restart-all);
 * {@code pauses} (pause-*); {@code multicast} (multicast-*); {@code repair} (repair-path-cut*);
 * {@code network} (every nftables fault: partitions, multicast, repair, duplicate); {@code disk}
 * (disk-full*); {@code membership} (member-*).
 *
 * <p>Network rules are installed inside the containers ({@link Nft}); the harness's clients are never cut.
 * The faults themselves are defined by family: {@link NetworkFaults} (nftables), {@link ProcessFaults}
 * (kill, restart, pause), {@link DiskFaults} (disk-full) and {@link MembershipFaults} (member-replace);
 * {@link Targets} picks the nodes they hit.
 */
public final class Nemeses {
  private static final Logger log = LoggerFactory.getLogger(Nemeses.class);

  private static final Map<String, Nemesis> ALL = new LinkedHashMap<>();

  /** GROUPS are the names that stand for several faults on the command line. */
  private static final Map<String, Predicate<String>> GROUPS = new LinkedHashMap<>();

  static {
    GROUPS.put("all", n -> true);
    GROUPS.put("partitions", n -> n.startsWith("partition-"));
    GROUPS.put("kills", n -> n.startsWith("kill-") || n.equals("restart-all"));
    GROUPS.put("pauses", n -> n.startsWith("pause-"));
    GROUPS.put("multicast", n -> n.startsWith("multicast-"));
    GROUPS.put("repair", n -> n.startsWith("repair-"));
    GROUPS.put("network", n -> n.startsWith("partition-") || n.startsWith("multicast-") || n.startsWith("repair-")
        || n.equals("duplicate"));
    GROUPS.put("disk", n -> n.startsWith("disk-"));
    GROUPS.put("membership", n -> n.startsWith("member-"));
  }

  static {
    NetworkFaults.all().forEach(Nemeses::add);
    ProcessFaults.all().forEach(Nemeses::add);
    DiskFaults.all().forEach(Nemeses::add);
    MembershipFaults.all().forEach(Nemeses::add);
  }

  private Nemeses() {}

  /** names are every fault's name, in catalogue order. */
  public static List<String> names() {
    return List.copyOf(ALL.keySet());
  }

  /** groups are the group names, in the order of the help text ({@code none} is no fault). */
  public static List<String> groups() {
    return List.copyOf(GROUPS.keySet());
  }

  /**
   * parse turns a comma-separated list into faults; {@code none} (or empty) is no fault, {@code all}
   * every fault that fits {@code nodes} nodes, and {@link #groups()} the others (see the class comment).
   */
  public static List<Nemesis> parse(String list, int nodes) {
    List<Nemesis> out = new ArrayList<>();
    for (String raw : list.split(",")) {
      String name = raw.trim();
      if (name.isEmpty() || name.equals("none")) {
        continue;
      }
      List<String> group;
      if (GROUPS.containsKey(name)) {
        group = names().stream().filter(GROUPS.get(name)).toList();
      } else if (ALL.containsKey(name)) {
        group = List.of(name);
      } else {
        throw new IllegalArgumentException("unknown nemesis '" + name + "'; known: " + names()
            + " and the groups none, " + String.join(", ", groups()));
      }
      boolean explicit = !GROUPS.containsKey(name);
      for (String n : group) {
        if (!fits(n, nodes)) {
          if (explicit) {
            throw new IllegalArgumentException(n + " needs at least " + minNodes(n) + " nodes"
                + (nodes > maxNodes(n) ? " and at most " + maxNodes(n) : ""));
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
    return nodes >= minNodes(name) && nodes <= maxNodes(name);
  }

  /**
   * maxNodes is the largest cluster a fault can run in: member-replace's newcomer lists the voters and
   * itself in {@code replicas}, which holds at most 7, so 7 nodes leave it no room.
   */
  static int maxNodes(String name) {
    return name.startsWith("member-") ? 6 : Integer.MAX_VALUE;
  }

  /** minNodes is the smallest cluster a fault means something in (1: any). */
  static int minNodes(String name) {
    if (name.equals("partition-ring") || name.equals("partition-bridge")) {
      return 5;
    }
    if (name.startsWith("partition-") || name.startsWith("repair-") || name.equals("kill-minority")
        || name.equals("duplicate") || name.startsWith("member-")) {
      return 3; // needs peers (a single replica has no peer traffic) or a minority to kill
    }
    return 1;
  }

  /**
   * healAll undoes every fault on every node: deletes the disk fillers (before any restart: a replica
   * that stopped on a full disk would stop again), resumes paused containers, starts stopped ones (same
   * data), then deletes the nftables tables in each; returns what it did.
   */
  public static String healAll(Cluster cluster) {
    List<String> done = new ArrayList<>();
    cluster.dataDisks().ifPresent(d -> {
      List<String> freed = d.freeAll();
      if (!freed.isEmpty()) {
        done.add("freed the data disk of " + String.join(",", freed));
      }
    });
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

  private static void add(Nemesis n) {
    ALL.put(n.name(), n);
  }
}
