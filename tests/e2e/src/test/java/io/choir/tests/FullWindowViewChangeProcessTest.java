package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.client.VersionedValue;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * FullWindowViewChangeProcessTest (issue 9, hole 2e): three replica processes with 20% of multicast
 * datagrams dropped on receipt (test_multicast_loss_percent), a client keeping the primary's whole
 * flow-control window (max_in_flight_bytes) full of 1 MiB values, and then the primary killed (kill -9)
 * or paused (SIGSTOP) while the window is full. Before the fix DO_VIEW_CHANGE and START_VIEW carried the
 * whole suffix above commit (up to the window) as one fragmented message with no repair of a lost
 * fragment, so under loss such a view change never finished. Now a new primary must be elected and
 * acknowledge a write within {@link #SERVE_BOUND}, every acknowledged write must be readable afterwards
 * with its value and version, and all three replicas must converge.
 *
 * <p>{@code -Dchoir.fullwindow.mib=64} runs the default window (64 MiB; the test's default is 40 MiB,
 * about 40 entries, for run time); {@code -Dchoir.fullwindow.jvm=-Xmx2g} sets the replicas' JVM heap.
 */
class FullWindowViewChangeProcessTest {
  private static final int VALUE_BYTES = 1 << 20; // max_value_bytes' default
  /** From the fault to a write acknowledged by the new primary. */
  private static final Duration SERVE_BOUND = Duration.ofSeconds(30);

  @TempDir Path dir;
  private ProcessCluster cluster;

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void shouldFinishAViewChangeAfterKillOfThePrimaryWithAFullWindowOfOneMebibyteValuesUnderTwentyPercentLoss()
      throws Exception {
    run(false);
  }

  @Test
  void shouldFinishAViewChangeAfterPauseOfThePrimaryWithAFullWindowOfOneMebibyteValuesUnderTwentyPercentLoss()
      throws Exception {
    run(true);
  }

  private void run(boolean pause) throws Exception {
    int windowMiB = Integer.getInteger("choir.fullwindow.mib", 40);
    List<String> jvm = List.of(System.getProperty("choir.fullwindow.jvm", "-Xmx1g").split("\\s+"));
    assertTrue(windowMiB >= 32, "the window must hold many 1 MiB entries");
    cluster = new ProcessCluster(dir, "fullwindow", 3,
        "test_multicast_loss_percent: 20\nmax_in_flight_bytes: " + ((long) windowMiB << 20) + "\n", jvm);
    cluster.startAll();
    try (ChoirClient admin = cluster.client(Duration.ofSeconds(5));
        ChoirClient writes = cluster.client(Duration.ofSeconds(60))) {
      cluster.awaitConverged(admin, Duration.ofSeconds(30));
      int oldPrimary = cluster.awaitPrimary(admin, Duration.ofSeconds(10));
      long oldView = cluster.statuses(admin).get(oldPrimary - 1).view();
      // Twice the window in flight: the primary holds the excess as queued writes, so the window stays full.
      BigWriter writer = new BigWriter(writes, 2 * windowMiB);
      writer.start();
      long fillStart = System.nanoTime();
      ReplicaInfo full = awaitFullWindow(admin, oldPrimary, Duration.ofSeconds(60));
      double fillMs = (System.nanoTime() - fillStart) / 1e6;
      ReplicaProcess victim = cluster.replica(oldPrimary);
      long start = System.nanoTime();
      if (pause) {
        victim.pause();
      } else {
        victim.kill();
      }
      long inPlace = System.nanoTime();
      // Replies already on their way are the old primary's; a new one cannot exist within an election timeout.
      long from = inPlace + TimeUnit.MILLISECONDS.toNanos(100);
      long deadline = start + SERVE_BOUND.toNanos();
      long elected = -1;
      int newPrimary = -1;
      long firstAck;
      while ((firstAck = writer.firstAckAfter(from)) < 0 || elected < 0) {
        if (System.nanoTime() > deadline) {
          fail("no new primary acknowledged a write within " + SERVE_BOUND + " of the " + (pause ? "pause" : "kill")
              + " (elected: " + (elected > 0) + "): " + cluster.statuses(admin) + "; client errors "
              + writer.errorKinds);
        }
        if (elected < 0) {
          for (ReplicaInfo r : cluster.statuses(admin)) {
            if (r != null && r.id() != oldPrimary && r.role().equals("primary") && r.view() > oldView) {
              elected = System.nanoTime();
              newPrimary = r.id();
            }
          }
        }
        TimeUnit.MILLISECONDS.sleep(10); // polling status and the writer's acknowledgements
      }
      writer.finish(Duration.ofSeconds(90));
      long ended = System.nanoTime();
      if (pause) {
        victim.resume();
      } else {
        victim.start();
      }
      List<ReplicaInfo> end = cluster.awaitConverged(admin, Duration.ofSeconds(120));
      double convergeMs = (System.nanoTime() - ended) / 1e6;
      int checked = assertAllReadable(admin, writer.acked);
      long nacks = end.stream().mapToLong(r -> ProcessCluster.counter(r, "nacks_sent")).sum();
      long retransmits = end.stream().mapToLong(r -> ProcessCluster.counter(r, "retransmits")).sum();
      long lossDrops = end.stream().mapToLong(r -> ProcessCluster.counter(r, "datagrams_dropped_test_loss")).sum();
      System.out.printf(Locale.ROOT, "full window of %d MiB, 20%% multicast loss, %s of primary %d: window full after"
              + " %.0f ms (op %d, commit %d, %d queued); new primary %d elected %.0f ms and first write acknowledged"
              + " %.0f ms after the fault; converged %.0f ms after the %s ended (view %d); %d acknowledged writes"
              + " read back; %d failed (%s); nacks_sent %d, retransmits %d, multicast datagrams dropped %d; %s%n",
          windowMiB, pause ? "pause" : "kill -9", oldPrimary, fillMs, full.op(), full.commit(),
          ProcessCluster.counter(full, "queued_writes"), newPrimary, (elected - start) / 1e6, (firstAck - start) / 1e6,
          convergeMs, pause ? "pause" : "restart", end.get(0).view(), checked, writer.failed.get(), writer.errorKinds,
          nacks, retransmits, lossDrops, Load.now());
      assertTrue(lossDrops > 0, "the test loss was in effect");
    }
  }

  /** Waits until the primary holds writes back because its window is full, and returns its status. */
  private ReplicaInfo awaitFullWindow(ChoirClient admin, int primary, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    ReplicaInfo r = null;
    while (System.nanoTime() < deadline) {
      r = cluster.statuses(admin).get(primary - 1);
      if (r != null && ProcessCluster.counter(r, "queued_writes") > 0) {
        return r;
      }
      TimeUnit.MILLISECONDS.sleep(10); // polling status
    }
    fail("the primary's window never filled in " + timeout + ": " + r);
    return r;
  }

  /** The value written under key: its own key first, then a byte pattern that depends on it. */
  static byte[] value(String key) {
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    byte[] v = new byte[VALUE_BYTES];
    Arrays.fill(v, (byte) (key.hashCode() * 31 + 7));
    System.arraycopy(k, 0, v, 0, k.length);
    return v;
  }

  /** Reads back every acknowledged write (a few at a time: each is 1 MiB); returns how many. */
  private static int assertAllReadable(ChoirClient c, Map<String, Long> acked) {
    List<String> keys = new ArrayList<>(acked.keySet());
    for (int i = 0; i < keys.size(); i += 8) {
      List<String> part = keys.subList(i, Math.min(keys.size(), i + 8));
      List<CompletableFuture<Optional<VersionedValue>>> gets = part.stream().map(k -> c.async().get(k)).toList();
      for (int j = 0; j < part.size(); j++) {
        String k = part.get(j);
        VersionedValue v = gets.get(j).join().orElseThrow(() -> new AssertionError("acknowledged " + k + " was lost"));
        assertEquals(acked.get(k), v.version(), "version of " + k);
        assertArrayEquals(value(k), v.value(), "value of " + k);
      }
    }
    return keys.size();
  }

  /** Keeps up to maxInFlight puts of 1 MiB values outstanding and records each acknowledgement. */
  private static final class BigWriter extends Thread {
    private final ChoirClient client;
    private final Semaphore window;
    private final int maxInFlight;
    private final AtomicBoolean stop = new AtomicBoolean();
    final Map<String, Long> acked = new ConcurrentHashMap<>();
    final ConcurrentLinkedQueue<Long> ackTimes = new ConcurrentLinkedQueue<>();
    final AtomicInteger failed = new AtomicInteger();
    final Map<String, Integer> errorKinds = new ConcurrentHashMap<>();

    BigWriter(ChoirClient client, int maxInFlight) {
      super("big-writer");
      setDaemon(true);
      this.client = client;
      this.maxInFlight = maxInFlight;
      this.window = new Semaphore(maxInFlight);
    }

    @Override
    public void run() {
      for (int i = 0; !stop.get(); i++) {
        try {
          if (!window.tryAcquire(100, TimeUnit.MILLISECONDS)) {
            i--;
            continue;
          }
        } catch (InterruptedException e) {
          return;
        }
        String k = "big/" + i;
        client.async().put(k.getBytes(StandardCharsets.UTF_8), value(k)).whenComplete((version, e) -> {
          if (e == null) {
            acked.put(k, version);
            ackTimes.add(System.nanoTime());
          } else {
            failed.incrementAndGet();
            Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null
                ? e.getCause() : e;
            errorKinds.merge(cause.getClass().getSimpleName(), 1, Integer::sum);
          }
          window.release();
        });
      }
    }

    long firstAckAfter(long t) {
      long best = -1;
      for (long a : ackTimes) {
        if (a > t && (best < 0 || a < best)) {
          best = a;
        }
      }
      return best;
    }

    /** Stops sending and waits until every put in flight is answered. */
    void finish(Duration timeout) throws InterruptedException {
      stop.set(true);
      join();
      if (!window.tryAcquire(maxInFlight, timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        fail("puts still unanswered " + timeout + " after the writer stopped");
      }
    }
  }
}
