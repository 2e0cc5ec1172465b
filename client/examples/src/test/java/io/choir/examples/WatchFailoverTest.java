package io.choir.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.Watch;
import io.choir.client.WatchCompactedException;
import io.choir.client.WatchEvent;
import io.choir.client.WatchListener;
import io.choir.client.WatchOptions;
import io.choir.server.config.ServerConfig;
import io.choir.server.replica.ReplicaServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A watch through the client library against three real replicas in this JVM (loopback, free ports,
 * unicast peers): it survives each replica being stopped in turn (the primary among them, and so the
 * replica the watch is connected to) with no event lost and none repeated, compared with the
 * acknowledged writes; a start older than the history ends it with WatchCompactedException; the
 * Flow.Publisher honours demand.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class WatchFailoverTest {
  @TempDir Path dir;
  private final List<ServerConfig> configs = new ArrayList<>();
  private final ReplicaServer[] servers = new ReplicaServer[4];
  private String endpoints;

  @BeforeEach
  void start() throws Exception {
    StringBuilder replicas = new StringBuilder();
    List<String> clients = new ArrayList<>();
    for (int id = 1; id <= 3; id++) {
      int client = freePort();
      clients.add("127.0.0.1:" + client);
      replicas.append(id == 1 ? "" : ",").append(id).append("=127.0.0.1:").append(client).append("/127.0.0.1:")
          .append(freePort());
    }
    endpoints = String.join(",", clients);
    for (int id = 1; id <= 3; id++) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("cluster_id", "watch-failover");
      m.put("replica_id", id);
      m.put("replicas", replicas.toString());
      m.put("peer_transport", "unicast");
      m.put("durability", "buffered");
      m.put("data_dir", dir.resolve("data" + id).toString());
      m.put("log_level", "warn");
      m.put("watch_history_events", 50);
      configs.add(ServerConfig.build(m, Map.of()));
    }
    for (int id = 1; id <= 3; id++) {
      servers[id] = ReplicaServer.start(configs.get(id - 1));
    }
  }

  @AfterEach
  void stop() {
    for (int id = 1; id <= 3; id++) {
      if (servers[id] != null) {
        servers[id].close();
      }
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private ChoirClient client() {
    return ChoirClient.builder().endpoints(endpoints.split(",")).requestTimeout(Duration.ofSeconds(20)).build();
  }

  private int primary(ChoirClient client) {
    for (var r : client.status()) {
      if (r.isOk() && r.info().role().equals("primary")) {
        return r.info().id();
      }
    }
    return 0;
  }

  @Test
  void shouldSurviveEveryReplicaStoppingInTurnWithoutLossOrRepeat() throws Exception {
    List<WatchEvent> seen = new CopyOnWriteArrayList<>();
    Map<Long, String> acked = new ConcurrentHashMap<>(); // revision -> value
    List<String> unknown = new CopyOnWriteArrayList<>();
    try (ChoirClient writer = client(); ChoirClient watcher = client()) {
      long first = writer.put("w/start", "0");
      AtomicReference<ChoirException> failed = new AtomicReference<>();
      Watch watch = watcher.watch(WatchOptions.prefix("w/").fromRevision(first + 1), new WatchListener() {
        @Override
        public void onEvent(WatchEvent event) {
          seen.add(event);
          if (seen.size() % 7 == 0) {
            throw new IllegalStateException("a listener that throws does not end the watch");
          }
        }

        @Override
        public void onError(ChoirException error) {
          failed.set(error);
        }
      });
      int i = 0;
      for (int round = 1; round <= 3; round++) {
        for (int n = 0; n < 30; n++) {
          i = write(writer, i, acked, unknown);
        }
        int victim = round == 1 ? Math.max(1, primary(writer)) : (round % 3) + 1;
        servers[victim].close(); // the primary first, then the others: the watch's replica is among them
        servers[victim] = null;
        for (int n = 0; n < 30; n++) {
          i = write(writer, i, acked, unknown);
        }
        servers[victim] = ReplicaServer.start(configs.get(victim - 1));
      }
      for (int n = 0; n < 30; n++) {
        i = write(writer, i, acked, unknown);
      }
      long last = acked.keySet().stream().mapToLong(Long::longValue).max().orElseThrow();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (watch.nextRevision() <= last && failed.get() == null && System.nanoTime() < deadline) {
        Thread.sleep(20); // polling, with a deadline
      }
      assertEquals(null, failed.get());
      long previous = 0;
      Map<Long, String> delivered = new LinkedHashMap<>();
      for (WatchEvent e : seen) {
        assertTrue(e.revision() > previous, "in order, each once: " + e + " after " + previous);
        previous = e.revision();
        delivered.put(e.revision(), e.valueAsString());
      }
      for (Map.Entry<Long, String> a : acked.entrySet()) {
        assertEquals(a.getValue(), delivered.get(a.getKey()), "acknowledged write at revision " + a.getKey());
      }
      for (Map.Entry<Long, String> d : delivered.entrySet()) {
        assertTrue(acked.containsKey(d.getKey()) || unknown.contains(d.getValue()),
            "an event of a write that was made: " + d);
      }
      System.out.println("WatchFailoverTest: " + acked.size() + " acknowledged writes, " + unknown.size()
          + " of unknown outcome, " + seen.size() + " events, 3 replicas stopped in turn");
      watch.close();
      assertTrue(!watch.isActive());
    }
  }

  private static int write(ChoirClient writer, int i, Map<Long, String> acked, List<String> unknown) {
    String value = "v" + i;
    try {
      acked.put(writer.put("w/" + (i % 5), value), value);
    } catch (ChoirTimeoutException e) {
      unknown.add(value);
    }
    return i + 1;
  }

  @Test
  void shouldEndAWatchFromARevisionOlderThanTheHistoryWithCompacted() throws Exception {
    try (ChoirClient client = client()) {
      long last = 0;
      for (int i = 0; i < 80; i++) {
        last = client.put("c/k", "v" + i);
      }
      // Every replica must have applied them all, so each has evicted revision 1 from its history: a
      // backup still behind would rightly serve a watch from revision 1 (its history still holds it).
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (!allApplied(client, last)) {
        assertTrue(System.nanoTime() < deadline, "every replica applies op " + last + ": " + client.status());
        Thread.sleep(20); // polling status, with a deadline
      }
      AtomicReference<ChoirException> failed = new AtomicReference<>();
      Watch watch = client.watch(WatchOptions.key("c/k").fromRevision(1), new WatchListener() {
        @Override
        public void onEvent(WatchEvent event) {}

        @Override
        public void onError(ChoirException error) {
          failed.set(error);
        }
      });
      deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (failed.get() == null && System.nanoTime() < deadline) {
        Thread.sleep(20); // polling, with a deadline
      }
      WatchCompactedException e = assertInstanceOf(WatchCompactedException.class, failed.get());
      assertTrue(e.oldestRevision() > 1, e.getMessage());
      assertTrue(e.getMessage().contains("revision 1 is compacted"), e.getMessage());
      assertTrue(!watch.isActive());
    }
  }

  private static boolean allApplied(ChoirClient client, long op) {
    var statuses = client.status();
    return statuses.size() == 3 && statuses.stream().allMatch(r -> r.isOk() && r.info().applied() >= op);
  }

  @Test
  void shouldPublishWithDemand() throws Exception {
    try (ChoirClient client = client()) {
      long first = client.put("p/k", "a");
      client.put("p/k", "b");
      client.put("p/k", "c");
      List<String> got = new CopyOnWriteArrayList<>();
      AtomicReference<Flow.Subscription> subscription = new AtomicReference<>();
      client.watchPublisher(WatchOptions.key("p/k").fromRevision(first)).subscribe(new Flow.Subscriber<>() {
        @Override
        public void onSubscribe(Flow.Subscription s) {
          subscription.set(s);
          s.request(2);
        }

        @Override
        public void onNext(WatchEvent item) {
          got.add(item.valueAsString());
        }

        @Override
        public void onError(Throwable throwable) {
          got.add("error " + throwable);
        }

        @Override
        public void onComplete() {
          got.add("complete");
        }
      });
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (got.size() < 2 && System.nanoTime() < deadline) {
        Thread.sleep(20); // polling, with a deadline
      }
      assertEquals(List.of("a", "b"), got, "only what was asked for");
      subscription.get().request(1);
      while (got.size() < 3 && System.nanoTime() < deadline) {
        Thread.sleep(20); // polling, with a deadline
      }
      assertEquals(List.of("a", "b", "c"), got);
      subscription.get().cancel();
    }
  }
}
