package io.choir.server.config;

import static io.choir.server.config.Setting.bool;
import static io.choir.server.config.Setting.form;
import static io.choir.server.config.Setting.nonEmptyText;
import static io.choir.server.config.Setting.oneOf;
import static io.choir.server.config.Setting.text;
import static io.choir.server.config.Setting.whole;
import static io.choir.server.config.Setting.wholeOrZero;

import io.choir.server.config.ReplicaAddress.HostPort;
import io.choir.server.net.TransportMode;
import io.choir.server.security.ClusterKeys;
import io.choir.server.statemachine.KvStateMachine;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * ServerConfig is the validated configuration of one replica: every {@link Setting} with its value,
 * taken from (lowest first) the defaults, one YAML file, and command-line flags. It declares the
 * production settings, one declaration each (the test-only ones are in {@link TestSettings}); every
 * setting has a YAML key and a flag. An unknown key, a value of the wrong type or outside its
 * {@link Range}, a rule between settings broken ({@link ConfigChecks}), a bad port or an unwritable data
 * folder is refused with a {@link ConfigException} that names the setting and why.
 */
public final class ServerConfig {
  /** Durability says when a replica acknowledges its own copy of an entry. */
  public enum Durability {
    /** After fsync of the log (the default): a crash of the machine loses nothing acknowledged. */
    FSYNC,
    /** After the write reaches the OS: a process crash loses nothing, a machine crash may. */
    BUFFERED
  }

  private static final Map<String, Setting<?>> SETTINGS = new LinkedHashMap<>();
  private static final String DIRECT_MEMORY_QUARTER = "a quarter of the direct memory limit";

  // Membership and identity.
  public static final Setting<String> CLUSTER_ID = add(nonEmptyText("cluster_id", "choir",
      "Name of the cluster; datagrams of another cluster are dropped."));
  public static final Setting<Integer> REPLICA_ID = add(whole("replica_id", 1, 1, 255, Unit.NONE,
      "This replica's id (one of `replicas`)."));
  public static final Setting<List<ReplicaAddress>> REPLICAS = add(form("replicas",
      List.of(new ReplicaAddress(1, new HostPort("127.0.0.1", 7301), new HostPort("127.0.0.1", 7401))),
      "1 to 7 of id=host:port/host:port", Values::replicas,
      "Every member: id, client (TCP) address and peer (UDP/TCP) address (flag form: 1=h:p/h:p,2=...)."));

  public static final Setting<Boolean> JOIN = add(bool("join", false,
      "Start as a joiner: `replicas` lists the voters of the cluster's current epoch plus this replica, which"
          + " is none of them; it votes in nothing and waits until a member change adds it (`choir member add`),"
          + " then catches up by the log or a state transfer. Harmless on later starts. See docs/design.md"
          + " \"Membership\"."));

  // The client port: where it listens, TLS and who may do what.
  public static final Setting<String> LISTEN_HOST = add(text("listen_host", "",
      "Address the client port binds to; empty: the host of this replica's client address."));
  public static final Setting<String> CLIENT_TLS_CERT_FILE = add(text("client_tls_cert_file", "",
      "PEM certificate chain of the client port (TLS 1.3/1.2 only); empty: plaintext clients."));
  public static final Setting<String> CLIENT_TLS_KEY_FILE = add(text("client_tls_key_file", "",
      "PEM (PKCS#8) private key of client_tls_cert_file."));
  public static final Setting<String> CLIENT_TLS_CA_FILE = add(text("client_tls_ca_file", "",
      "PEM CA certificates that sign client certificates (needed for client_auth optional/require)."));
  public static final Setting<String> CLIENT_AUTH = add(oneOf("client_auth", "none",
      List.of("none", "optional", "require"),
      "Client certificates: none, optional (verified when sent) or require (mutual TLS)."));
  public static final Setting<String> CLIENT_TLS_PROVIDER = add(oneOf("client_tls_provider", "auto",
      List.of("auto", "openssl", "jdk"),
      "TLS engine of the client port: auto (OpenSSL through netty-tcnative when it loads, else the JDK),"
          + " openssl or jdk."));
  public static final Setting<Boolean> ACCEPT_PLAINTEXT_CLIENTS = add(bool("accept_plaintext_clients", false,
      "Start without client TLS although the client port is not on loopback, so that anyone on that"
          + " network can read and forge client traffic. Off: such a replica refuses to start."));
  public static final Setting<String> ACCESS_FILE = add(text("access_file", "",
      "YAML file of client identities (certificate subject or token hash) and their read or read-write"
          + " key prefixes; requests outside them get PERMISSION_DENIED. Empty: everyone may do everything."));

  // Storage.
  public static final Setting<String> DATA_DIR = add(nonEmptyText("data_dir", "data",
      "Folder of this replica's RocksDB database."));
  public static final Setting<Durability> DURABILITY = add(oneOf("durability", Durability.class, Durability.FSYNC,
      "fsync: acknowledge after fsync; buffered: after the write reaches the OS (a machine crash may lose it)."));

  // Peers: multicast, datagrams, the peer TCP port, trust.
  public static final Setting<String> MULTICAST_GROUP = add(form("multicast_group", "239.255.77.1:7500",
      "224-239.x.x.x:port", Values::multicastGroup, "IPv4 multicast group:port of the cluster's PREPAREs."));
  public static final Setting<String> MULTICAST_INTERFACE = add(nonEmptyText("multicast_interface", "lo",
      "Network interface for multicast; loopback by default, a LAN interface only when set."));
  public static final Setting<TransportMode> PEER_TRANSPORT = add(oneOf("peer_transport", TransportMode.class,
      TransportMode.MULTICAST, "How a message to all replicas travels: multicast (one IP multicast datagram),"
          + " unicast (one datagram to each replica, bigger ones over each peer stream; the group is never"
          + " joined: clouds and Kubernetes without multicast) or auto (multicast to the peers that answer"
          + " this replica's multicast probes, unicast to the others)."));
  public static final Setting<String> CLUSTER_KEY_FILE = add(text("cluster_key_file", "",
      "File of the cluster's secret keys (`choir keygen` writes one): peer datagrams are sealed with it"
          + " (AES-GCM) and peer streams proven with it; see docs/security.md. Empty: no key (peers"
          + " unauthenticated)."));
  public static final Setting<Boolean> ACCEPT_UNAUTHENTICATED_PEERS = add(bool("accept_unauthenticated_peers",
      false, "Start without cluster_key_file although multicast or a peer address is not on loopback, so that"
          + " any host of that network can forge peer messages. Off: such a replica refuses to start."));
  public static final Setting<Integer> MULTICAST_TTL = add(whole("multicast_ttl", 1, 0, 255, Unit.NONE,
      "IP TTL of multicast datagrams."));
  public static final Setting<Integer> MAX_DATAGRAM_BYTES = add(whole("max_datagram_bytes", 1400, 576, 65_000,
      Unit.BYTES, "Largest datagram sent; bigger entries are fragmented."));
  public static final Setting<Integer> RECEIVE_BUFFER_BYTES = add(whole("receive_buffer_bytes", 4 << 20,
      64 << 10, 256 << 20, Unit.BYTES, "UDP socket receive buffer asked of the OS."));
  public static final Setting<Integer> PEER_HANDSHAKE_TIMEOUT_MS = add(whole("peer_handshake_timeout_ms", 2_000,
      50, 60_000, Unit.MILLISECONDS,
      "Time a peer TCP connection (peer stream or state transfer) has to prove itself with the cluster"
          + " key; a connection still unproven then is closed (counted peer_tcp_refused_timeout)."));
  public static final Setting<Integer> MAX_PEER_HANDSHAKES = add(whole("max_peer_handshakes", 16, 1, 1024,
      Unit.NONE,
      "Peer TCP connections that may be in their handshake at once, at most half of them from one source"
          + " address; more are closed at once (counted peer_tcp_refused_too_many_handshakes or"
          + " peer_tcp_refused_too_many_from_address), so strangers cannot hold the peer port."));

  // Timers of the protocol.
  public static final Setting<Integer> HEARTBEAT_INTERVAL_MS = add(whole("heartbeat_interval_ms", 50, 1, 60_000,
      Unit.MILLISECONDS, "The primary's heartbeat period when idle."));
  public static final Setting<Integer> ELECTION_TIMEOUT_MS = add(whole("election_timeout_ms", 500, 10, 600_000,
      Unit.MILLISECONDS, "Silence after which backups start a view change (more than twice"
          + " heartbeat_interval_ms)."));

  // Client requests and connections.
  public static final Setting<Integer> MAX_FRAME_BYTES = add(whole("max_frame_bytes", 4 << 20, 1024, 256 << 20,
      Unit.BYTES, "Largest client frame accepted (at least max_key_bytes + max_value_bytes + 256); larger"
          + " ones get TOO_LARGE and the connection closes."));
  public static final Setting<Integer> MAX_KEY_BYTES = add(whole("max_key_bytes", 4096, 1, 1 << 20, Unit.BYTES,
      "Largest key accepted."));
  public static final Setting<Integer> MAX_VALUE_BYTES = add(whole("max_value_bytes", 1 << 20, 0, 64 << 20,
      Unit.BYTES, "Largest value accepted."));
  public static final Setting<Integer> MAX_BATCH_OPS = add(whole("max_batch_ops", 1000, 1, 100_000, Unit.NONE,
      "Most operations in one Batch request."));
  public static final Setting<Integer> MAX_SCAN_LIMIT = add(whole("max_scan_limit", 10_000, 1, 1_000_000,
      Unit.NONE, "Most pairs one scan returns (also the default limit)."));
  public static final Setting<Integer> MAX_SCAN_REPLY_BYTES = add(whole("max_scan_reply_bytes", 2 << 20, 1024,
      1 << 30, Unit.BYTES,
      "Most bytes of pairs one scan reply holds (and never more than max_frame_bytes - 1024; a first pair"
          + " always fits); the client continues from the last key, so one scan over large values cannot"
          + " build a huge reply."));
  public static final Setting<Integer> MAX_CONNECTIONS = add(whole("max_connections", 10_000, 1, 1_000_000,
      Unit.NONE, "Most client connections at once; more are closed."));
  public static final Setting<Integer> MAX_IN_FLIGHT_PER_CONNECTION = add(whole("max_in_flight_per_connection",
      1024, 1, 1_000_000, Unit.NONE,
      "Requests one connection may have unanswered before the replica stops reading it."));
  public static final Setting<Integer> CLIENT_IDLE_TIMEOUT_MS = add(whole("client_idle_timeout_ms", 300_000, 100,
      Integer.MAX_VALUE, Unit.MILLISECONDS,
      "A client connection with nothing in flight and no traffic for this long is closed."));
  public static final Setting<Integer> CLIENT_WRITE_BUFFER_BYTES = add(whole("client_write_buffer_bytes", 1 << 20,
      4096, 1 << 30, Unit.BYTES,
      "Unsent reply bytes per connection above which the replica stops reading it (slow reader)."));
  // Hostile clients (issue 10, item 7): reply bytes in flight, slowloris, connections per address.
  public static final Setting<Integer> MAX_REPLY_BYTES_PER_CONNECTION = add(whole("max_reply_bytes_per_connection",
      4 << 20, 4096, 1 << 30, Unit.BYTES,
      "Reply bytes computed and not yet taken by the socket, per connection, above which the replica stops"
          + " reading it and executing its reads (one reply of any size is always allowed)."));
  public static final Setting<Integer> MAX_REPLY_BYTES_TOTAL = add(wholeOrZero("max_reply_bytes_total", 0, 4096,
      Integer.MAX_VALUE, DIRECT_MEMORY_QUARTER, Unit.BYTES,
      "Reply bytes computed and not yet taken by a socket, over all connections, above which every"
          + " connection holding reply bytes is paused as if over its own bound; 0: a quarter of the JVM's"
          + " direct memory limit (-XX:MaxDirectMemorySize), where unsent replies are held."));
  public static final Setting<Integer> MAX_FRAME_BYTES_TOTAL = add(wholeOrZero("max_frame_bytes_total", 0, 4096,
      Integer.MAX_VALUE, DIRECT_MEMORY_QUARTER, Unit.BYTES,
      "Bytes of unfinished client frames buffered over all connections (beyond 4 KiB each); a connection"
          + " whose frame would pass it is answered UNAVAILABLE and closed; 0: a quarter of the JVM's direct"
          + " memory limit."));
  public static final Setting<Integer> CLIENT_FRAME_TIMEOUT_MS = add(whole("client_frame_timeout_ms", 10_000, 100,
      Integer.MAX_VALUE, Unit.MILLISECONDS,
      "A client frame started and not completed within this long closes its connection (slowloris)."));
  public static final Setting<Integer> MAX_CONNECTIONS_PER_ADDRESS = add(whole("max_connections_per_address",
      1024, 1, 1_000_000, Unit.NONE, "Most client connections at once from one source address; more are refused."));

  // Watches (docs/watch.md): the history kept in memory, the bounds on watchers.
  public static final Setting<Integer> WATCH_HISTORY_EVENTS = add(whole("watch_history_events", 100_000, 1,
      100_000_000, Unit.NONE, "Most recent changes kept in memory for watches to start or resume from; an older"
          + " start revision is refused as compacted. Not persisted: after a restart the history starts at the"
          + " applied op."));
  public static final Setting<Integer> WATCH_HISTORY_BYTES = add(whole("watch_history_bytes", 64 << 20, 1024,
      1 << 30, Unit.BYTES, "Most bytes (keys, values, previous values) of the watch history."));
  public static final Setting<Integer> WATCH_BUFFER_BYTES = add(whole("watch_buffer_bytes", 1 << 20, 1024,
      1 << 30, Unit.BYTES, "Most event bytes a watch has sent and its connection not yet taken; beyond, it waits"
          + " and resumes from the history, and is cut off (an error) once the history has moved past it."));
  public static final Setting<Integer> MAX_WATCHERS = add(whole("max_watchers", 100_000, 1, 10_000_000,
      Unit.NONE, "Most watches at once on this replica; more are refused (BUSY)."));
  public static final Setting<Integer> MAX_WATCHERS_PER_CONNECTION = add(whole("max_watchers_per_connection",
      1024, 1, 10_000_000, Unit.NONE, "Most watches at once on one client connection; more are refused (BUSY)."));

  // The write path: queues, the flow-control window, group commit, sessions.
  public static final Setting<Integer> EVENT_QUEUE_CAPACITY = add(whole("event_queue_capacity", 65_536, 16,
      10_000_000, Unit.NONE, "Bound of the replica thread's event queue; a request that finds it full gets BUSY."));
  public static final Setting<Integer> MAX_IN_FLIGHT_OPS = add(whole("max_in_flight_ops", 8192, 1, 10_000_000,
      Unit.NONE, "Flow-control window: most ops beyond commit."));
  public static final Setting<Integer> MAX_IN_FLIGHT_BYTES = add(whole("max_in_flight_bytes", 64 << 20, 1024,
      1 << 30, Unit.BYTES, "Flow-control window: most bytes beyond commit."));
  public static final Setting<Integer> MAX_QUEUED_REQUESTS = add(whole("max_queued_requests", 16_384, 0,
      10_000_000, Unit.NONE, "Writes held while the window is full; beyond this they get BUSY."));
  public static final Setting<Integer> MAX_BATCH_ENTRIES = add(whole("max_batch_entries", 1024, 1, 1_000_000,
      Unit.NONE, "Most entries in one log write (group commit)."));
  public static final Setting<Integer> MAX_BATCH_BYTES = add(whole("max_batch_bytes", 4 << 20, 1024, 1 << 30,
      Unit.BYTES, "Most bytes in one log write (group commit)."));
  public static final Setting<Integer> MAX_CLIENT_SESSIONS = add(whole("max_client_sessions", 100_000, 1,
      100_000_000, Unit.NONE,
      "Most client sessions at once; beyond, a new session is refused (BUSY), never a live one evicted."));
  public static final Setting<Integer> SESSION_TIMEOUT_MS = add(whole("session_timeout_ms", 60_000, 1000,
      86_400_000, Unit.MILLISECONDS,
      "A client session with no write for this long (by the log's replicated clock) expires; its late"
          + " retries get SESSION_EXPIRED, never a second execution."));
  public static final Setting<Integer> MAX_REPLIES_PER_CLIENT = add(whole("max_replies_per_client", 4096, 1,
      1_000_000, Unit.NONE, "Saved replies kept per client for retries (above the client's max in flight)."));
  public static final Setting<Integer> RECENT_VALUES_BYTES = add(whole("recent_values_bytes",
      (int) KvStateMachine.DEFAULT_RECENT_VALUES_BYTES, 0,
      1 << 30, Unit.BYTES, "Memory for the values of recently used keys, so that a write need not read"
          + " the value it replaces from storage; 0 turns it off."));

  // The log: retention and what NACKs can make a replica resend (issue 10, item 6).
  public static final Setting<Integer> LOG_RETENTION_OPS = add(whole("log_retention_ops", 100_000, 1000,
      100_000_000, Unit.NONE, "Applied log entries kept for repair and catch-up; older ones are truncated."));
  public static final Setting<Integer> LOG_RETENTION_MAX_OPS = add(whole("log_retention_max_ops", 10_000_000,
      1000, 1_000_000_000, Unit.NONE,
      "Most log entries kept behind commit for a replica that is away (at least log_retention_ops); beyond,"
          + " it needs a state transfer."));
  public static final Setting<Integer> RESEND_BYTES_PER_PEER_PER_SEC = add(whole("resend_bytes_per_peer_per_sec",
      32 << 20, 0, Integer.MAX_VALUE, Unit.BYTES_PER_SECOND,
      "Resend bytes one replica's NACKs may cause per second (a token bucket holding 250 ms of it);"
          + " 0: unbounded."));
  public static final Setting<Integer> RESEND_AMPLIFICATION_LIMIT = add(whole("resend_amplification_limit", 10, 0,
      1000, Unit.NONE,
      "Without a cluster key: datagram resends to a replica at most this many times the bytes received in"
          + " its name, and NACKs padded to earn them; 0: off."));

  // Reads, shutdown, logs.
  public static final Setting<Integer> READ_TIMEOUT_MS = add(whole("read_timeout_ms", 5000, 1, 600_000,
      Unit.MILLISECONDS, "How long a read may wait for the applied state to reach what it needs."));
  public static final Setting<String> LINEARIZABLE_READS = add(oneOf("linearizable_reads", "lease",
      List.of("lease", "read_index"),
      "How the primary confirms a linearizable read: lease (no heartbeat round while its lease, renewed by"
          + " the heartbeat rounds, holds; a round otherwise) or read_index (a heartbeat round after every"
          + " read's arrival, shared by the reads waiting). Every replica must have the same"
          + " election_timeout_ms and lease_clock_drift_ppm."));
  public static final Setting<Integer> LEASE_CLOCK_DRIFT_PPM = add(whole("lease_clock_drift_ppm", 50_000, 0, 500_000,
      Unit.PARTS_PER_MILLION, "The most any replica's monotonic clock may run fast or slow; the lease is"
          + " election_timeout_ms x (1 - drift) / (1 + drift) - 1 ms (docs/design.md, lease reads)."));
  public static final Setting<Integer> READ_THREADS = add(whole("read_threads", 2, 1, 256, Unit.NONE,
      "Threads that execute reads against the applied state."));
  public static final Setting<Integer> SHUTDOWN_TIMEOUT_MS = add(whole("shutdown_timeout_ms", 5000, 0, 600_000,
      Unit.MILLISECONDS, "How long a graceful shutdown waits for work in flight."));
  public static final Setting<String> LOG_LEVEL = add(oneOf("log_level", "info",
      List.of("error", "warn", "info", "debug", "trace"), "Least severe log level written."));

  // Operations: metrics and health endpoints.
  public static final Setting<String> METRICS_ADDRESS = add(form("metrics_address", "",
      "empty, or host:port (port 0: any free port)", Values::metricsAddress,
      "Where the replica serves HTTP GET /metrics (Prometheus text format), /health and /ready"
          + " (docs/metrics.md); empty: not served. Unauthenticated and plaintext: keep it on loopback or a"
          + " trusted network."));

  static {
    for (Setting<?> s : TestSettings.ALL) {
      add(s);
    }
  }

  private final Map<String, Object> values;
  private ClusterKeys keys;

  private ServerConfig(Map<String, Object> values) {
    this.values = values;
  }

  /** Every setting, in documentation order: the production ones, then the test-only ones. */
  public static Map<String, Setting<?>> settings() {
    return Collections.unmodifiableMap(SETTINGS);
  }

  /** The defaults only (a single replica on loopback with data in ./data). */
  public static ServerConfig defaults() {
    return build(Map.of(), Map.of());
  }

  /**
   * Loads file (may be null) and then overrides (setting key to raw value, flags win), validates all.
   */
  public static ServerConfig load(Path file, Map<String, Object> overrides) {
    return build(file == null ? Map.of() : ConfigFile.read(file), overrides);
  }

  /** Builds from raw key-value maps (YAML first, then overrides); validates everything. */
  public static ServerConfig build(Map<String, Object> yaml, Map<String, Object> overrides) {
    Map<String, Object> raw = new LinkedHashMap<>(yaml);
    raw.putAll(overrides);
    for (String key : raw.keySet()) {
      if (!SETTINGS.containsKey(key)) {
        throw new ConfigException(key, "unknown setting (known: " + new TreeSet<>(SETTINGS.keySet()) + ")");
      }
    }
    Map<String, Object> values = new LinkedHashMap<>();
    for (Setting<?> s : SETTINGS.values()) {
      Object v = raw.containsKey(s.key()) ? s.parse(raw.get(s.key())) : s.defaultValue();
      if (v == null) {
        throw new ConfigException(s.key(), "must not be empty");
      }
      values.put(s.key(), v);
    }
    ServerConfig config = new ServerConfig(values);
    ConfigChecks.check(config);
    return config;
  }

  @SuppressWarnings("unchecked")
  public <T> T get(Setting<T> setting) {
    return (T) values.get(setting.key());
  }

  /**
   * Every value by key as `choir server --print-config` prints them: the production settings by name,
   * then the test-only ones, each marked with a trailing YAML comment (# TEST ONLY).
   */
  public Map<String, Object> asMap() {
    Map<String, Object> production = new TreeMap<>();
    Map<String, Object> testOnly = new TreeMap<>();
    for (Setting<?> s : SETTINGS.values()) {
      Object v = values.get(s.key());
      if (s.testOnly()) {
        String shown = s.show(v);
        testOnly.put(s.key(), (shown.isEmpty() ? "\"\"" : shown) + "  # TEST ONLY");
      } else {
        production.put(s.key(), v instanceof List<?> l ? l.stream().map(String::valueOf).toList()
            : v instanceof Enum<?> e ? e.name().toLowerCase(Locale.ROOT) : v);
      }
    }
    Map<String, Object> out = new LinkedHashMap<>(production);
    out.putAll(testOnly);
    return out;
  }

  /** The cluster's keys, or null when cluster_key_file is empty. Loaded once. */
  public ClusterKeys clusterKeys() {
    String file = get(CLUSTER_KEY_FILE);
    if (file.isEmpty()) {
      return null;
    }
    if (keys == null) {
      try {
        keys = ClusterKeys.load(Path.of(file));
      } catch (IllegalArgumentException e) {
        throw new ConfigException(CLUSTER_KEY_FILE.key(), e.getMessage());
      }
    }
    return keys;
  }

  /** A 64-bit id of the cluster name, carried in every datagram header. */
  public long clusterIdHash() {
    long h = 0xcbf29ce484222325L; // FNV-1a 64: stable across JVMs, unlike String.hashCode's width
    for (byte b : get(CLUSTER_ID).getBytes(StandardCharsets.UTF_8)) {
      h ^= b & 0xff;
      h *= 0x100000001b3L;
    }
    return h;
  }

  /** This replica's entry in replicas (never null after validation). */
  public ReplicaAddress self() {
    int id = get(REPLICA_ID);
    return get(REPLICAS).stream().filter(r -> r.id() == id).findFirst().orElse(null);
  }

  /** Host the client port binds to: listen_host, or when empty the host of this replica's client address. */
  public String listenHost() {
    String h = get(LISTEN_HOST);
    return h.isEmpty() ? self().client().host() : h;
  }

  /** Where /metrics, /health and /ready are served, or null when metrics_address is empty. */
  public InetSocketAddress metricsAddress() {
    String a = get(METRICS_ADDRESS);
    if (a.isEmpty()) {
      return null;
    }
    int colon = a.lastIndexOf(':');
    String host = a.substring(0, colon);
    return new InetSocketAddress(host.startsWith("[") ? host.substring(1, host.length() - 1) : host,
        Integer.parseInt(a.substring(colon + 1)));
  }

  public Path dataDir() {
    return Path.of(get(DATA_DIR));
  }

  public String logLevel() {
    return get(LOG_LEVEL);
  }

  private static <T> Setting<T> add(Setting<T> s) {
    if (SETTINGS.putIfAbsent(s.key(), s) != null) {
      throw new IllegalStateException("setting " + s.key() + " is declared twice");
    }
    return s;
  }
}
