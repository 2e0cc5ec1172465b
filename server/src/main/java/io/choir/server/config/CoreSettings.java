package io.choir.server.config;

import static io.choir.server.config.ServerConfig.ELECTION_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.HEARTBEAT_INTERVAL_MS;
import static io.choir.server.config.ServerConfig.LEASE_CLOCK_DRIFT_PPM;
import static io.choir.server.config.ServerConfig.LINEARIZABLE_READS;
import static io.choir.server.config.ServerConfig.LOG_RETENTION_MAX_OPS;
import static io.choir.server.config.ServerConfig.LOG_RETENTION_OPS;
import static io.choir.server.config.ServerConfig.MAX_BATCH_BYTES;
import static io.choir.server.config.ServerConfig.MAX_BATCH_ENTRIES;
import static io.choir.server.config.ServerConfig.MAX_BATCH_OPS;
import static io.choir.server.config.ServerConfig.MAX_CLIENT_SESSIONS;
import static io.choir.server.config.ServerConfig.MAX_DATAGRAM_BYTES;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_BYTES;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_OPS;
import static io.choir.server.config.ServerConfig.MAX_KEY_BYTES;
import static io.choir.server.config.ServerConfig.MAX_QUEUED_REQUESTS;
import static io.choir.server.config.ServerConfig.MAX_VALUE_BYTES;
import static io.choir.server.config.ServerConfig.READ_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.REPLICAS;
import static io.choir.server.config.ServerConfig.REPLICA_ID;
import static io.choir.server.config.ServerConfig.RESEND_AMPLIFICATION_LIMIT;
import static io.choir.server.config.ServerConfig.RESEND_BYTES_PER_PEER_PER_SEC;
import static io.choir.server.config.ServerConfig.SESSION_TIMEOUT_MS;
import static io.choir.server.config.TestSettings.TEST_BREAK_PROTOCOL;

import io.choir.server.core.CoreConfig;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * CoreSettings maps the declared settings to the pure core's {@link CoreConfig}, in one place: which
 * setting feeds which bound, and the conversions (milliseconds to the core's nanoseconds, the election
 * timeout as the primary's CheckQuorum timeout, the anti-amplification rule only without a key). The
 * same mapping gives a replica's core ({@link #coreConfig}) and the declared defaults that tests and the
 * simulator start from ({@link #defaults}), so a default lives only in its setting's declaration. The
 * core's other tuning (NACK delays, retransmit rings) has no setting and keeps CoreConfig's defaults.
 */
public final class CoreSettings {
  private static final long MS = TimeUnit.MILLISECONDS.toNanos(1);

  /** Where the mapping reads a setting's value: a loaded configuration, or the declarations' defaults. */
  private interface Lookup {
    <T> T get(Setting<T> setting);
  }

  private CoreSettings() {
  }

  /** The core's configuration of this replica; seed seeds its random source (NACK delays). */
  public static CoreConfig coreConfig(ServerConfig config, long seed) {
    Map<Integer, String> clients = new HashMap<>();
    config.get(REPLICAS).forEach(r -> clients.put(r.id(), r.client().toString()));
    // A joiner is no member of the bootstrap membership (epoch 1: the others), so it never votes in it.
    int self = config.get(REPLICA_ID);
    boolean join = config.get(ServerConfig.JOIN);
    CoreConfig.Builder b = CoreConfig.builder(self,
        config.get(REPLICAS).stream().map(r -> r.id()).filter(id -> !join || id != self).toList());
    return fromSettings(b, config::get, config.clusterKeys() != null)
        .clientAddresses(clients)
        .seed(seed)
        .build();
  }

  /**
   * A builder of replicaId's core among replicaIds with every setting at its declared default, as in a
   * replica started without a configuration (no cluster key, so the anti-amplification limit applies);
   * tests and the simulator change what they need from there.
   */
  public static CoreConfig.Builder defaults(int replicaId, List<Integer> replicaIds) {
    return fromSettings(CoreConfig.builder(replicaId, replicaIds), Setting::defaultValue, false);
  }

  private static CoreConfig.Builder fromSettings(CoreConfig.Builder b, Lookup config, boolean keyed) {
    return b
        .maxKeyBytes(config.get(MAX_KEY_BYTES))
        .maxValueBytes(config.get(MAX_VALUE_BYTES))
        .maxBatchOps(config.get(MAX_BATCH_OPS))
        .maxInFlightOps(config.get(MAX_IN_FLIGHT_OPS))
        .maxInFlightBytes(config.get(MAX_IN_FLIGHT_BYTES))
        .maxQueuedRequests(config.get(MAX_QUEUED_REQUESTS))
        .maxBatchEntries(config.get(MAX_BATCH_ENTRIES))
        .maxBatchBytes(config.get(MAX_BATCH_BYTES))
        .readTimeoutNs(config.get(READ_TIMEOUT_MS) * MS)
        .maxDatagramBytes(config.get(MAX_DATAGRAM_BYTES))
        .heartbeatIntervalNs(config.get(HEARTBEAT_INTERVAL_MS) * MS)
        .quorumTimeoutNs(config.get(ELECTION_TIMEOUT_MS) * MS)
        .logRetentionMinOps(config.get(LOG_RETENTION_OPS))
        .logRetentionMaxOps(config.get(LOG_RETENTION_MAX_OPS))
        .resendBytesPerPeerPerSec(config.get(RESEND_BYTES_PER_PEER_PER_SEC))
        // With a key only members can send, so only an unkeyed cluster needs the anti-amplification rule.
        .resendAmplificationLimit(keyed ? 0 : config.get(RESEND_AMPLIFICATION_LIMIT))
        .sessionTimeoutMs(config.get(SESSION_TIMEOUT_MS))
        .maxClientSessions(config.get(MAX_CLIENT_SESSIONS))
        .readMode(readMode(config.get(LINEARIZABLE_READS)))
        .leaseClockDriftPpm(config.get(LEASE_CLOCK_DRIFT_PPM))
        .breakage(breakage(config.get(TEST_BREAK_PROTOCOL)));
  }

  /** The read mode linearizable_reads names (its words are the setting's Range.OneOf). */
  static CoreConfig.ReadMode readMode(String linearizableReads) {
    return "read_index".equals(linearizableReads) ? CoreConfig.ReadMode.READ_INDEX : CoreConfig.ReadMode.LEASE;
  }

  /** The deliberate bug test_break_protocol names (its words are the setting's Range.OneOf). */
  static CoreConfig.Breakage breakage(String testBreakProtocol) {
    return switch (testBreakProtocol) {
      case "local-reads" -> CoreConfig.Breakage.LOCAL_READS;
      case "commit-alone" -> CoreConfig.Breakage.COMMIT_ALONE;
      case "ack-before-fsync" -> CoreConfig.Breakage.ACK_BEFORE_FSYNC;
      case "stale-lease" -> CoreConfig.Breakage.STALE_LEASE;
      default -> CoreConfig.Breakage.NONE;
    };
  }
}
