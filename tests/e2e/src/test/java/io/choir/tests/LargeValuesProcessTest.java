package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LargeValuesProcessTest: a replica's memory is bounded in bytes, not only in entries. Three replica
 * processes with the default JVM heap of these tests (-Xmx512m) take many more 1 MiB values
 * (max_value_bytes' default) than fit in their heaps, a few at a time; every replica must stay up, and
 * every value must be readable afterwards.
 *
 * <p>Found while writing FullWindowViewChangeProcessTest: ReplicaCore keeps the last
 * retransmitRingEntries (8192) applied entries in memory for resends, bounded in entries only, so with
 * 1 MiB values every replica of the cluster runs out of heap at about the same time (about 230 values
 * with -Xmx512m) and stops.
 */
class LargeValuesProcessTest {
  @TempDir Path dir;
  private ProcessCluster cluster;

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  private void assertAllAlive(int sent) {
    for (int id = 1; id <= 3; id++) {
      assertTrue(cluster.replica(id).isAlive(), "replica " + id + " died after " + sent + " values of 1 MiB were"
          + " sent; its log: " + cluster.log(id));
    }
  }

  @Test
  void shouldStayUpWhileTakingSeveralHeapsWorthOfOneMebibyteValues() throws Exception {
    int values = Integer.getInteger("choir.largevalues.count", 1024); // two heaps of 512 MiB
    cluster = new ProcessCluster(dir, "largevalues", ClusterKeyFile.yaml(dir));
    cluster.startAll();
    try (ChoirClient c = cluster.client(Duration.ofSeconds(30))) {
      cluster.awaitConverged(c, Duration.ofSeconds(30));
      Semaphore inFlight = new Semaphore(8);
      List<CompletableFuture<Long>> acks = new ArrayList<>();
      for (int i = 0; i < values; i++) {
        while (!inFlight.tryAcquire(100, TimeUnit.MILLISECONDS)) {
          assertAllAlive(i);
        }
        CompletableFuture<Long> f = c.async().put(("large/" + i).getBytes(StandardCharsets.UTF_8),
            FullWindowViewChangeProcessTest.value("large/" + i));
        f.whenComplete((v, e) -> inFlight.release());
        acks.add(f);
        if (i % 100 == 99) {
          List<ReplicaInfo> s = cluster.statuses(c);
          System.out.println(i + 1 + " values sent; applied " + s.stream()
              .map(r -> r == null ? "-" : String.valueOf(r.applied())).toList());
          assertAllAlive(i + 1);
        }
      }
      for (CompletableFuture<Long> f : acks) {
        f.get(60, TimeUnit.SECONDS);
      }
      assertAllAlive(values);
      List<ReplicaInfo> s = cluster.awaitConverged(c, Duration.ofSeconds(60));
      assertTrue(s.get(0).applied() >= values);
      for (int i = 0; i < values; i += 97) {
        assertArrayEquals(FullWindowViewChangeProcessTest.value("large/" + i),
            c.get("large/" + i).orElseThrow().value(), "large/" + i);
      }
      assertEquals(3, s.size());
    }
  }
}
