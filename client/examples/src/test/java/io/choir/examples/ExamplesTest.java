package io.choir.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ChoirClient;
import io.choir.server.config.ServerConfig;
import io.choir.server.replica.ReplicaServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs every example against a real replica in this JVM (one voter on loopback, free ports, unicast:
 * no multicast group is joined) and checks what each prints, so an example that no longer does what
 * its comment says fails the build.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ExamplesTest {
  @TempDir static Path dir;
  private static ReplicaServer server;
  private static String endpoint;

  @BeforeAll
  static void start() throws Exception {
    int clientPort = freePort();
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("cluster_id", "examples");
    s.put("replica_id", 1);
    s.put("replicas", "1=127.0.0.1:" + clientPort + "/127.0.0.1:" + freePort());
    s.put("data_dir", dir.resolve("data").toString());
    s.put("peer_transport", "unicast");
    s.put("durability", "buffered");
    s.put("log_level", "warn");
    server = ReplicaServer.start(ServerConfig.build(s, Map.of()));
    endpoint = "127.0.0.1:" + clientPort;
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** What example prints when run with a client of the test replica. */
  private static String output(BiConsumer<ChoirClient, PrintStream> example) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ChoirClient client = ChoirClient.builder().endpoints(endpoint).requestTimeout(Duration.ofSeconds(10)).build();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      example.accept(client, out);
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  private static void assertContains(String output, String expected) {
    assertTrue(output.contains(expected), "expected \"" + expected + "\" in:\n" + output);
  }

  @Test
  void putGet() {
    String out = output(PutGet::run);
    assertContains(out, "get examples/greeting = hello at version ");
    assertContains(out, "get examples/absent: absent");
    assertContains(out, "delete examples/greeting: existed true");
  }

  @Test
  void compareAndSet() {
    String out = output(CompareAndSet::run);
    assertTrue(out.matches("(?s).*incremented examples/counter to \\d+\\R.*"), out);
    assertContains(out, "compareAndSet with a wrong expected value was refused");
  }

  @Test
  void incrementsFromManyThreadsAreNeverLost() throws Exception {
    try (ChoirClient client = ChoirClient.builder().endpoints(endpoint).build()) {
      client.put("examples/contended", "0");
      int threads = 4;
      int each = 5;
      Thread[] workers = new Thread[threads];
      for (int t = 0; t < threads; t++) {
        workers[t] = new Thread(() -> {
          for (int i = 0; i < each; i++) {
            CompareAndSet.increment(client, "examples/contended");
          }
        });
        workers[t].start();
      }
      for (Thread w : workers) {
        w.join();
      }
      assertTrue(client.get("examples/contended").orElseThrow().valueAsString().equals("" + threads * each),
          "every increment counted once");
    }
  }

  @Test
  void sequentialRead() {
    String out = output(SequentialRead::run);
    assertContains(out, "sequential get examples/config = v2 at version ");
  }

  @Test
  void watch() {
    String out = output((client, o) -> {
      try {
        WatchExample.run(client, o);
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    });
    assertTrue(out.matches("(?s)watch: \\d+ PUT examples/config/color = blue \\(was red\\)\\R"
        + "watch: \\d+ PUT examples/config/size = large \\(was absent\\)\\R"
        + "watch: \\d+ DELETE examples/config/color \\(was blue\\)\\Rnext revision \\d+\\R"), out);
  }

  @Test
  void clusterStatus() {
    String out = output(ClusterStatus::run);
    assertContains(out, endpoint + ": replica 1 primary");
    assertContains(out, "membership epoch ");
    assertContains(out, "  member 1 VOTER client " + endpoint);
  }

  @Test
  void lease() {
    String out = output(LeaseExample::run);
    assertTrue(out.matches("(?s)registered examples/services/worker-1 with lease \\d+ \\(TTL 1000 ms\\).*"), out);
    assertContains(out, "after 3 TTLs examples/services/worker-1 is present, lease held true");
    assertContains(out, "1 key(s)");
    assertContains(out, "after revoking, examples/services/worker-1 is absent");
    assertTrue(out.matches("(?s).*keep-alive of lease \\d+ refused: not found.*"), out);
  }

  @Test
  void lockAndLeaderElection() {
    String out = output(LockExample::run);
    assertContains(out, "worker-b tryAcquire: held by worker-a");
    assertContains(out, "worker-a writes: accepted");
    assertContains(out, "worker-b writes: accepted");
    assertTrue(out.matches("(?s).*worker-a, awake again, writes: refused \\(token \\d+ < \\d+\\).*"), out);
    assertContains(out, "leader: node-1 in term ");
    assertTrue(out.matches("(?s).*leader: node-2 in term \\d+ \\(a later term\\).*"), out);
  }

  @Test
  void mainTakesTheEndpointsAsItsArgument() {
    PutGet.main(new String[] {endpoint});
    ClusterStatus.main(new String[] {endpoint});
  }
}
