package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * RejoinWithoutViewChangeProcessTest (issue 9, hole 2d) measures on three replica processes, with a
 * client writing all along, that a backup coming back causes no view change: neither one cut off from
 * both others for several election timeouts and then healed (without PreVote it kept raising its view,
 * and its START_VIEW_CHANGE deposed the healthy primary on healing), nor one killed with kill -9 and
 * restarted. "No view change" is read from every replica's status before and after: the same view, the
 * same view_changes (view changes completed), and for the backup that was cut off, the same
 * view_changes_started (it never raised its view: PreVote found no majority).
 */
class RejoinWithoutViewChangeProcessTest {
  /** Three election timeouts of the default setting (election_timeout_ms 500, randomized to [500, 1000)). */
  private static final Duration AWAY = Duration.ofSeconds(3);
  /** After catching up, the time the healed backup is watched for a late view change: 2 election timeouts. */
  private static final Duration WATCH = Duration.ofSeconds(2);

  @TempDir Path dir;
  private ProcessCluster cluster;

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void shouldCauseNoViewChangeWhenACutOffBackupHeals() throws Exception {
    cluster = new ProcessCluster(dir, "rejoin-heal", ClusterKeyFile.yaml(dir));
    cluster.startAll();
    try (ChoirClient admin = cluster.client(Duration.ofSeconds(5));
        ChoirClient writes = cluster.client(Duration.ofSeconds(15))) {
      List<ReplicaInfo> before = cluster.awaitConverged(admin, Duration.ofSeconds(30));
      ClosedLoopWriter writer = startWriting(writes, "heal/");
      int primary = primaryOf(before);
      int backup = primary % 3 + 1;
      long droppedBefore = ProcessCluster.counter(before.get(backup - 1), "datagrams_dropped_test_partition");
      cluster.isolate(backup);
      // In place once the backup drops the primary's datagrams (the fault file is re-read every 100 ms).
      awaitCounterAbove(admin, backup, "datagrams_dropped_test_partition", droppedBefore, Duration.ofSeconds(10));
      int acksAtCut = writer.acks();
      TimeUnit.MILLISECONDS.sleep(AWAY.toMillis()); // the fault itself: the backup stays away this long
      ReplicaInfo away = cluster.statuses(admin).get(backup - 1);
      assertTrue(writer.acks() > acksAtCut, "the majority kept acknowledging while the backup was away");
      cluster.healAll();
      awaitCaughtUp(admin, backup, Duration.ofSeconds(30));
      watch(admin, writer, WATCH);
      writer.finish();
      List<ReplicaInfo> after = cluster.awaitConverged(admin, Duration.ofSeconds(30));
      report("cut-off backup " + backup + " healed after " + AWAY.toMillis() + " ms (its view while away: "
          + away.view() + ", view_changes_started " + ProcessCluster.counter(away, "view_changes_started") + ")",
          before, after);
      assertNoViewChange(before, after, List.of(1, 2, 3));
      assertEquals(ProcessCluster.counter(before.get(backup - 1), "view_changes_started"),
          ProcessCluster.counter(after.get(backup - 1), "view_changes_started"),
          "the cut-off backup never raised its view (PreVote found no majority)");
      ClosedLoopWriter.assertAllPresent(admin, "heal/", writer.acked);
    }
  }

  @Test
  void shouldCauseNoViewChangeWhenAKilledBackupRestarts() throws Exception {
    cluster = new ProcessCluster(dir, "rejoin-restart", ClusterKeyFile.yaml(dir));
    cluster.startAll();
    try (ChoirClient admin = cluster.client(Duration.ofSeconds(5));
        ChoirClient writes = cluster.client(Duration.ofSeconds(15))) {
      List<ReplicaInfo> before = cluster.awaitConverged(admin, Duration.ofSeconds(30));
      ClosedLoopWriter writer = startWriting(writes, "restart/");
      int primary = primaryOf(before);
      int backup = primary % 3 + 1;
      cluster.replica(backup).kill();
      int acksAtKill = writer.acks();
      TimeUnit.MILLISECONDS.sleep(AWAY.toMillis()); // the fault itself: the backup stays down this long
      assertTrue(writer.acks() > acksAtKill, "the majority kept acknowledging while the backup was down");
      cluster.replica(backup).start();
      awaitCaughtUp(admin, backup, Duration.ofSeconds(30));
      watch(admin, writer, WATCH);
      writer.finish();
      List<ReplicaInfo> after = cluster.awaitConverged(admin, Duration.ofSeconds(30));
      report("killed backup " + backup + " restarted after " + AWAY.toMillis() + " ms down", before, after);
      assertEquals(before.get(0).view(), after.get(backup - 1).view(), "the restarted backup is in the same view");
      // The restarted process counts from 0; the two that stayed up must not have completed a view change.
      assertNoViewChange(before, after, List.of(1, 2, 3).stream().filter(i -> i != backup).toList());
      ClosedLoopWriter.assertAllPresent(admin, "restart/", writer.acked);
    }
  }

  /** Starts a writer and waits until it has 100 acknowledgements; it keeps writing. */
  private ClosedLoopWriter startWriting(ChoirClient writes, String prefix) throws Exception {
    ClosedLoopWriter writer = new ClosedLoopWriter(writes, prefix, 1_000_000);
    writer.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (writer.acks() < 100) {
      if (System.nanoTime() > deadline) {
        fail("the cluster acknowledged only " + writer.acks() + " writes in 30 s: " + writer.errorKinds());
      }
      TimeUnit.MILLISECONDS.sleep(10); // polling the writer's counter
    }
    return writer;
  }

  private static int primaryOf(List<ReplicaInfo> s) {
    return s.stream().filter(r -> r.role().equals("primary")).findFirst().orElseThrow().id();
  }

  private void awaitCounterAbove(ChoirClient admin, int id, String name, long floor, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      ReplicaInfo r = cluster.statuses(admin).get(id - 1);
      if (r != null && ProcessCluster.counter(r, name) > floor) {
        return;
      }
      if (System.nanoTime() > deadline) {
        fail("replica " + id + "'s " + name + " stayed at " + floor + " for " + timeout);
      }
      TimeUnit.MILLISECONDS.sleep(20); // polling status
    }
  }

  /**
   * Waits until replica id, in normal operation, has applied everything the others had committed when
   * this was called. Its role is not checked here: if it deposed the primary (the hole), the view
   * assertions afterwards say so.
   */
  private void awaitCaughtUp(ChoirClient admin, int id, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    long target = -1;
    List<ReplicaInfo> s = List.of();
    while (System.nanoTime() < deadline) {
      s = cluster.statuses(admin);
      if (target < 0) {
        for (ReplicaInfo r : s) {
          if (r != null && r.id() != id) {
            target = Math.max(target, r.commit());
          }
        }
      }
      ReplicaInfo me = s.get(id - 1);
      if (target >= 0 && me != null && (me.role().equals("backup") || me.role().equals("primary"))
          && me.applied() >= target) {
        return;
      }
      TimeUnit.MILLISECONDS.sleep(50); // polling status
    }
    fail("replica " + id + " did not catch up to op " + target + " in " + timeout + ": " + s);
  }

  /**
   * Keeps the writer going for at least `span` and 100 more acknowledgements: long enough for a
   * START_VIEW_CHANGE of the returning backup to depose the primary, which without PreVote happens within
   * one heartbeat of healing.
   */
  private void watch(ChoirClient admin, ClosedLoopWriter writer, Duration span) throws InterruptedException {
    long until = System.nanoTime() + span.toNanos();
    int acks = writer.acks() + 100;
    long deadline = until + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < until || writer.acks() < acks) {
      if (System.nanoTime() > deadline) {
        fail("writes stalled after the backup came back: " + writer.acks() + " acks, " + writer.errorKinds()
            + ", " + cluster.statuses(admin));
      }
      TimeUnit.MILLISECONDS.sleep(20); // an observation window, not a wait for a condition
    }
  }

  private static void report(String what, List<ReplicaInfo> before, List<ReplicaInfo> after) {
    List<String> rows = new ArrayList<>();
    for (int i = 0; i < before.size(); i++) {
      rows.add("replica " + (i + 1) + ": view " + before.get(i).view() + " -> " + after.get(i).view()
          + ", view_changes " + ProcessCluster.counter(before.get(i), "view_changes") + " -> "
          + ProcessCluster.counter(after.get(i), "view_changes") + ", view_changes_started "
          + ProcessCluster.counter(before.get(i), "view_changes_started") + " -> "
          + ProcessCluster.counter(after.get(i), "view_changes_started"));
    }
    System.out.println(what + ": " + String.join("; ", rows) + "; applied " + after.get(0).applied());
  }

  private static void assertNoViewChange(List<ReplicaInfo> before, List<ReplicaInfo> after, List<Integer> ids) {
    for (int id : ids) {
      ReplicaInfo b = before.get(id - 1);
      ReplicaInfo a = after.get(id - 1);
      assertEquals(b.view(), a.view(), "replica " + id + "'s view changed");
      assertEquals(ProcessCluster.counter(b, "view_changes"), ProcessCluster.counter(a, "view_changes"),
          "replica " + id + " completed a view change");
    }
  }
}
