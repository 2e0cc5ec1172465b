package io.choir.server.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.ReplicaStatus;
import io.choir.proto.Status;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * MetricsEndpointTest: one real replica with metrics_address on a free loopback port. /metrics parses as
 * the Prometheus text format, its counters move with writes and reads, its gauges say what status
 * says, its histograms have counts; every counter status shows has its metric; /health and /ready
 * answer 200; other paths and methods are refused.
 */
class MetricsEndpointTest {
  @TempDir Path dir;
  private MetricsCluster cluster;

  @BeforeEach
  void start() throws Exception {
    cluster = new MetricsCluster(dir, 1);
    MetricsCluster.await("a primary", 10_000, () -> cluster.primary() == 1);
  }

  @AfterEach
  void stop() {
    cluster.close();
  }

  @Test
  void shouldCountWritesAndReadsAndTimeThem() throws Exception {
    PromText before = cluster.scrape(1);
    int n = 20;
    for (int i = 0; i < n; i++) {
      assertEquals(Status.OK, cluster.put(1, "k" + i, "v" + i).getStatus());
      assertEquals(Status.OK, cluster.read(1, "k" + i).getStatus());
    }

    PromText after = cluster.scrape(1);
    assertEquals(n, after.value("choir_writes_total") - before.value("choir_writes_total"));
    assertEquals(n, after.value("choir_reads_total") - before.value("choir_reads_total"));
    assertEquals(n, after.value("choir_client_write_seconds_count", "outcome=\"ok\"")
        - before.value("choir_client_write_seconds_count", "outcome=\"ok\""));
    assertEquals(n, after.value("choir_client_read_seconds_count", "outcome=\"ok\"")
        - before.value("choir_client_read_seconds_count", "outcome=\"ok\""));
    assertTrue(after.value("choir_client_write_seconds_sum", "outcome=\"ok\"") > 0);
    assertEquals(n, after.value("choir_client_write_seconds_bucket", "outcome=\"ok\"", "le=\"+Inf\"")
        - before.value("choir_client_write_seconds_bucket", "outcome=\"ok\"", "le=\"+Inf\""));
    for (String timer : List.of("choir_log_fsync_seconds", "choir_log_write_seconds", "choir_apply_seconds",
        "choir_commit_latency_seconds")) {
      assertTrue(after.value(timer + "_count") > before.value(timer + "_count"), timer + " has new samples");
      assertEquals("histogram", after.types.get(timer), timer + " is a histogram");
    }
    assertEquals("counter", after.types.get("choir_writes_total"));
  }

  @Test
  void shouldShowTheStatusAsGauges() throws Exception {
    cluster.put(1, "a", "1");
    ReplicaStatus status = cluster.status(1);
    PromText p = cluster.scrape(1);

    assertEquals(status.getView(), (long) p.value("choir_view"));
    assertEquals(status.getOp(), (long) p.value("choir_op"));
    assertEquals(status.getCommit(), (long) p.value("choir_commit"));
    assertEquals(status.getApplied(), (long) p.value("choir_applied"));
    assertEquals(1.0, p.value("choir_role", "role=\"primary\""));
    assertEquals(0.0, p.value("choir_role", "role=\"backup\""));
    assertEquals(1.0, p.value("choir_member_role", "role=\"voter\""));
    assertEquals(1.0, p.value("choir_ready"));
    assertEquals(0.0, p.value("choir_lag"));
    assertTrue(p.value("choir_log_entries") >= 1);
    assertTrue(p.value("choir_queue_requests") >= 0);
    assertTrue(p.value("choir_connections") >= 0);
    assertEquals(status.getView(), (long) p.value("choir_view", "replica=\"1\"", "cluster=\"metrics-test\""));
  }

  /** Every counter `choir status` shows is a metric: choir_NAME_total, or choir_NAME for the levels. */
  @Test
  void shouldExposeEveryStatusCounter() throws Exception {
    cluster.put(1, "a", "1");
    ReplicaStatus status = cluster.status(1);
    PromText p = cluster.scrape(1);

    List<String> missing = new ArrayList<>();
    for (String name : status.getCountersMap().keySet()) {
      String metric = StatusMeters.LEVELS.contains(name) ? "choir_" + name : "choir_" + name + "_total";
      if (!p.has(metric)) {
        missing.add(name + " (" + metric + ")");
      }
    }
    assertTrue(missing.isEmpty(), "status counters without a metric: " + missing);
    assertTrue(status.getCountersCount() > 50, "status shows its counters: " + status.getCountersCount());
  }

  @Test
  void shouldAnswerHealthAndReadyAndRefuseTheRest() throws Exception {
    HttpResponse<String> health = cluster.get(1, "/health");
    assertEquals(200, health.statusCode());
    assertEquals("{\"status\":\"ok\"}\n", health.body());
    MetricsCluster.await("ready", 10_000, () -> cluster.get(1, "/ready").statusCode() == 200);
    assertEquals("{\"ready\":true}\n", cluster.get(1, "/ready").body());
    assertEquals(404, cluster.get(1, "/metricsx").statusCode());
    assertEquals(404, cluster.get(1, "/").statusCode());
    assertEquals(405, cluster.send(1, HttpRequest.newBuilder(cluster.uri(1, "/metrics"))
        .POST(HttpRequest.BodyPublishers.ofString("x"))).statusCode());
    assertEquals(200, cluster.send(1, HttpRequest.newBuilder(cluster.uri(1, "/ready"))
        .method("HEAD", HttpRequest.BodyPublishers.noBody())).statusCode());
    assertTrue(cluster.get(1, "/metrics").headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
  }

  /**
   * Clients that never finish their request hold nothing: /health is answered at once meanwhile, and
   * each of them is closed once silent for MAX_EXCHANGE_S.
   */
  @Test
  void shouldCloseClientsThatNeverFinishTheirRequest() throws Exception {
    List<Socket> slow = new ArrayList<>();
    try {
      for (int i = 0; i < 4 * MetricsHttpServer.HANDLER_THREADS; i++) {
        Socket s = new Socket(InetAddress.getLoopbackAddress(), cluster.server(1).metricsAddress().getPort());
        s.getOutputStream().write("GET /hea".getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
        slow.add(s);
      }
      long start = System.nanoTime();
      assertEquals(200, cluster.get(1, "/health").statusCode());
      long waitedMs = (System.nanoTime() - start) / 1_000_000;
      assertTrue(waitedMs < MetricsHttpServer.MAX_EXCHANGE_S * 1000L / 2, "answered after " + waitedMs + " ms");
      for (Socket s : slow) {
        s.setSoTimeout((MetricsHttpServer.MAX_EXCHANGE_S + 5) * 1000);
        InputStream in = s.getInputStream();
        assertEquals(-1, in.read(), "the server closed a request that never finished");
      }
    } finally {
      for (Socket s : slow) {
        s.close();
      }
    }
  }
}
