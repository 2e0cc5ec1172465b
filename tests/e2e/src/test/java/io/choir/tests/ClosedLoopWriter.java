package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.KeyValueVersion;
import io.choir.client.ScanResult;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * ClosedLoopWriter writes one new key at a time (the next request leaves when the previous one is
 * answered) and records every acknowledged write with the version it got and when (System.nanoTime) it
 * was acknowledged. A failed write is not acknowledged: its outcome may be unknown, so it is neither
 * expected nor forbidden afterwards; its key is never written again.
 */
final class ClosedLoopWriter extends Thread {
  private final ChoirClient client;
  private final String prefix;
  private final AtomicBoolean stop = new AtomicBoolean();
  /** key -> version of every acknowledged write. */
  final Map<String, Long> acked = new ConcurrentHashMap<>();
  private final long[] ackTimes;
  private final AtomicInteger ackCount = new AtomicInteger();
  final AtomicInteger errors = new AtomicInteger();
  final AtomicLong lastAckNs = new AtomicLong();
  private final Map<String, Integer> errorKinds = new ConcurrentHashMap<>();
  /** Guards held and idle: a held writer sends nothing new (see hold). */
  private final Object gate = new Object();
  private boolean held;
  private boolean idle;

  /** Writes keys prefix0, prefix1, ... with client until stopped; remembers up to maxAcks ack times. */
  ClosedLoopWriter(ChoirClient client, String prefix, int maxAcks) {
    super("writer-" + prefix);
    setDaemon(true);
    this.client = client;
    this.prefix = prefix;
    this.ackTimes = new long[maxAcks];
  }

  static String value(String key) {
    return "value-of-" + key;
  }

  @Override
  public void run() {
    for (long i = 0; !stop.get(); i++) {
      if (!awaitGate()) {
        return;
      }
      String k = prefix + i;
      try {
        long version = client.put(k, value(k));
        long now = System.nanoTime();
        acked.put(k, version);
        int n = ackCount.get();
        if (n < ackTimes.length) {
          ackTimes[n] = now; // one writer thread; published to readers by the volatile set below
        }
        ackCount.set(n + 1);
        lastAckNs.set(now);
      } catch (ChoirException e) {
        errors.incrementAndGet();
        errorKinds.merge(e.getClass().getSimpleName(), 1, Integer::sum);
      }
    }
  }

  /** Blocks while the writer is held; false when it was stopped meanwhile. */
  private boolean awaitGate() {
    synchronized (gate) {
      while (held && !stop.get()) {
        idle = true;
        gate.notifyAll();
        try {
          gate.wait();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
      idle = false;
      return !stop.get();
    }
  }

  /**
   * Stops sending new requests and waits (up to timeout) until the one in flight is answered, so the
   * cluster can settle; false if it is still waiting for an answer at the deadline.
   */
  boolean hold(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (gate) {
      held = true;
      while (!idle && isAlive()) {
        long leftMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (leftMs <= 0) {
          return false;
        }
        gate.wait(leftMs);
      }
      return true;
    }
  }

  /** Lets a held writer go on. */
  void release() {
    synchronized (gate) {
      held = false;
      idle = false;
      gate.notifyAll();
    }
  }

  int acks() {
    return ackCount.get();
  }

  /** Stops the writer after its current request and waits for it. */
  void finish() throws InterruptedException {
    stop.set(true);
    synchronized (gate) {
      gate.notifyAll();
    }
    join();
  }

  /** The first acknowledgement strictly after t (System.nanoTime), or -1. */
  long firstAckAfter(long t) {
    int n = Math.min(ackCount.get(), ackTimes.length);
    for (int i = 0; i < n; i++) {
      if (ackTimes[i] > t) {
        return ackTimes[i];
      }
    }
    return -1;
  }

  /**
   * The longest time between two consecutive acknowledgements within [fromNs, toNs] (System.nanoTime),
   * the interval's ends counted as acknowledgements; 0 when it is empty.
   */
  long longestGapNs(long fromNs, long toNs) {
    int n = Math.min(ackCount.get(), ackTimes.length);
    long previous = fromNs;
    long longest = 0;
    for (int i = 0; i < n; i++) {
      long t = ackTimes[i];
      if (t > fromNs && t <= toNs) {
        longest = Math.max(longest, t - previous);
        previous = t;
      }
    }
    return Math.max(longest, toNs - previous);
  }

  /** Error kinds seen (exception class -> count). */
  Map<String, Integer> errorKinds() {
    return new HashMap<>(errorKinds);
  }

  /** The earliest acknowledgement after t among writers, or -1 if none has one. */
  static long firstAckAfter(List<ClosedLoopWriter> writers, long t) {
    long best = -1;
    for (ClosedLoopWriter w : writers) {
      long a = w.firstAckAfter(t);
      if (a > 0 && (best < 0 || a < best)) {
        best = a;
      }
    }
    return best;
  }

  /**
   * Reads back every key under prefix (linearizable scans, page by page) and checks that each write of
   * acked is there with its value and the version it was acknowledged with; returns how many it checked.
   */
  static int assertAllPresent(ChoirClient c, String prefix, Map<String, Long> acked) {
    Map<String, KeyValueVersion> found = new HashMap<>();
    byte[] start = prefix.getBytes(StandardCharsets.UTF_8);
    byte[] end = Arrays.copyOf(start, start.length);
    end[end.length - 1]++; // the first key after every key that starts with prefix
    while (true) {
      ScanResult page = c.scan(start, end, 5000);
      for (KeyValueVersion kv : page.entries()) {
        found.put(kv.keyAsString(), kv);
      }
      if (!page.more() || page.entries().isEmpty()) {
        break;
      }
      byte[] last = page.entries().get(page.entries().size() - 1).key();
      start = Arrays.copyOf(last, last.length + 1); // the next key after last
    }
    List<String> lost = new ArrayList<>();
    for (Map.Entry<String, Long> e : acked.entrySet()) {
      KeyValueVersion kv = found.get(e.getKey());
      if (kv == null) {
        lost.add(e.getKey());
      } else {
        assertEquals(value(e.getKey()), kv.valueAsString(), "value of acknowledged " + e.getKey());
        assertEquals(e.getValue(), kv.version(), "version of acknowledged " + e.getKey());
      }
    }
    assertEquals(List.of(), lost.subList(0, Math.min(20, lost.size())),
        lost.size() + " acknowledged writes lost (first 20 shown)");
    return acked.size();
  }
}
