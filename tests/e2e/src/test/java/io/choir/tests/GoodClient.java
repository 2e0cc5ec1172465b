package io.choir.tests;

import io.choir.client.ChoirClient;
import io.choir.client.VersionedValue;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * GoodClient is the well-behaved client of the attack tests: on its own thread, with the real client
 * library, it puts a small value and reads it back, one operation at a time, and records each
 * operation's latency (HdrHistogram, microseconds) and each failure, until stopped. A GET that does not
 * return what was put last is a failure too.
 */
final class GoodClient implements AutoCloseable {
  private static final long MAX_RECORDED_US = TimeUnit.MINUTES.toMicros(5);

  private final ChoirClient client;
  private final String prefix;
  private final Histogram gets = new Histogram(MAX_RECORDED_US, 3);
  private final Histogram puts = new Histogram(MAX_RECORDED_US, 3);
  private final List<String> failures = Collections.synchronizedList(new ArrayList<>());
  /** Operations slower than {@link #SLOW_NS}: which, when (ms after start) and how long, for diagnosis. */
  private final List<String> slow = Collections.synchronizedList(new ArrayList<>());
  private static final long SLOW_NS = TimeUnit.MILLISECONDS.toNanos(200);
  private final long startNs = System.nanoTime();
  private final Thread thread;
  private volatile boolean running = true;

  GoodClient(ChoirClient client, String prefix) {
    this.client = client;
    this.prefix = prefix;
    this.thread = new Thread(this::run, "good-client");
    this.thread.setDaemon(true);
    this.thread.start();
  }

  private void run() {
    byte[] value = new byte[100];
    for (long i = 0; running; i++) {
      String key = prefix + (i % 64);
      Arrays.fill(value, (byte) i);
      try {
        long t0 = System.nanoTime();
        client.put(key.getBytes(StandardCharsets.UTF_8), value);
        long t1 = System.nanoTime();
        Optional<VersionedValue> got = client.get(key);
        long t2 = System.nanoTime();
        record(puts, t1 - t0);
        record(gets, t2 - t1);
        noteSlow("PUT", t0, t1);
        noteSlow("GET", t1, t2);
        if (got.isEmpty() || !Arrays.equals(got.get().value(), value)) {
          failures.add("GET " + key + " did not return the value just put");
        }
      } catch (RuntimeException e) {
        failures.add(e.toString());
      }
    }
  }

  private void noteSlow(String op, long fromNs, long toNs) {
    if (toNs - fromNs >= SLOW_NS && slow.size() < 20) {
      slow.add(op + " at " + TimeUnit.NANOSECONDS.toMillis(fromNs - startNs) + " ms ("
          + Instant.now().minusNanos(System.nanoTime() - fromNs) + ") took "
          + TimeUnit.NANOSECONDS.toMillis(toNs - fromNs) + " ms");
    }
  }

  /** The first operations slower than 200 ms (at most 20). */
  List<String> slow() {
    return List.copyOf(slow);
  }

  private static synchronized void record(Histogram h, long ns) {
    h.recordValue(Math.min(MAX_RECORDED_US, Math.max(0, TimeUnit.NANOSECONDS.toMicros(ns))));
  }

  /** Stops after the operation under way and waits for it (at most the client's request timeout). */
  @Override
  public void close() throws InterruptedException {
    running = false;
    thread.join(TimeUnit.SECONDS.toMillis(60));
  }

  List<String> failures() {
    return List.copyOf(failures);
  }

  long gets() {
    synchronized (GoodClient.class) {
      return gets.getTotalCount();
    }
  }

  /** "GET n=... p50=...ms p99=...ms max=...ms; PUT ...". */
  String summary() {
    synchronized (GoodClient.class) {
      return "GET " + line(gets) + "; PUT " + line(puts);
    }
  }

  private static String line(Histogram h) {
    return String.format(Locale.ROOT, "n=%d p50=%.2fms p99=%.2fms max=%.2fms", h.getTotalCount(),
        h.getValueAtPercentile(50) / 1000.0, h.getValueAtPercentile(99) / 1000.0, h.getMaxValue() / 1000.0);
  }
}
