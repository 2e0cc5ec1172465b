package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NetnsFailoverTest runs three replicas on three network-namespace hosts (issue 12, item 1) and faults
 * the primary while four closed-loop writers (each a client of every endpoint, with the client's
 * defaults) keep writing: kill -9 (then restarted), a pause (SIGSTOP, SIGCONT) and a partition (nftables
 * in its namespace drops everything to and from the other hosts and the multicast group; clients still
 * reach it). Each fault lasts until another replica is primary in a higher view and a write has been
 * acknowledged after that; then it ends, the writers are held until the three replicas agree again,
 * and at the end every acknowledged write is read back with its version. Correctness only; the times
 * are printed, not asserted. Needs root and `ip netns`; skips otherwise.
 */
class NetnsFailoverTest {
  enum Kind { KILL, PAUSE, PARTITION }

  private static final int WRITERS = 4;
  private static NetnsHosts hosts;
  @TempDir Path dir;

  @BeforeAll
  static void makeHosts() throws Exception {
    Optional<String> unavailable = NetnsHosts.unavailable();
    assumeTrue(unavailable.isEmpty(), unavailable.orElse(""));
    hosts = NetnsHosts.up(3);
  }

  @AfterAll
  static void removeHosts() {
    if (hosts != null) {
      hosts.close();
    }
  }

  @Test
  void shouldElectANewPrimaryAfterKillPauseAndPartitionAndLoseNoAcknowledgedWrite() throws Exception {
    List<ChoirClient> clients = new ArrayList<>();
    List<ClosedLoopWriter> writers = new ArrayList<>();
    System.out.println("NetnsFailoverTest on " + hosts.prefix() + "-1..3; load before: " + Load.now());
    try (NetnsCluster cluster = new NetnsCluster(hosts, dir, "netns-failover", "");
        ChoirClient admin = startAndConnect(cluster)) {
      cluster.awaitConverged(admin, Duration.ofSeconds(30));
      for (int w = 0; w < WRITERS; w++) {
        ChoirClient c = ChoirClient.builder().endpoints(cluster.endpoints()).build();
        clients.add(c);
        ClosedLoopWriter writer = new ClosedLoopWriter(c, "w" + w + "/", 1_000_000);
        writers.add(writer);
        writer.start();
      }
      try {
        for (Kind kind : List.of(Kind.KILL, Kind.PAUSE, Kind.PARTITION)) {
          awaitAcks(writers, 20, Duration.ofSeconds(30));
          fault(kind, cluster, admin, writers);
          settle(cluster, admin, writers);
        }
        for (ClosedLoopWriter w : writers) {
          w.finish();
        }
        cluster.awaitConverged(admin, Duration.ofSeconds(60));
        int checked = 0;
        for (int w = 0; w < WRITERS; w++) {
          checked += ClosedLoopWriter.assertAllPresent(admin, "w" + w + "/", writers.get(w).acked);
        }
        assertTrue(checked > 0, "writes were acknowledged");
        System.out.println("read back all " + checked + " acknowledged writes; errors seen by the writers: "
            + writers.stream().map(ClosedLoopWriter::errorKinds).toList() + "; load after: " + Load.now());
        System.out.println(hosts.status());
        for (int i = 1; i <= 3; i++) {
          assertEquals(0, hosts.counter(i, "leaked"), "nothing tried to leave host " + i);
        }
      } finally {
        for (ClosedLoopWriter w : writers) {
          w.finish();
        }
        clients.forEach(ChoirClient::close);
        for (int i = 1; i <= 3; i++) {
          hosts.heal(i);
        }
      }
    }
  }

  private static ChoirClient startAndConnect(NetnsCluster cluster) throws InterruptedException {
    cluster.startAll();
    return cluster.client(Duration.ofSeconds(2));
  }

  /**
   * Faults the primary until another replica is primary in a higher view and a write was acknowledged
   * after that was seen, then ends the fault (restart, SIGCONT or heal).
   */
  private void fault(Kind kind, NetnsCluster cluster, ChoirClient admin, List<ClosedLoopWriter> writers)
      throws Exception {
    int old = cluster.awaitPrimary(admin, Duration.ofSeconds(10));
    long oldView = cluster.statuses(admin).get(old - 1).view();
    ReplicaProcess victim = cluster.replica(old);
    long start = System.nanoTime();
    switch (kind) {
      case KILL -> victim.kill();
      case PAUSE -> victim.pause();
      case PARTITION -> hosts.isolate(old);
      default -> throw new IllegalStateException();
    }
    int next = awaitNewPrimary(cluster, admin, old, oldView, Duration.ofSeconds(30));
    long elected = System.nanoTime();
    long ack = awaitAckAfter(writers, elected, Duration.ofSeconds(30));
    System.out.printf(Locale.ROOT, "%s of primary %d: replica %d primary after %.0f ms, first write acknowledged"
        + " after that %.0f ms after the fault%s%n", kind, old, next, (elected - start) / 1e6, (ack - start) / 1e6,
        kind == Kind.PARTITION ? " (" + hosts.faultDrops(old) + " packets dropped by nft)" : "");
    switch (kind) {
      case KILL -> victim.start();
      case PAUSE -> victim.resume();
      case PARTITION -> hosts.heal(old);
      default -> throw new IllegalStateException();
    }
  }

  /** The id of a replica other than old that says it is primary in a view above oldView. */
  private static int awaitNewPrimary(NetnsCluster cluster, ChoirClient admin, int old, long oldView,
      Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<ReplicaInfo> last = List.of();
    while (System.nanoTime() < deadline) {
      last = cluster.statuses(admin);
      for (ReplicaInfo r : last) {
        if (r != null && r.id() != old && r.role().equals("primary") && r.view() > oldView) {
          return r.id();
        }
      }
      TimeUnit.MILLISECONDS.sleep(20); // polling status
    }
    fail("no new primary within " + timeout + " after primary " + old + " was faulted: " + last);
    return -1;
  }

  /** The first acknowledgement after t, waiting up to timeout. */
  private static long awaitAckAfter(List<ClosedLoopWriter> writers, long t, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long a = ClosedLoopWriter.firstAckAfter(writers, t);
      if (a > 0) {
        return a;
      }
      if (System.nanoTime() > deadline) {
        fail("no write acknowledged within " + timeout + " of the new primary; writers' errors "
            + writers.stream().map(ClosedLoopWriter::errorKinds).toList());
      }
      TimeUnit.MILLISECONDS.sleep(5); // polling the writers' acknowledgements
    }
  }

  /** Holds the writers until the three replicas agree, then lets them go on. */
  private static void settle(NetnsCluster cluster, ChoirClient admin, List<ClosedLoopWriter> writers)
      throws InterruptedException {
    for (ClosedLoopWriter w : writers) {
      assertTrue(w.hold(Duration.ofSeconds(30)), "a writer's request stayed unanswered for 30 s");
    }
    cluster.awaitConverged(admin, Duration.ofSeconds(60));
    writers.forEach(ClosedLoopWriter::release);
  }

  private static void awaitAcks(List<ClosedLoopWriter> writers, int more, Duration timeout)
      throws InterruptedException {
    int target = writers.stream().mapToInt(ClosedLoopWriter::acks).sum() + more;
    long deadline = System.nanoTime() + timeout.toNanos();
    while (writers.stream().mapToInt(ClosedLoopWriter::acks).sum() < target) {
      if (System.nanoTime() > deadline) {
        fail("the writers got fewer than " + more + " acknowledgements in " + timeout);
      }
      TimeUnit.MILLISECONDS.sleep(10); // polling the writers' counters
    }
  }
}
