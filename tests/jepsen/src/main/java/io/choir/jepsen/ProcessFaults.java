package io.choir.jepsen;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ProcessFaults are the faults of the catalogue ({@link Nemeses}) that stop or freeze replica
 * processes through Docker: kill -9 of one, the primary, a minority or all; a clean restart of all;
 * and pauses (cgroup freezer) longer or shorter than the election timeout. Each undoes itself on stop
 * (restart, unpause).
 */
final class ProcessFaults {
  // logs under Nemeses' name, as before these faults had a class of their own
  private static final Logger log = LoggerFactory.getLogger(Nemeses.class);

  /**
   * ELECTION_TIMEOUT_MS_DEFAULT is the server's election_timeout_ms default (ServerConfig; a test checks
   * that they agree; the server module is not on this module's main class path). The short pauses last
   * half of it, or half of election_timeout_ms when the run sets it.
   */
  static final int ELECTION_TIMEOUT_MS_DEFAULT = 500;
  /** RESTART_GRACE is how long restart-all lets a replica shut down before docker sends SIGKILL. */
  static final Duration RESTART_GRACE = Duration.ofSeconds(20);

  private ProcessFaults() {}

  /** all are the process faults in catalogue order. */
  static List<Nemesis> all() {
    List<Nemesis> out = new ArrayList<>();
    out.add(new KillFault("kill-one", (c, r) -> List.of(Targets.pick(c.nodes(), r))));
    out.add(new KillFault("kill-primary", (c, r) -> List.of(Targets.primaryOrRandom(c, r))));
    out.add(new KillFault("kill-minority", (c, r) -> Targets.shuffled(c.nodes(), r).subList(0, c.nodes().size() / 2)));
    out.add(new KillFault("kill-all", (c, r) -> c.nodes()));
    out.add(new RestartAllFault("restart-all"));
    out.add(new PauseFault("pause-one", (c, r) -> Targets.pick(c.nodes(), r)));
    out.add(new PauseFault("pause-primary", Targets::primaryOrRandom));
    out.add(new PauseFault("pause-backup",
        (c, r) -> c.node(Targets.pickBackup(Targets.names(c), Targets.findPrimary(c).map(Cluster.Node::name), r))));
    out.add(new ShortPauseFault("pause-one-short", (c, r) -> Targets.pick(c.nodes(), r)));
    out.add(new ShortPauseFault("pause-primary-short", Targets::primaryOrRandom));
    return out;
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
   * RestartAllFault stops every replica cleanly at once (docker stop: SIGTERM, the server shuts down and
   * exits 0; SIGKILL only after {@link #RESTART_GRACE}) and starts them again on stop. A durability check:
   * whatever was acknowledged must be there after the restart, with no majority left running meanwhile.
   */
  private record RestartAllFault(String name) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) throws Exception {
      List<Cluster.Node> all = cluster.nodes();
      Map<String, Long> exits = new LinkedHashMap<>();
      ExecutorService pool = Executors.newFixedThreadPool(all.size());
      try {
        Map<String, Future<Long>> stops = new LinkedHashMap<>();
        for (Cluster.Node n : all) {
          stops.put(n.name(), pool.submit(() -> cluster.stop(n, RESTART_GRACE)));
        }
        for (Map.Entry<String, Future<Long>> e : stops.entrySet()) {
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
      List<String> nodes = Targets.names(cluster);
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
      long viewBefore = highestView(cluster);
      cluster.pause(n);
      long pausedAtNs = System.nanoTime(); // docker pause returned
      // when docker unpause returned, set by the resume thread; never completed when the timed unpause fails
      CompletableFuture<Long> unpausedAtNs = new CompletableFuture<>();
      Thread resume = new Thread(() -> {
        try {
          Thread.sleep(pauseMs);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        try {
          cluster.unpause(n);
          unpausedAtNs.complete(System.nanoTime());
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
          Long unpausedAt = unpausedAtNs.getNow(null);
          return (unpausedAt == null ? "unpaused on stop (the timed unpause failed)"
              : n.name() + " was frozen for about " + (unpausedAt - pausedAtNs) / 1_000_000
                  + " ms (docker pause returned to docker unpause returned)") + views;
        }
      };
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

  /** highestView is the highest view any replica reports (-1 when none answers). */
  static long highestView(Cluster cluster) {
    try {
      return cluster.status().values().stream().filter(st -> st.info() != null).mapToLong(st -> st.info().view())
          .max().orElse(-1);
    } catch (RuntimeException e) {
      return -1;
    }
  }

  static String describeExits(Map<String, Long> exits) {
    List<String> parts = new ArrayList<>();
    exits.forEach((n, x) -> parts.add(n + " exit " + x + (x == 0 ? "" : x == 137 ? " (SIGKILL: no clean shutdown)" : " (error)")));
    return String.join(", ", parts);
  }
}
