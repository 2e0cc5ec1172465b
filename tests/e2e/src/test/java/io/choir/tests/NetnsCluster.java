package io.choir.tests;

import static org.junit.jupiter.api.Assertions.fail;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import io.choir.server.security.ClusterKeys;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * NetnsCluster runs one replica per host of a {@link NetnsHosts} as a real process inside that host's
 * network namespace (`ip netns exec NS java ... server --config F`): client and peer addresses are the
 * host's 10.213.K.i, multicast goes out of its ch0 and across the bridge, never over loopback. The
 * cluster is keyed (a fresh cluster key per cluster) and its client ports are plaintext, accepted by name
 * (accept_plaintext_clients), since only this machine's namespaces can reach them.
 *
 * <p>Every namespace has its own network stack, so the ports are fixed: clients 7301, peers 7401, the
 * group 239.255.77.1:7500.
 */
final class NetnsCluster implements AutoCloseable {
  static final int CLIENT_PORT = 7301;
  static final int PEER_PORT = 7401;
  static final String GROUP = "239.255.77.1:7500";

  private final NetnsHosts hosts;
  private final Path dir;
  private final String clusterId;
  private final List<ReplicaProcess> replicas = new ArrayList<>();
  private final List<String> endpoints = new ArrayList<>();

  /** Writes the configs of one replica per host into dir (nothing starts yet); extraYaml goes into each. */
  NetnsCluster(NetnsHosts hosts, Path dir, String name, String extraYaml) throws IOException {
    this.hosts = hosts;
    this.dir = dir;
    this.clusterId = name + "-" + hosts.prefix();
    Path key = dir.resolve("cluster.key");
    ClusterKeys.generate(1, new SecureRandom()).write(key);
    StringBuilder members = new StringBuilder();
    for (int i = 1; i <= hosts.size(); i++) {
      members.append("  - id: ").append(i).append('\n')
          .append("    client: ").append(hosts.address(i)).append(':').append(CLIENT_PORT).append('\n')
          .append("    peer: ").append(hosts.address(i)).append(':').append(PEER_PORT).append('\n');
    }
    for (int i = 1; i <= hosts.size(); i++) {
      Path yaml = dir.resolve("node" + i + ".yaml");
      Files.writeString(yaml, "cluster_id: " + clusterId + "\n"
          + "replica_id: " + i + "\n"
          + "replicas:\n" + members
          + "data_dir: " + dir.toAbsolutePath().resolve("data").resolve("node" + i) + "\n"
          + "durability: fsync\n"
          + "multicast_group: " + GROUP + "\n"
          + "multicast_interface: " + NetnsHosts.hostInterface() + "\n"
          + "cluster_key_file: " + key.toAbsolutePath() + "\n"
          + "accept_plaintext_clients: true\n"
          + "log_level: warn\n"
          + extraYaml);
      endpoints.add(hosts.address(i) + ":" + CLIENT_PORT);
      replicas.add(new ReplicaProcess(yaml, log(i), hosts.address(i), CLIENT_PORT, List.of("-Xmx256m"),
          hosts.execPrefix(i)));
    }
  }

  Path log(int id) {
    return dir.resolve("node" + id + ".log");
  }

  int size() {
    return replicas.size();
  }

  List<String> endpoints() {
    return List.copyOf(endpoints);
  }

  String endpoint(int id) {
    return endpoints.get(id - 1);
  }

  ReplicaProcess replica(int id) {
    return replicas.get(id - 1);
  }

  /** Starts every replica at once and waits until each client port accepts connections. */
  void startAll() throws InterruptedException {
    List<Thread> starters = new ArrayList<>();
    List<Exception> failures = Collections.synchronizedList(new ArrayList<>());
    for (ReplicaProcess r : replicas) {
      Thread t = new Thread(() -> {
        try {
          r.start();
        } catch (Exception e) {
          failures.add(e);
        }
      });
      t.start();
      starters.add(t);
    }
    for (Thread t : starters) {
      t.join();
    }
    if (!failures.isEmpty()) {
      throw new IllegalStateException("a replica did not start", failures.get(0));
    }
  }

  /** A client of every endpoint with the given request timeout; the caller closes it. */
  ChoirClient client(Duration requestTimeout) {
    return ChoirClient.builder().endpoints(endpoints).requestTimeout(requestTimeout).build();
  }

  /** Each replica's status in id order; null where a replica did not answer. */
  List<ReplicaInfo> statuses(ChoirClient c) {
    List<ReplicaInfo> out = new ArrayList<>();
    for (String ep : endpoints) {
      ReplicaStatusResult r = c.status(ep);
      out.add(r.isOk() ? r.info() : null);
    }
    return out;
  }

  /** The id of the replica that says it is primary in the highest view, waiting up to timeout. */
  int awaitPrimary(ChoirClient c, Duration timeout) throws InterruptedException {
    return ProcessCluster.awaitPrimary(() -> statuses(c), timeout);
  }

  /**
   * Waits until every replica answers in the same view, exactly one is primary, and all have applied
   * everything committed with the same checksum (ProcessCluster.converged); returns their statuses.
   */
  List<ReplicaInfo> awaitConverged(ChoirClient c, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<ReplicaInfo> last = List.of();
    while (System.nanoTime() < deadline) {
      last = statuses(c);
      if (ProcessCluster.converged(last)) {
        return last;
      }
      TimeUnit.MILLISECONDS.sleep(100); // polling status; convergence has no event to wait on from here
    }
    fail("replicas did not converge in " + timeout + ": " + last);
    return last;
  }

  /** Stops every replica (kill -9) and prints the last warnings and errors of each log. */
  @Override
  public void close() {
    replicas.forEach(ReplicaProcess::close);
    for (int i = 1; i <= replicas.size(); i++) {
      try {
        if (Files.exists(log(i))) {
          List<String> lines = Files.readAllLines(log(i)).stream()
              .filter(l -> l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("Exception")).toList();
          for (String l : lines.subList(Math.max(0, lines.size() - 20), lines.size())) {
            System.out.println("[" + hosts.namespace(i) + "] " + l);
          }
        }
      } catch (IOException e) {
        System.out.println("[" + hosts.namespace(i) + "] log unreadable: " + e);
      }
    }
  }
}
