package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three real replica processes on loopback with peer_transport unicast (issue 12 item 2): writes
 * replicate, a kill -9 of the primary fails over to a new one that serves every acknowledged write,
 * and no replica ever sent a multicast datagram (datagrams_sent_multicast stays 0 while
 * datagrams_sent_unicast_fanout grows). And with peer_transport auto on lo, every replica reports
 * multicast as working: each reaches both others by multicast.
 */
class UnicastProcessTest {
  private static final Duration WAIT = Duration.ofSeconds(60);

  @TempDir Path dir;
  private ProcessCluster cluster;

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  private static long sum(List<ReplicaInfo> statuses, String counter) {
    return statuses.stream().filter(r -> r != null).mapToLong(r -> ProcessCluster.counter(r, counter)).sum();
  }

  @Test
  void shouldReplicateAndFailOverWithoutASingleMulticastDatagram() throws Exception {
    cluster = new ProcessCluster(dir, "unicast", "peer_transport: unicast\n");
    cluster.startAll();
    try (ChoirClient c = cluster.client(Duration.ofSeconds(20))) {
      int primary = cluster.awaitPrimary(c, WAIT);
      for (int i = 0; i < 50; i++) {
        c.put("k" + i, "v" + i);
      }
      List<ReplicaInfo> before = cluster.awaitConverged(c, WAIT);
      for (ReplicaInfo r : before) {
        assertEquals("unicast", r.peerTransport(), "replica " + r.id());
        assertTrue(r.applied() >= 50, "replica " + r.id() + " applied the writes: " + r);
      }
      assertEquals(0, sum(before, "datagrams_sent_multicast"), "no multicast datagram: " + before);
      assertTrue(sum(before, "datagrams_sent_unicast_fanout") > 0, "messages to all went by unicast");

      cluster.replica(primary).kill(); // kill -9
      for (int i = 50; i < 80; i++) {
        c.put("k" + i, "v" + i); // retried by the client until the new primary takes it
      }
      int next = awaitNewPrimary(c, primary);
      assertNotEquals(primary, next);
      for (int i = 0; i < 80; i++) {
        assertEquals(Optional.of("v" + i), c.get("k" + i).map(v -> v.valueAsString()), "k" + i);
      }
      cluster.replica(primary).start();
      List<ReplicaInfo> after = cluster.awaitConverged(c, WAIT);
      assertEquals(0, sum(after, "datagrams_sent_multicast"), "no multicast datagram, failover included: " + after);
      assertEquals(0, sum(after, "transport_probes_sent"), "unicast never probes");
    }
  }

  private int awaitNewPrimary(ChoirClient c, int old) throws InterruptedException {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      for (int id = 1; id <= 3; id++) {
        ReplicaInfo r = id == old ? null : cluster.status(c, id);
        if (r != null && r.role().equals("primary")) {
          return id;
        }
      }
      TimeUnit.MILLISECONDS.sleep(50); // polling status from outside
    }
    fail("no new primary within " + WAIT);
    return -1;
  }

  @Test
  void shouldReportMulticastAsWorkingInAutoModeOnLoopback() throws Exception {
    cluster = new ProcessCluster(dir, "auto", "peer_transport: auto\n");
    cluster.startAll();
    try (ChoirClient c = cluster.client(Duration.ofSeconds(20))) {
      cluster.awaitPrimary(c, WAIT);
      c.put("a", "1");
      long deadline = System.nanoTime() + WAIT.toNanos();
      List<ReplicaInfo> last = List.of();
      while (System.nanoTime() < deadline) {
        last = cluster.statuses(c);
        boolean all = last.stream().allMatch(r -> r != null && r.peerTransport().equals("auto")
            && r.multicastPeers().size() == 2);
        if (all) {
          break;
        }
        TimeUnit.MILLISECONDS.sleep(100); // polling status from outside
      }
      for (ReplicaInfo r : last) {
        assertEquals(2, r.multicastPeers().size(), "replica " + r.id() + " reaches both peers by multicast: " + r);
      }
      c.put("b", "2");
      List<ReplicaInfo> now = cluster.awaitConverged(c, WAIT);
      assertTrue(sum(now, "datagrams_sent_multicast") > 0, "messages to all went by multicast");
      assertTrue(sum(now, "transport_probes_sent") > 0);
    }
  }
}
