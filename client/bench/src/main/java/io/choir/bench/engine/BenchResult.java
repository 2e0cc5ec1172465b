package io.choir.bench.engine;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.HdrHistogram.Histogram;

/**
 * BenchResult is what a run measured (warmup excluded): the total latency histogram (microseconds),
 * operation and error counts and the per-tick series. Every latency figure is read from a histogram.
 */
public final class BenchResult {
  /** Percentiles reported everywhere, with their JSON names. */
  static final double[] PERCENTILES = {50, 90, 99, 99.9};
  static final String[] PERCENTILE_NAMES = {"p50", "p90", "p99", "p999"};

  /** One point of the time series: the end of an interval (seconds since measurement began) and its figures. */
  public record Point(double t, long ops, double opsPerSecond, double p50Ms, double p90Ms, double p99Ms,
      double p999Ms, double maxMs, long errors) {
    static Point of(double t, double intervalSeconds, Histogram h, long errors) {
      boolean empty = h.getTotalCount() == 0;
      return new Point(round(t, 3), h.getTotalCount(),
          intervalSeconds <= 0 ? 0 : round(h.getTotalCount() / intervalSeconds, 1),
          empty ? 0 : ms(h.getValueAtPercentile(50)), empty ? 0 : ms(h.getValueAtPercentile(90)),
          empty ? 0 : ms(h.getValueAtPercentile(99)), empty ? 0 : ms(h.getValueAtPercentile(99.9)),
          empty ? 0 : ms(h.getMaxValue()), errors);
    }

    Map<String, Object> toMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("t", t);
      m.put("ops", ops);
      m.put("ops_per_sec", opsPerSecond);
      m.put("p50_ms", p50Ms);
      m.put("p90_ms", p90Ms);
      m.put("p99_ms", p99Ms);
      m.put("p999_ms", p999Ms);
      m.put("max_ms", maxMs);
      m.put("errors", errors);
      return m;
    }
  }

  private final String target;
  private final Map<String, Object> targetInfo;
  private final BenchConfig config;
  private final Instant startedAt;
  private final double seconds;
  private final Histogram histogram;
  private final long writes;
  private final long reads;
  private final Map<String, Long> errors;
  private final Map<String, Long> warmupErrors;
  private final List<Point> series;
  private final int maxInFlight;
  private final int abandoned;
  private final long issuedWrites;
  private final long issuedReads;
  private final double clientCpuSeconds;
  private final double loadAverage;

  BenchResult(String target, Map<String, Object> targetInfo, BenchConfig config, Instant startedAt,
      double seconds, Histogram histogram, long writes, long reads, Map<String, Long> errors,
      Map<String, Long> warmupErrors, List<Point> series, int maxInFlight, int abandoned,
      long issuedWrites, long issuedReads, double clientCpuSeconds, double loadAverage) {
    this.target = target;
    this.targetInfo = targetInfo;
    this.config = config;
    this.startedAt = startedAt;
    this.seconds = seconds;
    this.histogram = histogram;
    this.writes = writes;
    this.reads = reads;
    this.errors = errors;
    this.warmupErrors = warmupErrors;
    this.series = List.copyOf(series);
    this.maxInFlight = maxInFlight;
    this.abandoned = abandoned;
    this.issuedWrites = issuedWrites;
    this.issuedReads = issuedReads;
    this.clientCpuSeconds = clientCpuSeconds;
    this.loadAverage = loadAverage;
  }

  static double ms(long micros) {
    return round(micros / 1000.0, 3);
  }

  static double round(double v, int digits) {
    double f = Math.pow(10, digits);
    return Math.round(v * f) / f;
  }

  public String target() {
    return target;
  }

  public BenchConfig config() {
    return config;
  }

  /** The measured latencies in microseconds (successful operations only, warmup excluded). */
  public Histogram histogram() {
    return histogram;
  }

  /** Successful operations measured. */
  public long ops() {
    return histogram.getTotalCount();
  }

  public long writes() {
    return writes;
  }

  public long reads() {
    return reads;
  }

  /** Operations issued over the whole run (warmup included), writes and reads. */
  public long issuedWrites() {
    return issuedWrites;
  }

  public long issuedReads() {
    return issuedReads;
  }

  /** Length of the measurement in seconds. */
  public double seconds() {
    return seconds;
  }

  /** Successful operations per second of measurement. */
  public double throughput() {
    return seconds <= 0 ? 0 : ops() / seconds;
  }

  /** The latency at percentile p (0..100) in milliseconds, read from the histogram. */
  public double percentileMs(double p) {
    return ops() == 0 ? 0 : ms(histogram.getValueAtPercentile(p));
  }

  public double maxMs() {
    return ops() == 0 ? 0 : ms(histogram.getMaxValue());
  }

  public double meanMs() {
    return ops() == 0 ? 0 : round(histogram.getMean() / 1000.0, 3);
  }

  /** Errors during the measurement, by exception type. */
  public Map<String, Long> errors() {
    return errors;
  }

  public long errorCount() {
    return errors.values().stream().mapToLong(Long::longValue).sum();
  }

  /** Errors during the warmup, by exception type (not part of the result). */
  public Map<String, Long> warmupErrors() {
    return warmupErrors;
  }

  public List<Point> series() {
    return series;
  }

  /** Most operations ever in flight at once; never more than the clients in a closed loop. */
  public int maxInFlight() {
    return maxInFlight;
  }

  /** The result as the JSON tree of result.json. */
  public Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("target", target);
    m.put("target_info", targetInfo);
    m.put("started_at", startedAt.toString());
    m.put("config", config.toMap());
    Map<String, Object> machine = new LinkedHashMap<>();
    machine.put("cpus", Runtime.getRuntime().availableProcessors());
    machine.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
    machine.put("java", System.getProperty("java.version"));
    machine.put("load_average_at_end", round(loadAverage, 2));
    m.put("machine", machine);
    m.put("seconds", round(seconds, 3));
    m.put("ops", ops());
    m.put("writes", writes);
    m.put("reads", reads);
    m.put("throughput_ops_per_sec", round(throughput(), 1));
    Map<String, Object> lat = new LinkedHashMap<>();
    for (int i = 0; i < PERCENTILES.length; i++) {
      lat.put(PERCENTILE_NAMES[i], percentileMs(PERCENTILES[i]));
    }
    lat.put("max", maxMs());
    lat.put("mean", meanMs());
    m.put("latency_ms", lat);
    Map<String, Object> err = new LinkedHashMap<>();
    err.put("total", errorCount());
    err.put("by_type", errors);
    err.put("warmup_by_type", warmupErrors);
    m.put("errors", err);
    m.put("client_cpu_seconds", round(clientCpuSeconds, 2));
    m.put("max_in_flight", maxInFlight);
    m.put("abandoned_in_flight", abandoned);
    List<Map<String, Object>> s = new ArrayList<>();
    for (Point p : series) {
      s.add(p.toMap());
    }
    m.put("series", s);
    return m;
  }

  /** A few human lines: workload, throughput, percentiles, errors. */
  public String summary() {
    StringBuilder b = new StringBuilder();
    b.append(String.format(Locale.ROOT, "%s: %d clients, %d-byte values, write ratio %.2f, %d keys, seed %d, %.1f s measured (%.1f s warmup)%n",
        target, config.clients(), config.valueSize(), config.writeRatio(), config.keys(), config.seed(),
        seconds, config.warmup().toMillis() / 1000.0));
    b.append(String.format(Locale.ROOT, "  throughput  %,.0f ops/s  (%,d ops: %,d writes, %,d reads)%n",
        throughput(), ops(), writes, reads));
    b.append(String.format(Locale.ROOT, "  latency ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f%n",
        percentileMs(50), percentileMs(90), percentileMs(99), percentileMs(99.9), maxMs(), meanMs()));
    if (clientCpuSeconds >= 0 && seconds > 0) {
      b.append(String.format(Locale.ROOT, "  client cpu  %.1f s (%.2f cores), load average %.2f%n",
          clientCpuSeconds, clientCpuSeconds / seconds, loadAverage));
    }
    b.append(String.format(Locale.ROOT, "  errors      %d%s%n", errorCount(), errors.isEmpty() ? "" : " " + errors));
    return b.toString();
  }
}
