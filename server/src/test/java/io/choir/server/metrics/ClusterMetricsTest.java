package io.choir.server.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Status;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ClusterMetricsTest: three real replicas (unicast on loopback, each with its metrics endpoint). Every
 * replica's gauges agree on the view and, once idle, the commit; the roles are one primary and two
 * backups; a backup cut off from the others stops being ready (503 with the reason) and is ready again
 * once healed; after the primary stops, the replica that takes over has timed its view change.
 */
class ClusterMetricsTest {
  @TempDir Path dir;
  private MetricsCluster cluster;

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  private List<Integer> others(int primary) {
    List<Integer> ids = new ArrayList<>();
    for (int id = 1; id <= cluster.size(); id++) {
      if (id != primary && cluster.server(id) != null) {
        ids.add(id);
      }
    }
    return ids;
  }

  @Test
  void shouldShowOneViewAndReadinessAcrossReplicas() throws Exception {
    cluster = new MetricsCluster(dir, 3);
    MetricsCluster.await("a primary", 20_000, () -> cluster.primary() != 0);
    int primary = cluster.primary();
    for (int id = 1; id <= 3; id++) {
      int r = id;
      MetricsCluster.await("replica " + r + " ready", 20_000, () -> cluster.get(r, "/ready").statusCode() == 200);
    }
    for (int i = 0; i < 10; i++) {
      assertEquals(Status.OK, cluster.put(primary, "k" + i, "v").getStatus());
    }
    double commit = cluster.scrape(primary).value("choir_commit");
    assertTrue(commit >= 10, "commit " + commit);
    for (int b : others(primary)) {
      MetricsCluster.await("backup " + b + " applies " + commit, 10_000,
          () -> cluster.scrape(b).value("choir_applied") >= commit);
      PromText p = cluster.scrape(b);
      assertEquals(1.0, p.value("choir_role", "role=\"backup\""));
      assertEquals(0.0, p.value("choir_role", "role=\"primary\""));
      assertEquals(cluster.scrape(primary).value("choir_view"), p.value("choir_view"));
      assertEquals(primary, (int) p.value("choir_primary_id"));
      assertTrue(p.value("choir_commit_latency_seconds_count") == 0, "only the primary times commits");
    }
    PromText pp = cluster.scrape(primary);
    assertEquals(1.0, pp.value("choir_role", "role=\"primary\""));
    assertTrue(pp.value("choir_commit_latency_seconds_count") >= 1);
    assertTrue(pp.value("choir_datagrams_sent_total") > 0, "the registry's own counters are there too");

    // A backup cut off from both others: no word from its primary, so not ready.
    int cut = others(primary).get(0);
    List<Integer> rest = new ArrayList<>(List.of(1, 2, 3));
    rest.remove(Integer.valueOf(cut));
    cluster.cutOff(cut, rest.stream().mapToInt(Integer::intValue).toArray());
    MetricsCluster.await("cut-off backup " + cut + " not ready", 10_000,
        () -> cluster.get(cut, "/ready").statusCode() == 503);
    HttpResponse<String> notReady = cluster.get(cut, "/ready");
    assertTrue(notReady.body().startsWith("{\"ready\":false,\"reason\":\""), notReady.body());
    assertEquals(200, cluster.get(cut, "/health").statusCode(), "alive, only not ready");
    assertEquals(0.0, cluster.scrape(cut).value("choir_ready"));
    assertEquals(200, cluster.get(primary, "/ready").statusCode(), "the primary keeps a majority");
    assertEquals(Status.OK, cluster.put(primary, "while-cut", "v").getStatus());

    cluster.cutOff(cut);
    MetricsCluster.await("healed backup " + cut + " ready again", 20_000,
        () -> cluster.get(cut, "/ready").statusCode() == 200);

    // The primary stops: the one that takes over went through a view change and timed it.
    cluster.stop(primary);
    MetricsCluster.await("a new primary", 20_000, () -> cluster.primary() != 0);
    int next = cluster.primary();
    PromText np = cluster.scrape(next);
    assertTrue(np.value("choir_view_change_seconds_count") >= 1, "view change timed");
    assertTrue(np.value("choir_view_change_seconds_sum") > 0);
    assertTrue(np.value("choir_view_changes_total") >= 1);
    MetricsCluster.await("new primary " + next + " ready", 20_000,
        () -> cluster.get(next, "/ready").statusCode() == 200);
  }
}
