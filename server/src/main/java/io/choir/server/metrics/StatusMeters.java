package io.choir.server.metrics;

import io.choir.proto.MemberRole;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * StatusMeters exposes a replica's status as meters, from the last {@link ReplicaSnapshot} taken: every
 * counter the status shows under the metric name choir_NAME_total (a counter) or choir_NAME (the few
 * that are levels, {@link #LEVELS}), and the status fields as gauges (view, op, commit, applied, epoch,
 * primary, keys, log entries, role and member role as one series per value, 1 for the current one, and
 * readiness). Counters the registry holds itself (choir.datagrams.sent, shown by status as
 * datagrams_sent) are already meters and are left alone. A counter that appears in a later status (a
 * new drop reason) gets its meter then. Thread-safe: {@link #update} from any thread.
 */
public final class StatusMeters {
  /** Status "counters" that are levels, not counts: exposed as gauges. */
  public static final Set<String> LEVELS = Set.of("connections", "client_reply_bytes", "client_frame_bytes",
      "direct_memory_netty_bytes", "direct_memory_jdk_bytes", "queued_writes", "lag", "last_view_change_unix_ms",
      "last_normal_view");
  /** The roles a replica reports (status role). */
  public static final List<String> ROLES = List.of("primary", "backup", "catching-up", "view-change", "recovering");

  private final MeterRegistry registry;
  private final long lagToleranceOps;
  private final long primarySilenceNs;
  private final Set<String> registered = new HashSet<>();
  private volatile ReplicaSnapshot latest;

  /**
   * Meters in registry for the snapshots to come; lagToleranceOps and primarySilenceNs are readiness's
   * bounds ({@link ReplicaSnapshot#notReadyReason}), for the choir.ready gauge.
   */
  public StatusMeters(MeterRegistry registry, long lagToleranceOps, long primarySilenceNs) {
    this.registry = registry;
    this.lagToleranceOps = lagToleranceOps;
    this.primarySilenceNs = primarySilenceNs;
    gauge("choir.view", "The view this replica is in", s -> s.status().getView());
    gauge("choir.op", "Highest op in the log", s -> s.status().getOp());
    gauge("choir.commit", "Highest op known committed", s -> s.status().getCommit());
    gauge("choir.applied", "Highest op applied to the data", s -> s.status().getApplied());
    gauge("choir.epoch", "The membership epoch", s -> s.status().getEpoch());
    gauge("choir.primary_id", "The primary of this replica's view", s -> s.status().getPrimaryId());
    gauge("choir.keys", "Keys in the data (RocksDB's estimate)", s -> s.status().getKeys());
    gauge("choir.log_entries", "Log entries held (op minus the log's first op, plus one)",
        ReplicaSnapshot::logEntries);
    gauge("choir.log_first_op", "The first op the log still holds", ReplicaSnapshot::logFirstOp);
    gauge("choir.uptime_seconds", "Seconds since the replica started", s -> s.status().getUptimeMs() / 1000.0);
    gauge("choir.pending_reads", "Reads waiting in the core for the applied state or a heartbeat round",
        ReplicaSnapshot::pendingReads);
    gauge("choir.snapshot_age_seconds", "Age of the status these meters show (taken at each scrape)",
        s -> (System.nanoTime() - s.takenNs()) / 1e9);
    gauge("choir.ready", "1 when /ready answers 200", s -> s.notReadyReason(lagToleranceOps, primarySilenceNs) == null ? 1 : 0);
    for (String role : ROLES) {
      Gauge.builder("choir.role", this, m -> value(m, s -> s.status().getRole().equals(role) ? 1 : 0))
          .description("1 for the role this replica is in (status role), 0 for the others")
          .tag("role", role).register(registry);
    }
    for (MemberRole r : List.of(MemberRole.VOTER, MemberRole.LEARNER, MemberRole.RETIRED)) {
      Gauge.builder("choir.member_role", this, m -> value(m, s -> s.status().getMemberRole() == r ? 1 : 0))
          .description("1 for this replica's own role in its epoch, 0 for the others")
          .tag("role", r.name().toLowerCase(Locale.ROOT)).register(registry);
    }
  }

  /** The Micrometer name of status counter name (lag: choir.lag; Prometheus: choir_lag). */
  public static String meterName(String statusName) {
    return "choir." + statusName;
  }

  /** Takes snapshot as the latest and gives every status counter without a meter its meter. */
  public synchronized void update(ReplicaSnapshot snapshot) {
    latest = snapshot;
    Set<String> own = null;
    for (String name : snapshot.status().getCountersMap().keySet()) {
      if (registered.contains(name)) {
        continue;
      }
      if (own == null) {
        own = registryCounters();
      }
      registered.add(name);
      if (own.contains(name)) {
        continue;
      }
      if (LEVELS.contains(name)) {
        gauge(meterName(name), "status counter " + name, s -> s.counter(name));
      } else {
        FunctionCounter.builder(meterName(name), this, m -> value(m, s -> s.counter(name)))
            .description("status counter " + name).register(registry);
      }
    }
  }

  /** The last snapshot taken, or null before the first. */
  public ReplicaSnapshot latest() {
    return latest;
  }

  /** The status names of the registry's own counters (as ReplicaStatusReport shows them). */
  private Set<String> registryCounters() {
    Set<String> names = new HashSet<>();
    for (Meter m : registry.getMeters()) {
      if (m instanceof Counter) {
        names.add(m.getId().getName().replace("choir.", "").replace('.', '_'));
      }
    }
    return names;
  }

  private void gauge(String name, String description, ToDoubleFunction<ReplicaSnapshot> f) {
    Gauge.builder(name, this, m -> value(m, f)).description(description).register(registry);
  }

  private static double value(StatusMeters m, ToDoubleFunction<ReplicaSnapshot> f) {
    ReplicaSnapshot s = m.latest;
    return s == null ? Double.NaN : f.applyAsDouble(s);
  }
}
