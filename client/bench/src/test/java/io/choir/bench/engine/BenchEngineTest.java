package io.choir.bench.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchEngineTest {
  private static final Duration TICK = Duration.ofMillis(100);

  private static BenchConfig config(int clients, long durationMs, long warmupMs, double writeRatio) {
    return new BenchConfig(clients, Duration.ofMillis(durationMs), Duration.ofMillis(warmupMs), 100, writeRatio,
        1000, 42, TICK);
  }

  @Test
  void closedLoopKeepsAtMostClientsInFlight() throws Exception {
    try (FakeDriver d = new FakeDriver(500, 0)) {
      BenchResult r = BenchEngine.run(d, config(8, 600, 0, 1.0), null);
      assertTrue(d.maxInFlight.get() <= 8, "driver saw " + d.maxInFlight.get() + " in flight");
      assertTrue(r.maxInFlight() <= 8, "engine counted " + r.maxInFlight());
      assertTrue(r.maxInFlight() >= 1);
      assertTrue(r.ops() > 0);
      assertEquals(0, r.errorCount());
    }
  }

  @Test
  void aRatePacesTheClientsAndTimesFromTheSchedule() throws Exception {
    try (FakeDriver d = new FakeDriver(0, 0)) {
      // An instant driver: closed loop issues tens of thousands a second; paced, about rate x duration.
      BenchResult r = BenchEngine.run(d, config(8, 1000, 0, 1.0).withRate(500), null);
      long issued = r.issuedWrites();
      assertTrue(issued >= 400 && issued <= 520, "issued " + issued + " at 500 ops/s for 1 s");
    }
    try (FakeDriver d = new FakeDriver(20_000, 0)) {
      // One client and a 20 ms driver cannot keep 200 ops/s: each operation waits behind the one before,
      // and its latency counts from its scheduled time, so the measured latencies grow past the driver's.
      BenchResult r = BenchEngine.run(d, config(1, 600, 0, 1.0).withRate(200), null);
      assertTrue(r.histogram().getValueAtPercentile(99) > 100_000,
          "p99 " + r.histogram().getValueAtPercentile(99) + " µs hides the backlog");
    }
  }

  @Test
  void oneClientIsStrictlySequential() throws Exception {
    try (FakeDriver d = new FakeDriver(200, 0)) {
      BenchEngine.run(d, config(1, 300, 0, 0.5), null);
      assertEquals(1, d.maxInFlight.get());
    }
  }

  @Test
  void writeRatioIsRespected() throws Exception {
    try (FakeDriver d = new FakeDriver(0, 0)) {
      BenchResult r = BenchEngine.run(d, config(4, 500, 0, 0.25), null);
      assertEquals(r.ops(), r.writes() + r.reads(), "measured writes and reads add up");
      long total = r.issuedWrites() + r.issuedReads();
      assertTrue(total > 1000, "too few operations to judge: " + total);
      double share = (double) r.issuedWrites() / total;
      assertTrue(Math.abs(share - 0.25) < 0.05, "write share " + share);
      assertEquals(d.writes.get(), r.issuedWrites());
      assertEquals(d.reads.get(), r.issuedReads());
    }
    try (FakeDriver d = new FakeDriver(0, 0)) {
      BenchEngine.run(d, config(4, 200, 0, 1.0), null);
      assertEquals(0, d.reads.get());
      assertTrue(d.writes.get() > 0);
    }
    try (FakeDriver d = new FakeDriver(0, 0)) {
      BenchEngine.run(d, config(4, 200, 0, 0.0), null);
      assertEquals(0, d.writes.get());
      assertTrue(d.reads.get() > 0);
    }
  }

  @Test
  void warmupIsExcluded() throws Exception {
    // The first 50 operations fail, long before the 500 ms warmup ends: they must not count.
    List<BenchEngine.Tick> ticks = new ArrayList<>();
    try (FakeDriver d = new FakeDriver(100, 50)) {
      BenchResult r = BenchEngine.run(d, config(4, 500, 500, 1.0), t -> {
        synchronized (ticks) {
          ticks.add(t);
        }
      });
      assertEquals(0, r.errorCount(), "measured errors " + r.errors());
      assertEquals(50L, r.warmupErrors().get("IllegalStateException"));
      long warmupOps = 0;
      long measuredOps = 0;
      for (BenchEngine.Tick t : ticks) {
        if (t.warmup()) {
          warmupOps += t.histogram().getTotalCount();
        } else {
          measuredOps += t.histogram().getTotalCount();
        }
      }
      assertTrue(warmupOps > 0, "warmup completed nothing");
      assertEquals(measuredOps, r.ops(), "result counts exactly the measured ticks");
      assertTrue(d.calls.get() > r.ops() + 50, "the driver did more than was measured");
      assertEquals(5, r.series().size(), "one point per measured tick");
      assertTrue(ticks.stream().filter(BenchEngine.Tick::warmup).count() == 5);
      assertTrue(r.seconds() > 0.3 && r.seconds() < 5, "measured " + r.seconds() + " s");
    }
  }

  @Test
  void errorsAreCountedByTypeAndNotAsLatencies() throws Exception {
    BenchDriver failing = new BenchDriver() {
      @Override
      public CompletableFuture<?> write(byte[] key, byte[] value) {
        return CompletableFuture.supplyAsync(() -> {
          throw new UnsupportedOperationException("no");
        });
      }

      @Override
      public CompletableFuture<?> read(byte[] key) {
        throw new IllegalArgumentException("thrown, not returned");
      }

      @Override
      public String name() {
        return "failing";
      }

      @Override
      public void close() {}
    };
    BenchResult r = BenchEngine.run(failing, config(2, 300, 0, 0.5), null);
    assertEquals(0, r.ops());
    assertEquals(0, r.histogram().getTotalCount());
    assertTrue(r.errors().get("UnsupportedOperationException") > 0, String.valueOf(r.errors()));
    assertTrue(r.errors().get("IllegalArgumentException") > 0, String.valueOf(r.errors()));
    assertEquals(0.0, r.percentileMs(99));
  }

  @Test
  void latenciesComeFromTheHistogram() throws Exception {
    try (FakeDriver d = new FakeDriver(5_000, 0)) {
      BenchResult r = BenchEngine.run(d, config(4, 500, 0, 1.0), null);
      assertTrue(r.ops() > 0);
      // Every operation takes at least the driver's 5 ms.
      assertTrue(r.histogram().getMinValue() >= 5_000, "min " + r.histogram().getMinValue() + " us");
      assertTrue(r.percentileMs(50) >= 5.0);
      assertEquals(BenchResult.ms(r.histogram().getValueAtPercentile(50)), r.percentileMs(50));
      assertEquals(BenchResult.ms(r.histogram().getValueAtPercentile(99.9)), r.percentileMs(99.9));
      assertEquals(BenchResult.ms(r.histogram().getMaxValue()), r.maxMs());
      long sum = r.series().stream().mapToLong(BenchResult.Point::ops).sum();
      assertEquals(r.ops(), sum, "the series adds up to the total");
    }
  }

  @Test
  void resultJsonHasTheFieldsAndReportFilesAreWritten(@TempDir Path dir) throws Exception {
    BenchResult r;
    try (FakeDriver d = new FakeDriver(1_000, 0)) {
      r = BenchEngine.run(d, config(4, 400, 100, 0.5), null);
    }
    List<Path> files = BenchReport.write(r, dir);
    assertTrue(files.contains(dir.resolve("result.json")));
    assertTrue(files.contains(dir.resolve("index.html")));
    JsonNode j = new ObjectMapper().readTree(dir.resolve("result.json").toFile());
    for (String f : new String[] {"target", "started_at", "config", "seconds", "ops", "writes", "reads",
        "throughput_ops_per_sec", "latency_ms", "errors", "series", "machine"}) {
      assertTrue(j.has(f), "result.json lacks " + f);
    }
    for (String f : new String[] {"clients", "duration_s", "warmup_s", "value_size", "write_ratio", "keys", "seed"}) {
      assertTrue(j.get("config").has(f), "config lacks " + f);
    }
    for (String f : new String[] {"p50", "p90", "p99", "p999", "max"}) {
      assertTrue(j.get("latency_ms").has(f), "latency_ms lacks " + f);
    }
    assertEquals("fake", j.get("target").asText());
    assertEquals(42, j.get("config").get("seed").asLong());
    assertEquals(r.ops(), j.get("ops").asLong());
    assertEquals(r.percentileMs(99), j.get("latency_ms").get("p99").asDouble());
    assertEquals(4, j.get("series").size());
    JsonNode p = j.get("series").get(0);
    for (String f : new String[] {"t", "ops", "ops_per_sec", "p50_ms", "p99_ms", "p999_ms", "errors"}) {
      assertTrue(p.has(f), "series point lacks " + f);
    }
    if (files.contains(dir.resolve("latency.png"))) {
      byte[] png = Files.readAllBytes(dir.resolve("latency.png"));
      assertEquals((byte) 0x89, png[0]);
      assertEquals('P', png[1]);
      assertTrue(Files.size(dir.resolve("throughput.png")) > 0);
    }
    String html = Files.readString(dir.resolve("index.html"));
    assertTrue(html.contains("latency.png") && html.contains("throughput.png"));
  }

  @Test
  void runnerPrintsSummaryAndJson(@TempDir Path dir) {
    BenchOptions o = new BenchOptions();
    o.clients = 2;
    o.duration = 1;
    o.warmup = 0;
    o.valueSize = 10;
    o.writeRatio = 1.0;
    o.keys = 10;
    o.seed = 7L;
    o.out = dir;
    o.json = true;
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = BenchRunner.run(o, new FakeDriver(100, 0), new PrintWriter(out), new PrintWriter(err));
    assertEquals(0, code, err.toString());
    assertTrue(out.toString().contains("\"throughput_ops_per_sec\""), out.toString());
    assertTrue(err.toString().contains("seed 7"), err.toString());
    assertTrue(err.toString().contains("ops/s"), "progress line: " + err);
    assertTrue(Files.exists(dir.resolve("result.json")));
  }

  @Test
  void tickOptionSetsTheIntervalOfEveryPointAndProgressLine(@TempDir Path dir) {
    BenchOptions o = new BenchOptions();
    new picocli.CommandLine(o).parseArgs("--clients", "2", "--duration", "4", "--warmup", "0", "--value-size", "10",
        "--keys", "10", "--seed", "7", "--tick", "2", "--out", dir.toString(), "--no-progress");
    assertEquals(java.time.Duration.ofSeconds(2), o.config().tick());
    BenchOptions defaults = new BenchOptions();
    new picocli.CommandLine(defaults).parseArgs();
    assertEquals(java.time.Duration.ofSeconds(1), defaults.config().tick(), "default: one second");
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    assertEquals(0, BenchRunner.run(o, new FakeDriver(100, 0), new PrintWriter(out), new PrintWriter(err)),
        err.toString());
    // 4 s measured in 2 s ticks: two points of the series, each about 2 s after the one before
    com.fasterxml.jackson.databind.JsonNode series;
    try {
      series = BenchReport.JSON.readTree(dir.resolve("result.json").toFile()).get("series");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    assertEquals(2, series.size(), series.toString());
    assertEquals(2.0, series.get(0).get("t").asDouble(), 0.5, series.toString());
    assertEquals(4.0, series.get(1).get("t").asDouble(), 0.5, series.toString());
  }

  @Test
  void keysAndValueAreDeterministic() {
    byte[][] k = BenchEngine.keys(1000);
    assertEquals("bench/000", new String(k[0]));
    assertEquals("bench/999", new String(k[999]));
    assertEquals(new String(BenchEngine.value(100, 1)), new String(BenchEngine.value(100, 1)));
    assertEquals(100, BenchEngine.value(100, 1).length);
  }

  @Test
  void badConfigIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> config(0, 100, 0, 1.0));
    assertThrows(IllegalArgumentException.class, () -> config(1, 100, 0, 1.5));
    assertThrows(IllegalArgumentException.class, () -> config(1, 0, 0, 1.0));
  }
  /**
   * The workers choose their keys independently: n writes over K keys touch about K(1 - e^(-n/K)) of
   * them. Before, every worker drew the same random stream shifted by one, so 64 workers wrote about
   * n / 64 + 64 distinct keys.
   */
  @Test
  void workersChooseTheirKeysIndependently() throws Exception {
    int keys = 100_000;
    try (FakeDriver d = new FakeDriver(0, 0)) {
      BenchEngine.run(d, new BenchConfig(64, Duration.ofMillis(300), Duration.ZERO, 100, 1.0, keys, 42, TICK), null);
      long n = d.writes.get();
      double expected = keys * (1 - Math.exp(-(double) n / keys));
      assertTrue(n >= 1000, "set-up: " + n + " writes");
      assertTrue(d.data.size() >= 0.9 * expected,
          d.data.size() + " distinct keys in " + n + " writes; independent choices give about " + (long) expected);
    }
    List<java.util.SplittableRandom> r = BenchEngine.workerRandoms(42, 2);
    List<Integer> first = new ArrayList<>();
    List<Integer> second = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      first.add(r.get(0).nextInt(keys));
      second.add(r.get(1).nextInt(keys));
    }
    assertTrue(!first.subList(1, 20).equals(second.subList(0, 19)), "worker 2 repeats worker 1 one draw later");
    assertEquals(first, BenchEngine.workerRandoms(42, 2).get(0).ints(20, 0, keys).boxed().toList(), "seeded");
  }
}
