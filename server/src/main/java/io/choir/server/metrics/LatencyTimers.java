package io.choir.server.metrics;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;

/**
 * LatencyTimers builds the replica's latency timers the one way docs/metrics.md describes: a Prometheus
 * histogram (publishPercentileHistogram) clamped to 50 µs .. 10 s, so each timer exposes a few dozen
 * buckets rather than hundreds, plus service-level buckets at 1, 5, 10, 50, 100 and 500 ms and 1 s that
 * dashboards and alerts can name exactly. No client-side percentiles: recording a sample is a binary
 * search and an atomic increment, no allocation.
 */
public final class LatencyTimers {
  static final Duration MIN = Duration.ofNanos(50_000);
  static final Duration MAX = Duration.ofSeconds(10);
  private static final Duration[] SLOS = {
      Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(50),
      Duration.ofMillis(100), Duration.ofMillis(500), Duration.ofSeconds(1)};

  private LatencyTimers() {
  }

  /** The timer name (a Micrometer name: choir.log.fsync becomes choir_log_fsync_seconds) with tags. */
  public static Timer timer(MeterRegistry registry, String name, String description, Tags tags) {
    return Timer.builder(name)
        .description(description)
        .tags(tags)
        .publishPercentileHistogram()
        .minimumExpectedValue(MIN)
        .maximumExpectedValue(MAX)
        .serviceLevelObjectives(SLOS)
        .register(registry);
  }

  public static Timer timer(MeterRegistry registry, String name, String description) {
    return timer(registry, name, description, Tags.empty());
  }
}
