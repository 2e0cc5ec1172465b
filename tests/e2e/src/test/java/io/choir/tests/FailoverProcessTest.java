package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.ReplicaInfo;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * FailoverProcessTest runs three replica processes on loopback (issue 4, items 7 and 9; issue 9, hole
 * 2i) and faults their primary while four closed-loop writers (each a Java client of every endpoint)
 * keep writing: kill -9 (the old primary is restarted afterwards), a pause (SIGSTOP for a seeded random
 * 3 to 8 s, then SIGCONT), and a partition (the primary cut off from both backups, both ways, by the
 * test fault files, for a seeded random 3 to 8 s, while clients still reach it). After each fault the
 * writers are held until all three replicas agree (view, applied, checksum, one primary); at the end
 * every acknowledged write is read back.
 *
 * <p>It asserts correctness only (no acknowledged write lost, convergence after every fault), never
 * timing: the figures depend on the machine's load. It prints, per kind, the time from the fault to the
 * first acknowledged write (p50, p99, max, every sample). By default it runs one fault of each kind, in
 * the order pause, partition, kill (CI): a kill that follows two faults in which the client's attempts
 * timed out is the sequence that once left the client retrying only the dead primary.
 * {@code -Dchoir.failover.faults=20} measures over 20 of each (interleaved),
 * {@code -Dchoir.failover.kinds=kill} picks kinds and their order, {@code -Dchoir.failover.seed=S} replays
 * the durations. A write not acknowledged 10 s after a fault ended prints the writers' stacks and turns
 * the client's debug log on.
 */
class FailoverProcessTest {
  enum Kind { KILL, PAUSE, PARTITION }

  private static final int WRITERS = 4;
  private static final long MIN_FAULT_MS = 3000;
  private static final long MAX_FAULT_MS = 8000;
  /**
   * Acknowledgements within this long of the fault being in place are the old primary's last ones
   * (replies already in the client's socket buffer, or commits already under way): no new primary can be
   * elected so soon, since a backup waits an election timeout (at least 500 ms here) after the last
   * heartbeat it heard. They are counted and printed, and not taken as the first write after the fault.
   */
  private static final long RESIDUE_NS = TimeUnit.MILLISECONDS.toNanos(100);
  /** No acknowledgement this long after a fault ended: print what the writers and the client do. */
  private static final long STALL_NS = TimeUnit.SECONDS.toNanos(10);

  @TempDir Path dir;
  private ProcessCluster cluster;

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  /** One fault: its kind, how long it lasted (pause and partition), and what the writers saw. */
  record Sample(Kind kind, long faultMs, double firstAckMs, double inPlaceMs, boolean servedDuringFault,
      int residue) {}

  @Test
  void shouldServeWritesAfterKillPauseAndPartitionOfThePrimaryAndLoseNoAcknowledgedWrite() throws Exception {
    int faults = Integer.getInteger("choir.failover.faults", 1);
    List<Kind> kinds = Arrays.stream(System.getProperty("choir.failover.kinds", "pause,partition,kill")
        .split(",")).map(k -> Kind.valueOf(k.trim().toUpperCase(Locale.ROOT))).toList();
    long seed = Long.getLong("choir.failover.seed", new SecureRandom().nextLong());
    System.out.println("FailoverProcessTest seed " + seed + " (replay the fault durations with -Dchoir.failover.seed="
        + seed + "); " + faults + " fault(s) of each of " + kinds + "; load before: " + Load.now());
    SplittableRandom random = new SplittableRandom(seed);
    cluster = new ProcessCluster(dir, "failover", "");
    cluster.startAll();
    List<Sample> samples = new ArrayList<>();
    List<ChoirClient> clients = new ArrayList<>();
    List<ClosedLoopWriter> writers = new ArrayList<>();
    try (ChoirClient admin = cluster.client(Duration.ofSeconds(2))) {
      cluster.awaitConverged(admin, Duration.ofSeconds(30));
      for (int w = 0; w < WRITERS; w++) {
        // The client's defaults, as a user would have them, with every endpoint.
        ChoirClient c = ChoirClient.builder().endpoints(cluster.endpoints()).build();
        clients.add(c);
        ClosedLoopWriter writer = new ClosedLoopWriter(c, "w" + w + "/", 1_000_000);
        writers.add(writer);
        writer.start();
      }
      for (int f = 0; f < faults; f++) {
        for (Kind kind : kinds) {
          long faultMs = MIN_FAULT_MS + random.nextLong(MAX_FAULT_MS - MIN_FAULT_MS);
          awaitAcks(writers, 20, Duration.ofSeconds(30));
          Sample s = fault(kind, kind == Kind.KILL ? 0 : faultMs, admin, writers);
          samples.add(s);
          System.out.printf(Locale.ROOT, "fault %d %s%s: first acknowledged write %.0f ms after the fault (in place"
              + " after %.0f ms)%s%s%n", samples.size(), kind, kind == Kind.KILL ? "" : " for " + faultMs + " ms",
              s.firstAckMs(), s.inPlaceMs(), kind == Kind.KILL ? "" : s.servedDuringFault() ? ", during the fault"
              : ", only after the fault ended", s.residue() > 0 ? "; " + s.residue() + " residual acks" : "");
          settle(admin, writers);
        }
      }
      int checked = 0;
      for (ClosedLoopWriter w : writers) {
        w.finish();
      }
      cluster.awaitConverged(admin, Duration.ofSeconds(60));
      for (int w = 0; w < WRITERS; w++) {
        checked += ClosedLoopWriter.assertAllPresent(admin, "w" + w + "/", writers.get(w).acked);
      }
      System.out.println("read back all " + checked + " acknowledged writes; errors seen by the writers: "
          + writers.stream().map(ClosedLoopWriter::errorKinds).toList());
    } finally {
      for (ClosedLoopWriter w : writers) {
        w.finish();
      }
      clients.forEach(ChoirClient::close);
    }
    report(samples, seed, kinds, faults);
  }

  /** Injects one fault on the current primary, waits for the first acknowledged write, and ends the fault. */
  private Sample fault(Kind kind, long faultMs, ChoirClient admin, List<ClosedLoopWriter> writers) throws Exception {
    List<ReplicaInfo> before = cluster.statuses(admin);
    int primary = cluster.awaitPrimary(admin, Duration.ofSeconds(10));
    ReplicaProcess victim = cluster.replica(primary);
    long start = System.nanoTime();
    switch (kind) {
      case KILL -> victim.kill(); // returns once the process is gone
      case PAUSE -> victim.pause(); // returns once the kernel reports it stopped
      case PARTITION -> {
        cluster.isolate(primary);
        awaitBackupsCut(admin, primary, before);
      }
      default -> throw new IllegalStateException();
    }
    long inPlace = System.nanoTime();
    long faultEnd = inPlace + TimeUnit.MILLISECONDS.toNanos(faultMs);
    long[] firstAndEnd;
    try {
      firstAndEnd = awaitFirstAck(kind, primary, victim, inPlace, faultEnd, admin, writers);
    } finally {
      clientLogLevel(Level.WARN);
    }
    long first = firstAndEnd[0];
    long endedAt = firstAndEnd[1];
    int residue = 0;
    for (ClosedLoopWriter w : writers) {
      long a = w.firstAckAfter(inPlace);
      residue += a > 0 && a <= inPlace + RESIDUE_NS ? 1 : 0;
    }
    if (kind == Kind.KILL) {
      int next = cluster.awaitPrimary(admin, Duration.ofSeconds(20));
      assertNotEquals(primary, next, "a new primary serves writes");
      victim.start();
    }
    return new Sample(kind, faultMs, (first - start) / 1e6, (inPlace - start) / 1e6,
        kind != Kind.KILL && first < endedAt, residue);
  }

  /**
   * Waits for the first acknowledgement after the fault is in place (past the residue), ending a pause
   * or a partition at faultEnd meanwhile; returns that acknowledgement's time and when the fault ended.
   */
  private long[] awaitFirstAck(Kind kind, int primary, ReplicaProcess victim, long inPlace, long faultEnd,
      ChoirClient admin, List<ClosedLoopWriter> writers) throws Exception {
    long deadline = faultEnd + TimeUnit.SECONDS.toNanos(30);
    long endedAt = kind == Kind.KILL ? inPlace : -1;
    boolean diagnosed = false;
    while (true) {
      long first = ClosedLoopWriter.firstAckAfter(writers, inPlace + RESIDUE_NS);
      if (endedAt < 0 && System.nanoTime() >= faultEnd) {
        endedAt = System.nanoTime(); // from here on, a write may succeed because the fault is over
        if (kind == Kind.PAUSE) {
          victim.resume();
        } else {
          cluster.healAll();
        }
      }
      if (first > 0 && endedAt >= 0) {
        return new long[] {first, endedAt};
      }
      if (!diagnosed && endedAt >= 0 && System.nanoTime() > Math.max(endedAt, inPlace) + STALL_NS) {
        diagnosed = true;
        diagnoseStall(kind, primary, admin);
      }
      if (System.nanoTime() > deadline) {
        fail("no write acknowledged within 30 s after the " + kind + " of primary " + primary + " ended: "
            + cluster.statuses(admin) + "; writers' errors " + writers.stream().map(ClosedLoopWriter::errorKinds).toList());
      }
      TimeUnit.MILLISECONDS.sleep(5); // polling the writers' acknowledgements
    }
  }

  /**
   * Prints what the writers are doing and turns the client's debug log on (where each attempt goes, the
   * hints it follows or ignores), for a stall after a fault: a failure in CI can then be read.
   */
  private void diagnoseStall(Kind kind, int primary, ChoirClient admin) {
    System.out.println("no acknowledgement " + TimeUnit.NANOSECONDS.toSeconds(STALL_NS) + " s after the " + kind
        + " of primary " + primary + " ended; statuses: " + cluster.statuses(admin).stream()
        .map(r -> r == null ? "-" : r.id() + ":" + r.role() + " v" + r.view() + " op " + r.op()).toList());
    for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
      if (e.getKey().getName().startsWith("writer-")) {
        System.out.println("  " + e.getKey().getName() + " " + e.getKey().getState() + " at "
            + Arrays.stream(e.getValue()).limit(12).map(String::valueOf).collect(Collectors.joining(" < ")));
      }
    }
    clientLogLevel(Level.DEBUG);
  }

  private static void clientLogLevel(Level level) {
    ((Logger) LoggerFactory.getLogger("io.choir.client")).setLevel(level);
  }

  /** Waits until both backups drop the primary's datagrams (they read the fault file every 100 ms). */
  private void awaitBackupsCut(ChoirClient admin, int primary, List<ReplicaInfo> before) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      List<ReplicaInfo> now = cluster.statuses(admin);
      boolean cut = true;
      for (int id = 1; id <= 3; id++) {
        if (id != primary) {
          long was = before.get(id - 1) == null ? 0
              : ProcessCluster.counter(before.get(id - 1), "datagrams_dropped_test_partition");
          cut &= now.get(id - 1) != null
              && ProcessCluster.counter(now.get(id - 1), "datagrams_dropped_test_partition") > was;
        }
      }
      if (cut) {
        return;
      }
      if (System.nanoTime() > deadline) {
        fail("the backups did not apply the partition in 10 s: " + now);
      }
      TimeUnit.MILLISECONDS.sleep(5); // polling status
    }
  }

  /** Holds the writers until the three replicas agree, then lets them go on. */
  private void settle(ChoirClient admin, List<ClosedLoopWriter> writers) throws InterruptedException {
    for (ClosedLoopWriter w : writers) {
      assertTrue(w.hold(Duration.ofSeconds(30)), "a writer's request stayed unanswered for 30 s");
    }
    cluster.awaitConverged(admin, Duration.ofSeconds(60));
    writers.forEach(ClosedLoopWriter::release);
  }

  private static void awaitAcks(List<ClosedLoopWriter> writers, int more, Duration timeout) throws InterruptedException {
    int target = writers.stream().mapToInt(ClosedLoopWriter::acks).sum() + more;
    long deadline = System.nanoTime() + timeout.toNanos();
    while (writers.stream().mapToInt(ClosedLoopWriter::acks).sum() < target) {
      if (System.nanoTime() > deadline) {
        fail("the writers got fewer than " + more + " acknowledgements in " + timeout);
      }
      TimeUnit.MILLISECONDS.sleep(10); // polling the writers' counters
    }
  }

  private static void report(List<Sample> samples, long seed, List<Kind> kinds, int faults) {
    Map<Kind, List<Sample>> byKind = new EnumMap<>(Kind.class);
    for (Sample s : samples) {
      byKind.computeIfAbsent(s.kind(), k -> new ArrayList<>()).add(s);
    }
    System.out.println("failover, fault -> first acknowledged write (seed " + seed + ", load after: " + Load.now() + "):");
    for (Map.Entry<Kind, List<Sample>> e : byKind.entrySet()) {
      List<Double> ms = e.getValue().stream().map(Sample::firstAckMs).toList();
      List<Double> sorted = ms.stream().sorted().toList();
      long during = e.getValue().stream().filter(Sample::servedDuringFault).count();
      System.out.printf(Locale.ROOT, "  %-9s faults=%d p50=%.0f ms p99=%.0f ms max=%.0f ms%s; all (ms, in order): %s%n",
          e.getKey().name().toLowerCase(Locale.ROOT), ms.size(), percentile(sorted, 0.50), percentile(sorted, 0.99),
          sorted.get(sorted.size() - 1),
          e.getKey() == Kind.KILL ? "" : ", served during the fault " + during + " of " + ms.size(),
          ms.stream().map(d -> String.valueOf(Math.round(d))).collect(Collectors.joining(", ")));
      if (e.getKey() != Kind.KILL) {
        System.out.println("            fault durations (ms): " + e.getValue().stream()
            .map(s -> String.valueOf(s.faultMs())).collect(Collectors.joining(", ")));
      }
    }
  }

  /** Nearest-rank percentile of sorted values. */
  private static double percentile(List<Double> sorted, double p) {
    return sorted.get((int) Math.ceil(p * sorted.size()) - 1);
  }

  @Test
  void shouldStopAcknowledgingOnAnIsolatedPrimaryElectAnotherAndRejoinAfterHealing() throws Exception {
    cluster = new ProcessCluster(dir, "isolated", "");
    cluster.startAll();
    try (ChoirClient admin = cluster.client(Duration.ofSeconds(5))) {
      admin.put("before", "1");
      int old = cluster.awaitPrimary(admin, Duration.ofSeconds(10));
      cluster.isolate(old); // clients still reach everyone
      String oldEndpoint = cluster.endpoint(old);
      try (ChoirClient minority = ChoirClient.builder().endpoints(oldEndpoint)
          .requestTimeout(Duration.ofSeconds(3)).build()) {
        TimeUnit.MILLISECONDS.sleep(1500); // past the election timeout: CheckQuorum has stopped it
        assertThrows(ChoirException.class, () -> minority.put("minority", "x"),
            "the isolated old primary (a minority) must not acknowledge a write");
      }
      List<String> majority = new ArrayList<>(cluster.endpoints());
      majority.remove(oldEndpoint);
      try (ChoirClient c = ChoirClient.builder().endpoints(majority).requestTimeout(Duration.ofSeconds(15)).build()) {
        c.put("during", "2");
        assertEquals("2", c.get("during").orElseThrow().valueAsString());
        assertTrue(c.get("minority").isEmpty(), "nothing from the minority side exists");
      }
      cluster.healAll();
      cluster.awaitConverged(admin, Duration.ofSeconds(30));
      ReplicaInfo rejoined = admin.status(oldEndpoint).info();
      assertEquals("backup", rejoined.role(), "the old primary rejoined as a backup");
      assertEquals("1", admin.get("before").orElseThrow().valueAsString());
      assertEquals("2", admin.get("during").orElseThrow().valueAsString());
    }
  }
}
