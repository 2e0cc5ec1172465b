package io.choir.jepsen;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Targets chooses the nodes a fault hits: at random with the step's random source (so a choice replays
 * from the step's seed), or the primary, which it asks the replicas for.
 */
final class Targets {
  // logs under Nemeses' name, as before the targeting had a class of its own
  private static final Logger log = LoggerFactory.getLogger(Nemeses.class);

  private Targets() {}

  /**
   * pickBackup picks a node other than the primary with {@code random} (any node when the primary is
   * not known), so the choice replays from the step's seed.
   */
  static String pickBackup(List<String> nodes, Optional<String> primary, Random random) {
    List<String> backups = nodes.stream().filter(n -> primary.map(p -> !p.equals(n)).orElse(true)).toList();
    return pick(backups.isEmpty() ? nodes : backups, random);
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
}
