package io.choir.server.metrics;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * ReplicaMetrics is one replica's metrics: the Prometheus registry every part of the replica counts
 * into (common tags cluster and replica), the latency timers ({@link ClientLatency}, {@link
 * LoopMetrics}, {@link StorageTimers}), the status as meters ({@link StatusMeters}) and, when
 * metrics_address is set, the HTTP endpoint ({@link MetricsHttpServer}). The status is taken on the
 * replica loop's thread ({@link Probe}) when /metrics or /ready is asked, at most one at a time, waited
 * for at most {@link #SNAPSHOT_TIMEOUT_MS}: a loop that does not answer makes /ready answer 503 and
 * /metrics serve the last snapshot (choir_snapshot_age_seconds says how old).
 */
public final class ReplicaMetrics implements AutoCloseable {
  /** How long an HTTP request waits for the replica loop's snapshot. */
  static final long SNAPSHOT_TIMEOUT_MS = 1000;

  /** What the metrics ask of the replica. */
  public interface Probe {
    /** A snapshot taken on the replica loop's thread (completes there). */
    CompletableFuture<ReplicaSnapshot> snapshot();

    /** Why the replica refuses every request (shutting down, a fatal error), or null while it serves. */
    String refusing();
  }

  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final long lagToleranceOps;
  private final long primarySilenceNs;
  private final ClientLatency clientLatency;
  private final LoopMetrics loop;
  private final StorageTimers storage;
  private final StatusMeters status;
  private Probe probe;
  private CompletableFuture<ReplicaSnapshot> pending;
  private MetricsHttpServer http;

  /**
   * The metrics of replica replicaId of cluster; a replica is ready within lagToleranceOps of what it
   * knows and, as a backup, having heard its primary within primarySilenceNs.
   */
  public ReplicaMetrics(String cluster, int replicaId, long lagToleranceOps, long primarySilenceNs) {
    registry.config().commonTags("cluster", cluster, "replica", Integer.toString(replicaId));
    this.lagToleranceOps = lagToleranceOps;
    this.primarySilenceNs = primarySilenceNs;
    this.clientLatency = new ClientLatency(registry);
    this.loop = new LoopMetrics(registry);
    this.storage = StorageTimers.of(registry);
    this.status = new StatusMeters(registry, lagToleranceOps, primarySilenceNs);
  }

  public MeterRegistry registry() {
    return registry;
  }

  public ClientLatency clientLatency() {
    return clientLatency;
  }

  public LoopMetrics loop() {
    return loop;
  }

  public StorageTimers storage() {
    return storage;
  }

  /**
   * Takes snapshots through probe from now on and, unless address is null, serves them over HTTP on it.
   *
   * @throws IOException when address cannot be bound
   */
  public synchronized void serve(InetSocketAddress address, Probe probe) throws IOException {
    this.probe = probe;
    if (address != null) {
      http = MetricsHttpServer.start(address, this);
    }
  }

  /** Where the HTTP endpoint listens, or null when it does not. */
  public synchronized InetSocketAddress address() {
    return http == null ? null : http.address();
  }

  /** A fresh snapshot, or null when the loop did not answer in time (or none can be taken yet). */
  ReplicaSnapshot refresh() {
    CompletableFuture<ReplicaSnapshot> f;
    synchronized (this) {
      if (probe == null) {
        return null;
      }
      if (pending == null || pending.isDone()) {
        pending = probe.snapshot(); // at most one waits in the loop's queue, however many ask
      }
      f = pending;
    }
    try {
      ReplicaSnapshot s = f.get(SNAPSHOT_TIMEOUT_MS, TimeUnit.MILLISECONDS);
      status.update(s);
      return s;
    } catch (TimeoutException | ExecutionException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  /** The Prometheus text exposition, after a fresh snapshot when the loop answers in time. */
  public String scrape() {
    refresh();
    return registry.scrape();
  }

  /** Why /ready answers 503, or null: ready. */
  public String notReadyReason() {
    String refusing = unhealthyReason();
    if (refusing != null) {
      return refusing;
    }
    ReplicaSnapshot s = refresh();
    return s == null ? "the replica loop did not answer within " + SNAPSHOT_TIMEOUT_MS + " ms"
        : s.notReadyReason(lagToleranceOps, primarySilenceNs);
  }

  /** Why /health answers 503, or null: the replica serves. */
  public String unhealthyReason() {
    Probe p;
    synchronized (this) {
      p = probe;
    }
    return p == null ? "starting" : p.refusing();
  }

  /** The status meters (tests). */
  StatusMeters statusMeters() {
    return status;
  }

  /** Stops the HTTP endpoint (the meters stay readable). */
  @Override
  public synchronized void close() {
    if (http != null) {
      http.close();
      http = null;
    }
  }

  /** A probe answering with what the suppliers give (tests of the endpoint alone). */
  static Probe fixed(Supplier<ReplicaSnapshot> snapshots, Supplier<String> refusing) {
    return new Probe() {
      @Override
      public CompletableFuture<ReplicaSnapshot> snapshot() {
        return CompletableFuture.completedFuture(snapshots.get());
      }

      @Override
      public String refusing() {
        return refusing.get();
      }
    };
  }
}
