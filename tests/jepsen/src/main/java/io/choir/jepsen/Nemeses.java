package io.choir.jepsen;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.BiFunction;
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
 * </table>
 *
 * <p>Groups: {@code all}; {@code partitions} (partition-*); {@code kills} (kill-* and restart-all);
 * {@code pauses} (pause-*); {@code multicast} (multicast-*); {@code repair} (repair-path-cut*);
 * {@code network} (every nftables fault: partitions, multicast, repair, duplicate); {@code disk}
 * (disk-full*).
 *
 * <p>Network rules are installed inside the containers ({@link Nft}); the harness's clients are never cut.
 */
public final class Nemeses {
  private static final Logger log = LoggerFactory.getLogger(Nemeses.class);

  private static final Map<String, Nemesis> ALL = new LinkedHashMap<>();

  /** DUPLICATE_PERCENT is the share of peer datagrams {@code duplicate} sends twice. */
  static final int DUPLICATE_PERCENT = 50;
  /**
   * REPAIR_CUT_LOSS_PERCENT is the multicast loss that goes with the repair cut: enough that a backup
   * meets a gap within a few PREPAREs, not so much that it misses the election timeout's worth of
   * heartbeats (a backup hears one every 50 ms; ten lost in a row at 20% is a chance of 1e-7).
   */
  static final int REPAIR_CUT_LOSS_PERCENT = 20;
  /**
   * ELECTION_TIMEOUT_MS_DEFAULT is the server's election_timeout_ms default (ServerConfig; a test checks
   * that they agree; the server module is not on this module's main class path). The short pauses last
   * half of it, or half of election_timeout_ms when the run sets it.
   */
  static final int ELECTION_TIMEOUT_MS_DEFAULT = 500;
  /** RESTART_GRACE is how long restart-all lets a replica shut down before docker sends SIGKILL. */
  static final Duration RESTART_GRACE = Duration.ofSeconds(20);

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
  }

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
    add(new RepairCutFault("repair-path-cut", false));
    add(new RepairCutFault("repair-path-cut-all", true));
    add(new DuplicateFault("duplicate", DUPLICATE_PERCENT));
    add(new KillFault("kill-one", (c, r) -> List.of(pick(c.nodes(), r))));
    add(new KillFault("kill-primary", (c, r) -> List.of(primaryOrRandom(c, r))));
    add(new KillFault("kill-minority", (c, r) -> shuffled(c.nodes(), r).subList(0, c.nodes().size() / 2)));
    add(new KillFault("kill-all", (c, r) -> c.nodes()));
    add(new RestartAllFault("restart-all"));
    add(new PauseFault("pause-one", (c, r) -> pick(c.nodes(), r)));
    add(new PauseFault("pause-primary", Nemeses::primaryOrRandom));
    add(new PauseFault("pause-backup",
        (c, r) -> c.node(pickBackup(names(c), findPrimary(c).map(Cluster.Node::name), r))));
    add(new ShortPauseFault("pause-one-short", (c, r) -> pick(c.nodes(), r)));
    add(new ShortPauseFault("pause-primary-short", Nemeses::primaryOrRandom));
    add(new DiskFullFault("disk-full", (c, r) -> pick(c.nodes(), r)));
    add(new DiskFullFault("disk-full-primary", Nemeses::primaryOrRandom));
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
            throw new IllegalArgumentException(n + " needs at least " + minNodes(n) + " nodes");
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
    return nodes >= minNodes(name);
  }

  /** minNodes is the smallest cluster a fault means something in (1: any). */
  static int minNodes(String name) {
    if (name.equals("partition-ring") || name.equals("partition-bridge")) {
      return 5;
    }
    if (name.startsWith("partition-") || name.startsWith("repair-") || name.equals("kill-minority")
        || name.equals("duplicate")) {
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
      return Active.of(names(cluster), detail, () -> {
        for (Cluster.Node n : cluster.nodes()) {
          nft(cluster, n, Nft.heal());
        }
      });
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
      return Active.of(nodes, "kill -9 (docker kill -s KILL) of " + String.join(",", nodes) + "; restarted on stop",
          () -> {
            for (Cluster.Node n : killed) {
              if (!cluster.isRunning(n)) {
                cluster.restart(n);
              }
            }
          });
    }
  }

  private record PauseFault(String name, BiFunction<Cluster, Random, Cluster.Node> victim) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      Cluster.Node n = victim.apply(cluster, random);
      cluster.pause(n);
      return Active.of(List.of(n.name()), "docker pause of " + n.name() + "; unpaused on stop", () -> {
        if (cluster.isPaused(n)) {
          cluster.unpause(n);
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
      List<String> lossy = lossEverywhere ? names(cluster)
          : List.of(pickBackup(names(cluster), findPrimary(cluster).map(Cluster.Node::name), random));
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
      List<String> nodes = names(cluster);
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

  /**
   * RestartAllFault stops every replica cleanly at once (docker stop: SIGTERM, the server shuts down and
   * exits 0; SIGKILL only after {@link #RESTART_GRACE}) and starts them again on stop. A durability check:
   * whatever was acknowledged must be there after the restart, with no majority left running meanwhile.
   */
  private record RestartAllFault(String name) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) throws Exception {
      List<Cluster.Node> all = cluster.nodes();
      Map<String, Long> exits = new LinkedHashMap<>();
      java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(all.size());
      try {
        Map<String, java.util.concurrent.Future<Long>> stops = new LinkedHashMap<>();
        for (Cluster.Node n : all) {
          stops.put(n.name(), pool.submit(() -> cluster.stop(n, RESTART_GRACE)));
        }
        for (Map.Entry<String, java.util.concurrent.Future<Long>> e : stops.entrySet()) {
          exits.put(e.getKey(), e.getValue().get());
        }
      } catch (Exception e) {
        for (Cluster.Node n : all) { // not a cluster left down for the rest of the run
          try {
            if (!cluster.isRunning(n)) {
              cluster.restart(n);
            }
          } catch (RuntimeException again) {
            e.addSuppressed(again);
          }
        }
        throw e;
      } finally {
        pool.shutdownNow();
      }
      List<String> nodes = names(cluster);
      String detail = "docker stop (SIGTERM; SIGKILL after " + RESTART_GRACE.toSeconds() + " s) of every node at once; "
          + describeExits(exits) + "; started again on stop";
      if (exits.values().stream().anyMatch(x -> x != 0)) {
        log.warn("restart-all: not every replica shut down cleanly: {}", exits);
      }
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
          for (Cluster.Node n : all) {
            if (!cluster.isRunning(n)) {
              cluster.restart(n);
            }
          }
        }

        @Override
        public String stopDetail() {
          return "started every node again";
        }
      };
    }
  }

  /**
   * ShortPauseFault freezes a node for half the election timeout and lets it go by itself, however long
   * the schedule holds the fault: a hiccup (a GC pause, a slow disk) that must not cost a view change.
   */
  private record ShortPauseFault(String name, BiFunction<Cluster, Random, Cluster.Node> victim) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      Cluster.Node n = victim.apply(cluster, random);
      long pauseMs = shortPauseMillis(cluster.settings().serverSettings());
      long[] frozen = {-1, -1}; // ns: pause returned, unpause returned
      long viewBefore = highestView(cluster);
      cluster.pause(n);
      frozen[0] = System.nanoTime();
      Thread resume = new Thread(() -> {
        try {
          Thread.sleep(pauseMs);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        try {
          cluster.unpause(n);
          frozen[1] = System.nanoTime();
        } catch (RuntimeException e) {
          log.warn("{}: unpause of {}: {}", name, n, e.toString());
        }
      }, "nemesis-resume-" + n.name());
      resume.setDaemon(true);
      resume.start();
      return new Active() {
        @Override
        public List<String> nodes() {
          return List.of(n.name());
        }

        @Override
        public String detail() {
          return "docker pause of " + n.name() + " for " + pauseMs + " ms (half the election timeout), then"
              + " unpaused by itself";
        }

        private long viewAfter = -1;

        @Override
        public void stop() throws InterruptedException {
          resume.join(10_000);
          if (cluster.isPaused(n)) {
            cluster.unpause(n);
          }
          viewAfter = highestView(cluster);
        }

        @Override
        public String stopDetail() {
          // read after stop() joined the resume thread: its writes are visible
          String views = "; view " + viewBefore + " before, " + viewAfter + " after"
              + (viewAfter > viewBefore ? " (a view change followed)" : " (no view change)");
          return (frozen[1] < 0 ? "unpaused on stop (the timed unpause failed)"
              : n.name() + " was frozen for about " + (frozen[1] - frozen[0]) / 1_000_000
                  + " ms (docker pause returned to docker unpause returned)") + views;
        }
      };
    }
  }

  /**
   * DiskFullFault fills a node's data file system to the last block ({@link DataDisks#fill}). The
   * replica meets ENOSPC at its next log write, fails stop (StorageStage: "storage failed; stopping the
   * replica") and its container exits; stop deletes the filler and starts a stopped replica again.
   */
  private record DiskFullFault(String name, BiFunction<Cluster, Random, Cluster.Node> victim) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) throws Exception {
      DataDisks disks = cluster.dataDisks().orElseThrow(() -> new IllegalStateException(
          "the cluster has no data disks of its own (they need root, loop devices and mkfs.ext2; see DataDisks)"));
      Cluster.Node n = victim.apply(cluster, random);
      long before = disks.freeBytes(n.name());
      long filled = disks.fill(n.name());
      long left = disks.freeBytes(n.name());
      long filledAtMs = System.currentTimeMillis();
      String detail = "filled the data disk of " + n.name() + " (" + (disks.bytes() >> 20) + " MiB ext2): "
          + mib(filled) + " of filler, " + left + " bytes left of " + mib(before) + "; freed (and the replica"
          + " restarted if it stopped) on stop";
      return new Active() {
        private String outcome = "stopped";

        @Override
        public List<String> nodes() {
          return List.of(n.name());
        }

        @Override
        public String detail() {
          return detail;
        }

        @Override
        public void stop() throws Exception {
          boolean running = cluster.isRunning(n);
          String what;
          if (running) {
            what = n.name() + " was still running on the full disk";
          } else {
            long exit = cluster.exitCode(n);
            String finished = Docker.state(n.containerId()).getFinishedAt();
            long afterMs = -1;
            try {
              afterMs = java.time.Instant.parse(finished).toEpochMilli() - filledAtMs;
            } catch (RuntimeException e) {
              // unknown format: leave it out
            }
            what = n.name() + " had stopped (exit code " + exit + (afterMs >= 0 ? ", " + afterMs + " ms after the fill" : "")
                + ")";
          }
          long freed = disks.free(n.name());
          boolean restarted = false;
          if (!cluster.isRunning(n)) { // also when it was still dying at the first look
            cluster.restart(n);
            restarted = true;
          }
          outcome = what + "; freed " + mib(freed) + (restarted ? "; restarted it" : "");
        }

        @Override
        public String stopDetail() {
          return outcome;
        }
      };
    }
  }

  // ---------------------------------------------------------------- helpers

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

  /**
   * shortPauseMillis is how long the short pauses freeze a node: half the election timeout (the run's
   * election_timeout_ms, or the server's default). A backup's timer is randomized in [T, 2T)
   * (ReplicaCore.randomizedTimeout), so half of T is below every timer, with room left for the docker
   * pause and unpause calls themselves.
   */
  static long shortPauseMillis(Map<String, Object> serverSettings) {
    Object t = serverSettings.get("election_timeout_ms");
    long timeoutMs = t == null ? ELECTION_TIMEOUT_MS_DEFAULT : Long.parseLong(String.valueOf(t).trim());
    return Math.max(1, timeoutMs / 2);
  }

  /**
   * pickBackup picks a node other than the primary with {@code random} (any node when the primary is
   * not known), so the choice replays from the step's seed.
   */
  static String pickBackup(List<String> nodes, Optional<String> primary, Random random) {
    List<String> backups = nodes.stream().filter(n -> primary.map(p -> !p.equals(n)).orElse(true)).toList();
    return pick(backups.isEmpty() ? nodes : backups, random);
  }

  /** highestView is the highest view any replica reports (-1 when none answers). */
  static long highestView(Cluster cluster) {
    try {
      return cluster.status().values().stream().filter(st -> st.info() != null).mapToLong(st -> st.info().view())
          .max().orElse(-1);
    } catch (RuntimeException e) {
      return -1;
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

  static String describeExits(Map<String, Long> exits) {
    List<String> parts = new ArrayList<>();
    exits.forEach((n, x) -> parts.add(n + " exit " + x + (x == 0 ? "" : x == 137 ? " (SIGKILL: no clean shutdown)" : " (error)")));
    return String.join(", ", parts);
  }

  static String mib(long bytes) {
    return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
  }

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
    Optional<Cluster.Node> p = findPrimary(c);
    if (p.isPresent()) {
      r.nextInt(); // keep the random stream aligned with the fallback path
      return p.get();
    }
    Cluster.Node n = pick(c.nodes(), r);
    log.warn("no primary found; targeting random node {}", n);
    return n;
  }

  /** findPrimary asks the replicas who is primary, retrying up to 5 s (e.g. through a view change). */
  static Optional<Cluster.Node> findPrimary(Cluster c) {
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (System.nanoTime() < deadline) {
      Optional<Cluster.Node> p = c.primary();
      if (p.isPresent()) {
        return p;
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    return Optional.empty();
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
