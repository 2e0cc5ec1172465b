package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.server.security.ClusterKeys;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * KeyRotationProcessTest rotates the cluster key of a running 3-replica cluster with rolling restarts
 * under a steady writer (issue 10, item 2), as ClusterKeys documents: the key file goes [1] -> [1, 2]
 * -> [2, 1] -> [2], each rewrite followed by a restart of every replica in turn (the backups first,
 * then the primary). At every moment each pair of replicas shares a key one sends with and the other
 * accepts, so: no write fails for longer than a restart takes, a backup's restart changes no view
 * (only the primary's does), and at the end key 1 is refused.
 */
class KeyRotationProcessTest {
  @TempDir Path dir;

  private static byte[] key(long seed) {
    byte[] k = new byte[ClusterKeys.KEY_BYTES];
    new SplittableRandom(seed).nextBytes(k);
    return k;
  }

  private static ClusterKeys file(Map<Integer, byte[]> all, int... ids) {
    Map<Integer, byte[]> m = new LinkedHashMap<>();
    for (int id : ids) {
      m.put(id, all.get(id));
    }
    return ClusterKeys.of(m);
  }

  @Test
  void shouldRotateTheKeyWithRollingRestartsUnderASteadyWriter() throws Exception {
    long seed = System.nanoTime();
    System.out.println("KeyRotationProcessTest seed=" + seed);
    Map<Integer, byte[]> keys = Map.of(1, key(seed), 2, key(seed + 1));
    Path keyFile = dir.resolve("cluster.key");
    ProcessCluster.writeKeyFile(keyFile, file(keys, 1));
    try (ProcessCluster cluster = new ProcessCluster(dir, "rotate", 3, "", List.of("-Xmx256m"), keyFile);
        PeerWire wire = new PeerWire(cluster)) {
      cluster.startAll();
      // A generous request timeout: on a loaded machine the first session registration alone has taken
      // over 5 s; the gaps the test measures are between acknowledged writes, not bounded by it.
      try (ChoirClient c = cluster.client(Duration.ofSeconds(20))) {
        cluster.awaitPrimary(c, Duration.ofSeconds(30));
        c.put("before", "rotation");
        cluster.awaitConverged(c, Duration.ofSeconds(30));

        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong writes = new AtomicLong();
        AtomicLong failures = new AtomicLong();
        AtomicLong maxGapNs = new AtomicLong();
        Thread writer = new Thread(() -> {
          long lastOk = System.nanoTime();
          for (int i = 0; !stop.get(); i++) {
            try {
              c.put("rot/" + i, "v" + i);
              long now = System.nanoTime();
              maxGapNs.accumulateAndGet(now - lastOk, Math::max);
              lastOk = now;
              writes.incrementAndGet();
            } catch (RuntimeException e) {
              failures.incrementAndGet();
            }
          }
        }, "writer");
        writer.start();

        long maxRestartNs = 0;
        int primaryRestarts = 0;
        List<String> viewLog = new ArrayList<>();
        int[][] steps = {{1, 2}, {2, 1}, {2}};
        for (int[] step : steps) {
          ProcessCluster.writeKeyFile(keyFile, file(keys, step));
          int primary = cluster.awaitPrimary(c, Duration.ofSeconds(20));
          List<Integer> order = new ArrayList<>(List.of(1, 2, 3));
          order.remove(Integer.valueOf(primary));
          order.add(primary);
          for (int id : order) {
            long viewBefore = cluster.status(c, primary).view();
            long t0 = System.nanoTime();
            assertEquals(0, cluster.replica(id).terminate(), "replica " + id + " shut down cleanly");
            cluster.replica(id).start();
            awaitCaughtUp(cluster, c, id);
            long took = System.nanoTime() - t0;
            maxRestartNs = Math.max(maxRestartNs, took);
            TimeUnit.MILLISECONDS.sleep(500); // some writes between two restarts
            int nowPrimary = cluster.awaitPrimary(c, Duration.ofSeconds(20));
            long viewAfter = cluster.status(c, nowPrimary).view();
            viewLog.add("keys " + Arrays.toString(step) + " restart " + id + (id == primary ? " (primary)" : "")
                + ": view " + viewBefore + " -> " + viewAfter + " in " + TimeUnit.NANOSECONDS.toMillis(took) + " ms");
            if (id == primary) {
              primaryRestarts++;
            } else {
              assertEquals(viewBefore, viewAfter, "a backup's restart changed the view: " + viewLog);
            }
          }
        }
        TimeUnit.MILLISECONDS.sleep(500);
        stop.set(true);
        writer.join(30_000);
        viewLog.forEach(System.out::println);
        System.out.printf("rotation: %d writes, %d failed, longest gap between two acknowledged writes %d ms,"
            + " longest restart %d ms, %d primary restarts%n", writes.get(), failures.get(),
            TimeUnit.NANOSECONDS.toMillis(maxGapNs.get()), TimeUnit.NANOSECONDS.toMillis(maxRestartNs), primaryRestarts);
        assertTrue(maxGapNs.get() < maxRestartNs, "writes stopped for longer than a restart takes");
        c.put("after", "rotation");
        List<ReplicaInfo> end = cluster.awaitConverged(c, Duration.ofSeconds(30));
        assertEquals("rotation", c.get("before").orElseThrow().valueAsString());

        // Key 1 is gone: a datagram sealed with it is refused as an unknown key.
        long unknownBefore = ProcessCluster.counter(end.get(0), "datagrams_dropped_unknown_key");
        byte[] old = wire.forger(2, file(keys, 1)).encode(MessageType.HEARTBEAT_VALUE, end.get(0).view(),
            Heartbeat.getDefaultInstance().toByteArray());
        wire.send(old, wire.peer(1));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        long unknown;
        do {
          TimeUnit.MILLISECONDS.sleep(50); // polling a counter
          unknown = ProcessCluster.counter(cluster.status(c, 1), "datagrams_dropped_unknown_key");
        } while (unknown == unknownBefore && System.nanoTime() < deadline);
        assertEquals(unknownBefore + 1, unknown, "after the rotation key 1 is refused");
      }
    }
  }

  /** Waits until replica id answers as a backup or primary and has applied what the primary committed. */
  private static void awaitCaughtUp(ProcessCluster cluster, ChoirClient c, int id) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      ReplicaInfo me = cluster.status(c, id);
      List<ReplicaInfo> all = cluster.statuses(c);
      long commit = all.stream().filter(r -> r != null && r.role().equals("primary")).mapToLong(ReplicaInfo::commit)
          .max().orElse(Long.MAX_VALUE);
      if (me != null && (me.role().equals("backup") || me.role().equals("primary")) && me.applied() >= commit - 50) {
        return;
      }
      TimeUnit.MILLISECONDS.sleep(50); // polling status
    }
    throw new AssertionError("replica " + id + " did not catch up after its restart: " + cluster.statuses(c));
  }
}
