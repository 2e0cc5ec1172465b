package io.choir.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.client.Watch;
import io.choir.client.WatchOptions;
import io.choir.client.recipes.LeaderElection;
import io.choir.client.recipes.Lock;
import io.choir.server.config.ServerConfig;
import io.choir.server.replica.ReplicaServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Lock and LeaderElection recipes wait by a watch, not by polling: with a fallback poll of an hour,
 * a waiter that is parked in its wait (seen in its thread's stack) still gets the lock, or the
 * leadership, within seconds of the release, the resignation or the holder's lease ending, with a
 * higher fencing token; the replica's status counts the waiter's watch and the leases. One real replica
 * in this JVM (loopback, free ports).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RecipeWakeupTest {
  /** Far longer than any deadline here: a waiter woken within one was woken by its watch. */
  private static final Duration POLL = Duration.ofHours(1);
  private static final Duration TTL = Duration.ofSeconds(30);
  private static final long PROMPT_NS = TimeUnit.SECONDS.toNanos(20);
  @TempDir static Path dir;
  private static ReplicaServer server;
  private static String endpoint;

  @BeforeAll
  static void start() throws Exception {
    int clientPort = freePort();
    server = replica("recipes", clientPort, Map.of());
    endpoint = "127.0.0.1:" + clientPort;
  }

  /** A single replica named name serving clients on clientPort, with the extra settings. */
  private static ReplicaServer replica(String name, int clientPort, Map<String, Object> extra) throws Exception {
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("cluster_id", name);
    s.put("replica_id", 1);
    s.put("replicas", "1=127.0.0.1:" + clientPort + "/127.0.0.1:" + freePort());
    s.put("data_dir", dir.resolve(name).toString());
    s.put("peer_transport", "unicast");
    s.put("durability", "buffered");
    s.put("log_level", "warn");
    s.putAll(extra);
    return ReplicaServer.start(ServerConfig.build(s, Map.of()));
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

  private static ChoirClient client() {
    return client(endpoint);
  }

  private static ChoirClient client(String endpoints) {
    return ChoirClient.builder().endpoints(endpoints).requestTimeout(Duration.ofSeconds(10)).build();
  }

  /** A waiter running acquire on a thread of its own, with the thread to look at. */
  private record Waiter<T>(Thread thread, CompletableFuture<T> result) {}

  private interface Acquire<T> {
    T run() throws Exception;
  }

  private static <T> Waiter<T> waiter(String name, Acquire<T> acquire) {
    CompletableFuture<T> result = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        result.complete(acquire.run());
      } catch (Throwable e) {
        result.completeExceptionally(e);
      }
    }, name);
    t.setDaemon(true);
    t.start();
    return new Waiter<>(t, result);
  }

  /** Polls (with a deadline) until the thread is parked in the recipe's wait for a change of the key. */
  private static void awaitParked(Waiter<?> w) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!Arrays.stream(w.thread().getStackTrace()).anyMatch(
        f -> f.getClassName().endsWith("recipes.KeyWaiter") && f.getMethodName().equals("await"))) {
      assertTrue(!w.result().isDone(), () -> "the waiter finished before waiting: " + w.result());
      assertTrue(System.nanoTime() < deadline, "the waiter never parked in its wait");
      Thread.sleep(5);
    }
  }

  /** Polls (with a deadline) the replica's status until it satisfies done. */
  private static ReplicaInfo awaitStatus(ChoirClient client, Predicate<ReplicaInfo> done) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (true) {
      ReplicaInfo info = client.status().get(0).info();
      if (info != null && done.test(info)) {
        return info;
      }
      assertTrue(System.nanoTime() < deadline, "status never got there: " + info);
      Thread.sleep(10);
    }
  }

  /** The replica's count of refused watches. */
  private static long refused(ChoirClient client) throws InterruptedException {
    return awaitStatus(client, i -> true).counters().getOrDefault("watch_refused", 0L);
  }

  /** The waiter's result within PROMPT_NS (far below POLL: only its watch can wake it that soon). */
  private static <T> T within(Waiter<T> w) throws Exception {
    return w.result().get(PROMPT_NS, TimeUnit.NANOSECONDS);
  }

  @Test
  void aWaiterGetsTheLockPromptlyAfterTheRelease() throws Exception {
    try (ChoirClient a = client(); ChoirClient b = client()) {
      Lock lockA = new Lock(a, "recipes/lock/release", "a", TTL, POLL);
      Lock lockB = new Lock(b, "recipes/lock/release", "b", TTL, POLL);
      Lock.Held heldA = lockA.acquire(Duration.ofSeconds(10));
      Waiter<Lock.Held> w = waiter("waiter-b", () -> lockB.acquire(Duration.ofHours(1)));
      awaitParked(w);
      // choir status shows the waiter's watch and both leases, one key attached (A's lock key).
      ReplicaInfo status = awaitStatus(a, i -> i.watchers() == 1);
      assertEquals(2, status.leases(), status.toString());
      assertEquals(1, status.leaseKeys(), status.toString());
      heldA.close();
      try (Lock.Held heldB = within(w)) {
        assertTrue(heldB.fencingToken() > heldA.fencingToken(), heldB + " after " + heldA);
        assertEquals("b", lockA.holder().orElseThrow());
        // The waiter's watch is closed once it holds the lock; A's lease is gone.
        status = awaitStatus(a, i -> i.watchers() == 0);
        assertEquals(1, status.leases(), status.toString());
        assertEquals(1, status.leaseKeys(), status.toString());
      }
    }
  }

  @Test
  void aWaiterGetsTheLockPromptlyWhenTheHoldersLeaseEnds() throws Exception {
    try (ChoirClient a = client(); ChoirClient b = client()) {
      Lock.Held heldA = new Lock(a, "recipes/lock/revoked", "a", TTL, POLL).acquire(Duration.ofSeconds(10));
      Lock lockB = new Lock(b, "recipes/lock/revoked", "b", TTL, POLL);
      Waiter<Lock.Held> w = waiter("waiter-b", () -> lockB.acquire(Duration.ofHours(1)));
      awaitParked(w);
      b.leases().revoke(heldA.lease().id()); // as an expiry would: the holder does not release
      try (Lock.Held heldB = within(w)) {
        assertTrue(heldB.fencingToken() > heldA.fencingToken(), heldB + " after " + heldA);
      }
      heldA.close();
    }
  }

  @Test
  void aCandidateTakesOverPromptlyWhenTheLeaderResigns() throws Exception {
    try (ChoirClient a = client(); ChoirClient b = client()) {
      LeaderElection first = new LeaderElection(a, "recipes/election", "first", TTL, POLL);
      LeaderElection second = new LeaderElection(b, "recipes/election", "second", TTL, POLL);
      LeaderElection.Leadership leading = first.campaign(Duration.ofSeconds(10));
      assertEquals("first", second.leader().orElseThrow());
      Waiter<LeaderElection.Leadership> w = waiter("candidate-second", () -> second.campaign(Duration.ofHours(1)));
      awaitParked(w);
      leading.close();
      try (LeaderElection.Leadership next = within(w)) {
        assertTrue(next.term() > leading.term(), next.term() + " after " + leading.term());
        assertEquals("second", first.leader().orElseThrow());
      }
    }
  }

  /**
   * The fallback: a replica whose one watcher slot is taken refuses the waiter's watch (BUSY), and the
   * waiter still gets the lock after the release, by its poll (short here), without spinning on the
   * refusal (the status shows the one watch only: no new watch is opened again and again).
   */
  @Test
  void aWaiterWhoseWatchIsRefusedStillGetsTheLockByItsPoll() throws Exception {
    int port = freePort();
    try (ReplicaServer limited = replica("recipes-one-watcher", port, Map.of("max_watchers", 1));
        ChoirClient a = client("127.0.0.1:" + port); ChoirClient b = client("127.0.0.1:" + port);
        Watch slot = a.watch(WatchOptions.key("recipes/other"), e -> {})) {
      awaitStatus(a, i -> i.watchers() == 1);
      long refusedBefore = refused(a);
      Duration poll = Duration.ofMillis(100);
      Lock.Held heldA = new Lock(a, "recipes/lock/fallback", "a", TTL, poll).acquire(Duration.ofSeconds(10));
      Lock lockB = new Lock(b, "recipes/lock/fallback", "b", TTL, poll);
      Waiter<Lock.Held> w = waiter("waiter-b", () -> lockB.acquire(Duration.ofHours(1)));
      awaitParked(w);
      assertEquals(1, awaitStatus(a, i -> true).watchers());
      heldA.close();
      try (Lock.Held heldB = within(w)) {
        assertTrue(heldB.fencingToken() > heldA.fencingToken(), heldB + " after " + heldA);
        assertTrue(slot.isActive(), "the other watch kept its slot");
        assertEquals(1, refused(a) - refusedBefore, "the waiter asked for its watch once");
      }
    }
  }
}
