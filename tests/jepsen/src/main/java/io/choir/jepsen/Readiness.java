package io.choir.jepsen;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Readiness asks replicas their HTTP {@code /ready} and {@code /health} (docs/metrics.md): each replica
 * serves its metrics_address on the container's own loopback ({@link NodeSpec#METRICS_ADDRESS}), and the
 * harness asks it with the image's {@code choir-ready} script through {@code docker exec}, so the request
 * never leaves the container. {@link #await} polls until enough replicas answer 200 to /ready.
 *
 * @param ready whether enough replicas were ready within the wait
 * @param served false when /ready cannot serve here (the image has no choir-ready, or nothing listens):
 *     the caller then waits the old way, by status rounds, alone
 * @param waitedMillis how long the wait took
 * @param answers each replica's last answer (its /ready body, or why it gave none)
 */
public record Readiness(boolean ready, boolean served, long waitedMillis, Map<String, String> answers) {
  /** Probe is one answer: HTTP 200 or not, and the body (or the script's complaint). */
  public record Probe(boolean ok, boolean served, String answer) {}

  /** NOTHING_LISTENS_GRACE is how long no metrics port may listen anywhere before /ready counts as not served. */
  static final Duration NOTHING_LISTENS_GRACE = Duration.ofSeconds(30);

  /** probe asks {@code n} for {@code path} ("/ready" or "/health"). */
  public static Probe probe(Cluster c, Cluster.Node n, String path) {
    try {
      Docker.ExecResult r = Docker.exec(n.containerId(), Duration.ofSeconds(10), "/opt/choir/bin/choir-ready", path);
      String answer = (r.stdout() + r.stderr()).strip();
      // 126/127: no such script; "nothing listens": metrics_address is not set (another image or setting)
      boolean served = r.exitCode() != 126 && r.exitCode() != 127;
      return new Probe(r.ok(), served, answer);
    } catch (RuntimeException e) {
      return new Probe(false, true, e.getClass().getSimpleName() + ": " + e.getMessage()); // paused, stopped, ...
    }
  }

  /**
   * await polls {@code nodes}' /ready every 250 ms until at least {@code needed} answer 200 or {@code
   * timeout} passes. It gives up early (served false) when every replica says /ready cannot serve: at
   * once when the image has no choir-ready, after {@link #NOTHING_LISTENS_GRACE} when nothing listens on
   * the metrics port on any of them (a replica opens it a few seconds after its container starts).
   */
  public static Readiness await(Cluster c, List<Cluster.Node> nodes, int needed, Duration timeout)
      throws InterruptedException {
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    while (true) {
      Map<String, String> answers = new LinkedHashMap<>();
      int ready = 0;
      int unserved = 0;
      for (Cluster.Node n : nodes) {
        Probe p = probe(c, n, "/ready");
        answers.put(n.name(), p.answer());
        ready += p.ok() ? 1 : 0;
        boolean early = System.nanoTime() - start < NOTHING_LISTENS_GRACE.toNanos();
        unserved += !p.served() || (!early && p.answer().contains("nothing listens")) ? 1 : 0;
      }
      long waited = (System.nanoTime() - start) / 1_000_000;
      if (ready >= needed) {
        return new Readiness(true, true, waited, answers);
      }
      if (unserved == nodes.size() || System.nanoTime() >= deadline) {
        return new Readiness(false, unserved < nodes.size(), waited, answers);
      }
      Thread.sleep(250);
    }
  }

  /** health is every node's /health answer, e.g. {@code n1=200 {"status":"ok"}}. */
  public static Map<String, String> health(Cluster c, List<Cluster.Node> nodes) {
    Map<String, String> out = new LinkedHashMap<>();
    for (Cluster.Node n : nodes) {
      Probe p = probe(c, n, "/health");
      out.put(n.name(), (p.ok() ? "200 " : "not 200: ") + p.answer());
    }
    return out;
  }

  /** describe is one line. */
  public String describe() {
    return (ready ? "ready after " : served ? "NOT ready after " : "/ready not served, after ") + waitedMillis + " ms: "
        + answers;
  }
}
