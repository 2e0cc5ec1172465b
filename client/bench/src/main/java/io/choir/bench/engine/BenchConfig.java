package io.choir.bench.engine;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * BenchConfig is the workload: how many closed-loop clients, how long (after a warmup that is not
 * measured), value size, share of writes, key space and random seed. The tick is the length of one
 * point of the time series (one second except in tests). A positive rate paces the clients to that many
 * operations per second in all (an open-loop schedule, still at most {@code clients} in flight; each
 * latency counts from the operation's scheduled time, so a stall is not hidden); 0: closed loop.
 */
public record BenchConfig(
    int clients,
    Duration duration,
    Duration warmup,
    int valueSize,
    double writeRatio,
    int keys,
    long seed,
    Duration tick,
    double rate) {

  public BenchConfig {
    if (clients < 1) {
      throw new IllegalArgumentException("clients must be at least 1, got " + clients);
    }
    if (duration.isNegative() || duration.isZero()) {
      throw new IllegalArgumentException("duration must be positive, got " + duration);
    }
    if (warmup.isNegative()) {
      throw new IllegalArgumentException("warmup must not be negative, got " + warmup);
    }
    if (valueSize < 0) {
      throw new IllegalArgumentException("value size must not be negative, got " + valueSize);
    }
    if (!(writeRatio >= 0.0 && writeRatio <= 1.0)) {
      throw new IllegalArgumentException("write ratio must be within 0..1, got " + writeRatio);
    }
    if (keys < 1) {
      throw new IllegalArgumentException("keys must be at least 1, got " + keys);
    }
    if (tick.isNegative() || tick.isZero()) {
      throw new IllegalArgumentException("tick must be positive, got " + tick);
    }
    if (!(rate >= 0.0 && rate <= 1e7)) {
      throw new IllegalArgumentException("rate must be within 0..10,000,000 ops/s, got " + rate);
    }
  }

  /** A closed-loop config (no rate). */
  public BenchConfig(int clients, Duration duration, Duration warmup, int valueSize, double writeRatio, int keys,
      long seed, Duration tick) {
    this(clients, duration, warmup, valueSize, writeRatio, keys, seed, tick, 0);
  }

  /** This config paced to rate operations per second in all (0: closed loop). */
  public BenchConfig withRate(double rate) {
    return new BenchConfig(clients, duration, warmup, valueSize, writeRatio, keys, seed, tick, rate);
  }

  /** A config with one-second ticks. */
  public static BenchConfig of(int clients, Duration duration, Duration warmup, int valueSize,
      double writeRatio, int keys, long seed) {
    return new BenchConfig(clients, duration, warmup, valueSize, writeRatio, keys, seed, Duration.ofSeconds(1));
  }

  Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("clients", clients);
    m.put("duration_s", duration.toMillis() / 1000.0);
    m.put("warmup_s", warmup.toMillis() / 1000.0);
    m.put("value_size", valueSize);
    m.put("write_ratio", writeRatio);
    m.put("keys", keys);
    m.put("seed", seed);
    m.put("tick_s", tick.toMillis() / 1000.0);
    m.put("rate", rate);
    return m;
  }
}
