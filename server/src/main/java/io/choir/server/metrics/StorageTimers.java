package io.choir.server.metrics;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.composite.CompositeMeterRegistry;
import java.util.concurrent.TimeUnit;

/**
 * StorageTimers times the storage lanes' units of work, one sample per unit (a unit is one group of
 * entries: group commit makes it many writes): choir.log.write (one log append), choir.log.fsync (one
 * WAL fsync), choir.apply (one group of committed entries applied, replies and checksum included).
 * Thread-safe.
 */
public final class StorageTimers {
  private final Timer logWrite;
  private final Timer fsync;
  private final Timer apply;

  private StorageTimers(MeterRegistry registry) {
    this.logWrite = LatencyTimers.timer(registry, "choir.log.write", "One log append (a group of entries), unsynced");
    this.fsync = LatencyTimers.timer(registry, "choir.log.fsync", "One fsync of the write-ahead log");
    this.apply = LatencyTimers.timer(registry, "choir.apply", "Applying one group of committed entries");
  }

  /** Timers registered in registry. */
  public static StorageTimers of(MeterRegistry registry) {
    return new StorageTimers(registry);
  }

  /** Timers that record nothing (tests that build a storage stage alone). */
  public static StorageTimers none() {
    return new StorageTimers(new CompositeMeterRegistry());
  }

  public void logWrite(long nanos) {
    logWrite.record(nanos, TimeUnit.NANOSECONDS);
  }

  public void fsync(long nanos) {
    fsync.record(nanos, TimeUnit.NANOSECONDS);
  }

  public void apply(long nanos) {
    apply.record(nanos, TimeUnit.NANOSECONDS);
  }
}
