package io.choir.server.config;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.choir.server.config.ReplicaAddress.HostPort;
import io.choir.server.security.ClusterKeys;
import java.io.IOException;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * ServerConfig is the validated configuration of one replica: every {@link Setting} with its value,
 * taken from (lowest first) the defaults, one YAML file, and command-line flags. Every setting has a
 * YAML key and a flag; an unknown key, a value of the wrong type or out of range, a bad port or an
 * unwritable data folder is refused with a {@link ConfigException} that names the setting and why.
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

  public static final Setting<String> CLUSTER_ID =
      add(new Setting<>("cluster_id", "Name of the cluster; datagrams of another cluster are dropped.",
          "choir", ServerConfig::nonEmptyString));
  public static final Setting<Integer> REPLICA_ID =
      add(new Setting<>("replica_id", "This replica's id (one of replicas).", 1, v -> intIn(v, 1, 255)));
  public static final Setting<List<ReplicaAddress>> REPLICAS =
      add(new Setting<>("replicas",
          "Every member: id, client address, peer address (flag form: 1=h:p/h:p,2=...).",
          List.of(new ReplicaAddress(1, new HostPort("127.0.0.1", 7301), new HostPort("127.0.0.1", 7401))),
          ServerConfig::replicas));
  public static final Setting<String> LISTEN_HOST =
      add(new Setting<>("listen_host",
          "Address the client port binds to (default: the host of this replica's client address).", "",
          ServerConfig::string));
  public static final Setting<String> CLIENT_TLS_CERT_FILE =
      add(new Setting<>("client_tls_cert_file",
          "PEM certificate chain of the client port (TLS 1.2/1.3). Empty: plaintext clients.", "",
          ServerConfig::string));
  public static final Setting<String> CLIENT_TLS_KEY_FILE =
      add(new Setting<>("client_tls_key_file", "PEM (PKCS#8) private key of client_tls_cert_file.", "",
          ServerConfig::string));
  public static final Setting<String> CLIENT_TLS_CA_FILE =
      add(new Setting<>("client_tls_ca_file",
          "PEM CA certificates that sign client certificates (needed for client_auth optional/require).", "",
          ServerConfig::string));
  public static final Setting<String> CLIENT_AUTH =
      add(new Setting<>("client_auth",
          "Client certificates: none, optional (verified when sent) or require (mutual TLS).", "none",
          v -> oneOf(v, "none", "optional", "require")));
  public static final Setting<String> CLIENT_TLS_PROVIDER =
      add(new Setting<>("client_tls_provider",
          "TLS engine of the client port: auto (OpenSSL through netty-tcnative when it loads, else the JDK),"
              + " openssl or jdk.", "auto", v -> oneOf(v, "auto", "openssl", "jdk")));
  public static final Setting<Boolean> ACCEPT_PLAINTEXT_CLIENTS =
      add(new Setting<>("accept_plaintext_clients",
          "Start without client TLS although the client port is not on loopback, so that anyone on that"
              + " network can read and forge client traffic. Off: such a replica refuses to start.",
          false, ServerConfig::bool));
  public static final Setting<String> ACCESS_FILE =
      add(new Setting<>("access_file",
          "YAML file of client identities (certificate subject or token hash) and their read or read-write"
              + " key prefixes; requests outside them get PERMISSION_DENIED. Empty: everyone may do everything.",
          "", ServerConfig::string));
  public static final Setting<String> DATA_DIR =
      add(new Setting<>("data_dir", "Folder of this replica's RocksDB database.", "data",
          ServerConfig::nonEmptyString));
  public static final Setting<Durability> DURABILITY =
      add(new Setting<>("durability", "fsync (acknowledge after fsync) or buffered.", Durability.FSYNC,
          v -> Durability.valueOf(nonEmptyString(v).toUpperCase(Locale.ROOT))));
  public static final Setting<String> MULTICAST_GROUP =
      add(new Setting<>("multicast_group", "IPv4 multicast group:port of the cluster's PREPAREs.",
          "239.255.77.1:7500", ServerConfig::multicastGroup));
  public static final Setting<String> MULTICAST_INTERFACE =
      add(new Setting<>("multicast_interface",
          "Network interface for multicast; loopback by default, a LAN interface only when set.", "lo",
          ServerConfig::nonEmptyString));
  public static final Setting<String> CLUSTER_KEY_FILE =
      add(new Setting<>("cluster_key_file",
          "File of the cluster's secret keys (`choir keygen` writes one): peer datagrams are sealed with it"
              + " and peer streams proven with it. Empty: no key (peers unauthenticated).", "",
          ServerConfig::string));
  public static final Setting<Boolean> ACCEPT_UNAUTHENTICATED_PEERS =
      add(new Setting<>("accept_unauthenticated_peers",
          "Start without cluster_key_file although multicast or a peer address is not on loopback, so that"
              + " any host of that network can forge peer messages. Off: such a replica refuses to start.",
          false, ServerConfig::bool));
  public static final Setting<Integer> MULTICAST_TTL =
      add(new Setting<>("multicast_ttl", "IP TTL of multicast datagrams.", 1, v -> intIn(v, 0, 255)));
  public static final Setting<Integer> MAX_DATAGRAM_BYTES =
      add(new Setting<>("max_datagram_bytes", "Largest datagram sent; bigger entries are fragmented.",
          1400, v -> intIn(v, 576, 65_000)));
  public static final Setting<Integer> RECEIVE_BUFFER_BYTES =
      add(new Setting<>("receive_buffer_bytes", "UDP socket receive buffer asked of the OS.",
          4 << 20, v -> intIn(v, 64 << 10, 256 << 20)));
  public static final Setting<Integer> PEER_HANDSHAKE_TIMEOUT_MS =
      add(new Setting<>("peer_handshake_timeout_ms",
          "Time a peer TCP connection (peer stream or state transfer) has to prove itself with the cluster"
              + " key; a connection still unproven then is closed (counted peer_tcp_refused_timeout).", 2_000,
          v -> intIn(v, 50, 60_000)));
  public static final Setting<Integer> MAX_PEER_HANDSHAKES =
      add(new Setting<>("max_peer_handshakes",
          "Peer TCP connections that may be in their handshake at once, at most half of them from one source"
              + " address; more are closed at once (counted peer_tcp_refused_too_many_handshakes or"
              + " peer_tcp_refused_too_many_from_address), so strangers cannot hold the peer port.", 16,
          v -> intIn(v, 1, 1024)));
  public static final Setting<Integer> HEARTBEAT_INTERVAL_MS =
      add(new Setting<>("heartbeat_interval_ms", "The primary's heartbeat period when idle.", 50,
          v -> intIn(v, 1, 60_000)));
  public static final Setting<Integer> ELECTION_TIMEOUT_MS =
      add(new Setting<>("election_timeout_ms", "Silence after which backups start a view change.",
          500, v -> intIn(v, 10, 600_000)));
  public static final Setting<Integer> MAX_FRAME_BYTES =
      add(new Setting<>("max_frame_bytes", "Largest client frame accepted; larger ones get TOO_LARGE.",
          4 << 20, v -> intIn(v, 1024, 256 << 20)));
  public static final Setting<Integer> MAX_KEY_BYTES =
      add(new Setting<>("max_key_bytes", "Largest key accepted.", 4096, v -> intIn(v, 1, 1 << 20)));
  public static final Setting<Integer> MAX_VALUE_BYTES =
      add(new Setting<>("max_value_bytes", "Largest value accepted.", 1 << 20,
          v -> intIn(v, 0, 64 << 20)));
  public static final Setting<Integer> MAX_BATCH_OPS =
      add(new Setting<>("max_batch_ops", "Most operations in one Batch request.", 1000,
          v -> intIn(v, 1, 100_000)));
  public static final Setting<Integer> MAX_SCAN_LIMIT =
      add(new Setting<>("max_scan_limit", "Most pairs one scan returns (also the default limit).",
          10_000, v -> intIn(v, 1, 1_000_000)));
  public static final Setting<Integer> MAX_SCAN_REPLY_BYTES =
      add(new Setting<>("max_scan_reply_bytes",
          "Most bytes of pairs one scan reply holds (and never more than max_frame_bytes - 1024; a first pair"
              + " always fits); the client continues from the last key, so one scan over large values cannot"
              + " build a huge reply.",
          2 << 20, v -> intIn(v, 1024, 1 << 30)));
  public static final Setting<Integer> MAX_CONNECTIONS =
      add(new Setting<>("max_connections", "Most client connections at once; more are closed.", 10_000,
          v -> intIn(v, 1, 1_000_000)));
  public static final Setting<Integer> MAX_IN_FLIGHT_PER_CONNECTION =
      add(new Setting<>("max_in_flight_per_connection",
          "Requests one connection may have unanswered before the replica stops reading it.", 1024,
          v -> intIn(v, 1, 1_000_000)));
  public static final Setting<Integer> CLIENT_IDLE_TIMEOUT_MS =
      add(new Setting<>("client_idle_timeout_ms",
          "A client connection with nothing in flight and no traffic for this long is closed.",
          300_000, v -> intIn(v, 100, Integer.MAX_VALUE)));
  public static final Setting<Integer> CLIENT_WRITE_BUFFER_BYTES =
      add(new Setting<>("client_write_buffer_bytes",
          "Unsent reply bytes per connection above which the replica stops reading it (slow reader).",
          1 << 20, v -> intIn(v, 4096, 1 << 30)));
  // Hostile clients (issue 10, item 7): reply bytes in flight, slowloris, connections per address.
  public static final Setting<Integer> MAX_REPLY_BYTES_PER_CONNECTION =
      add(new Setting<>("max_reply_bytes_per_connection",
          "Reply bytes computed and not yet taken by the socket, per connection, above which the replica stops"
              + " reading it and executing its reads (one reply of any size is always allowed).",
          4 << 20, v -> intIn(v, 4096, 1 << 30)));
  public static final Setting<Integer> MAX_REPLY_BYTES_TOTAL =
      add(new Setting<>("max_reply_bytes_total",
          "Reply bytes computed and not yet taken by a socket, over all connections, above which every"
              + " connection holding reply bytes is paused as if over its own bound; 0: a quarter of the JVM's"
              + " direct memory limit (-XX:MaxDirectMemorySize), where unsent replies are held.",
          0, v -> {
            int n = intIn(v, 0, Integer.MAX_VALUE);
            if (n != 0 && n < 4096) {
              throw new IllegalArgumentException(n + " is neither 0 (a quarter of the direct memory limit) nor 4096 or more");
            }
            return n;
          }));
  public static final Setting<Integer> MAX_FRAME_BYTES_TOTAL =
      add(new Setting<>("max_frame_bytes_total",
          "Bytes of unfinished client frames buffered over all connections (beyond 4 KiB each); a connection"
              + " whose frame would pass it is answered UNAVAILABLE and closed; 0: a quarter of the JVM's direct"
              + " memory limit.",
          0, v -> {
            int n = intIn(v, 0, Integer.MAX_VALUE);
            if (n != 0 && n < 4096) {
              throw new IllegalArgumentException(n + " is neither 0 (a quarter of the direct memory limit) nor 4096 or more");
            }
            return n;
          }));
  public static final Setting<Integer> CLIENT_FRAME_TIMEOUT_MS =
      add(new Setting<>("client_frame_timeout_ms",
          "A client frame started and not completed within this long closes its connection (slowloris).",
          10_000, v -> intIn(v, 100, Integer.MAX_VALUE)));
  public static final Setting<Integer> MAX_CONNECTIONS_PER_ADDRESS =
      add(new Setting<>("max_connections_per_address",
          "Most client connections at once from one source address; more are refused.", 1024,
          v -> intIn(v, 1, 1_000_000)));
  public static final Setting<Integer> EVENT_QUEUE_CAPACITY =
      add(new Setting<>("event_queue_capacity",
          "Bound of the replica thread's event queue; a request that finds it full gets BUSY.", 65_536,
          v -> intIn(v, 16, 10_000_000)));
  public static final Setting<Integer> MAX_IN_FLIGHT_OPS =
      add(new Setting<>("max_in_flight_ops", "Flow-control window: most ops beyond commit.", 8192,
          v -> intIn(v, 1, 10_000_000)));
  public static final Setting<Integer> MAX_IN_FLIGHT_BYTES =
      add(new Setting<>("max_in_flight_bytes", "Flow-control window: most bytes beyond commit.",
          64 << 20, v -> intIn(v, 1024, 1 << 30)));
  public static final Setting<Integer> MAX_QUEUED_REQUESTS =
      add(new Setting<>("max_queued_requests",
          "Writes held while the window is full; beyond this they get BUSY.", 16_384,
          v -> intIn(v, 0, 10_000_000)));
  public static final Setting<Integer> MAX_BATCH_ENTRIES =
      add(new Setting<>("max_batch_entries", "Most entries in one log write (group commit).", 1024,
          v -> intIn(v, 1, 1_000_000)));
  public static final Setting<Integer> MAX_BATCH_BYTES =
      add(new Setting<>("max_batch_bytes", "Most bytes in one log write (group commit).", 4 << 20,
          v -> intIn(v, 1024, 1 << 30)));
  public static final Setting<Integer> MAX_CLIENT_SESSIONS =
      add(new Setting<>("max_client_sessions",
          "Most client sessions at once; beyond, a new session is refused (BUSY), never a live one evicted.",
          100_000, v -> intIn(v, 1, 100_000_000)));
  public static final Setting<Integer> SESSION_TIMEOUT_MS =
      add(new Setting<>("session_timeout_ms",
          "A client session with no write for this long (by the log's replicated clock) expires.", 60_000,
          v -> intIn(v, 1000, 86_400_000)));
  public static final Setting<Integer> MAX_REPLIES_PER_CLIENT =
      add(new Setting<>("max_replies_per_client", "Saved replies kept per client for retries (above the client's max in flight).", 4096,
          v -> intIn(v, 1, 1_000_000)));
  public static final Setting<Integer> LOG_RETENTION_OPS =
      add(new Setting<>("log_retention_ops",
          "Applied log entries kept for repair and catch-up; older ones are truncated.", 100_000,
          v -> intIn(v, 1000, 100_000_000)));
  public static final Setting<Integer> LOG_RETENTION_MAX_OPS =
      add(new Setting<>("log_retention_max_ops",
          "Most log entries kept behind commit for a replica that is away; beyond, it needs a state transfer.",
          10_000_000, v -> intIn(v, 1000, 1_000_000_000)));
  // Issue 10, item 6 (core): what NACKs can make a replica resend.
  public static final Setting<Integer> RESEND_BYTES_PER_PEER_PER_SEC =
      add(new Setting<>("resend_bytes_per_peer_per_sec",
          "Resend bytes one replica's NACKs may cause per second (a token bucket holding 250 ms of it); 0: unbounded.",
          32 << 20, v -> intIn(v, 0, Integer.MAX_VALUE)));
  public static final Setting<Integer> RESEND_AMPLIFICATION_LIMIT =
      add(new Setting<>("resend_amplification_limit",
          "Without a cluster key: datagram resends to a replica at most this many times the bytes received in its name, and NACKs padded to earn them; 0: off.",
          10, v -> intIn(v, 0, 1000)));
  public static final Setting<Integer> READ_TIMEOUT_MS =
      add(new Setting<>("read_timeout_ms",
          "How long a read may wait for the applied state to reach what it needs.", 5000,
          v -> intIn(v, 1, 600_000)));
  public static final Setting<Integer> READ_THREADS =
      add(new Setting<>("read_threads", "Threads that execute reads against the applied state.", 2,
          v -> intIn(v, 1, 256)));
  public static final Setting<Integer> SHUTDOWN_TIMEOUT_MS =
      add(new Setting<>("shutdown_timeout_ms", "How long a graceful shutdown waits for work in flight.",
          5000, v -> intIn(v, 0, 600_000)));
  public static final Setting<Integer> TEST_MULTICAST_LOSS_PERCENT =
      add(new Setting<>("test_multicast_loss_percent",
          "TEST ONLY: drop this share of received multicast datagrams, to exercise NACK repair.", 0,
          v -> intIn(v, 0, 100)));
  public static final Setting<String> TEST_FAULT_FILE =
      add(new Setting<>("test_fault_file",
          "TEST ONLY: a file listing peer ids to cut off (both ways), re-read every 100 ms.", "",
          ServerConfig::string));
  public static final Setting<String> TEST_BREAK_PROTOCOL =
      add(new Setting<>("test_break_protocol",
          "TEST ONLY, breaks the protocol on purpose so tests can show their checks catch it: 'local-reads'"
              + " answers every read from local state; 'commit-alone' acknowledges a write once the primary"
              + " alone has it on disk; 'ack-before-fsync' acknowledges log writes before they are fsynced"
              + " (and restarts as if they were). 'off' is the only safe value.",
          "off", v -> oneOf(v, "off", "local-reads", "commit-alone", "ack-before-fsync")));
  public static final Setting<String> LOG_LEVEL =
      add(new Setting<>("log_level", "error, warn, info or debug.", "info",
          v -> oneOf(v, "error", "warn", "info", "debug", "trace")));

  private final Map<String, Object> values;
  private ClusterKeys keys;

  private ServerConfig(Map<String, Object> values) {
    this.values = values;
  }

  /** Every setting, in documentation order. */
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
    Map<String, Object> raw = new LinkedHashMap<>();
    if (file != null) {
      raw.putAll(readYaml(file));
    }
    return build(raw, overrides);
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
    config.validate();
    return config;
  }

  private static Map<String, Object> readYaml(Path file) {
    if (!Files.isReadable(file)) {
      throw new ConfigException(null, "config file " + file + " does not exist or is not readable");
    }
    try {
      ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
      Object tree = yaml.readValue(file.toFile(), Object.class);
      if (tree == null) {
        return Map.of();
      }
      if (!(tree instanceof Map<?, ?> map)) {
        throw new ConfigException(null, "config file " + file + " must be a YAML mapping of settings");
      }
      Map<String, Object> out = new LinkedHashMap<>();
      map.forEach((k, v) -> out.put(String.valueOf(k), v));
      return out;
    } catch (IOException e) {
      throw new ConfigException(null, "config file " + file + " is not valid YAML: " + e.getMessage());
    }
  }

  private void validate() {
    List<ReplicaAddress> replicas = replicas();
    ReplicaAddress self = self();
    if (self == null) {
      throw new ConfigException(
          REPLICA_ID.key(), "replica " + replicaId() + " is not in replicas " + replicas);
    }
    if (replicas.size() % 2 == 0) {
      throw new ConfigException(REPLICAS.key(),
          "the cluster needs an odd number of replicas (2f+1), got " + replicas.size());
    }
    if (maxFrameBytes() < maxKeyBytes() + maxValueBytes() + 256) {
      throw new ConfigException(MAX_FRAME_BYTES.key(), "must be at least max_key_bytes + max_value_bytes"
          + " + 256 (" + (maxKeyBytes() + maxValueBytes() + 256) + ") so the largest put fits a frame");
    }
    if (get(LOG_RETENTION_MAX_OPS) < logRetentionOps()) {
      throw new ConfigException(LOG_RETENTION_MAX_OPS.key(), "must be at least log_retention_ops ("
          + logRetentionOps() + ")");
    }
    if (electionTimeoutMs() <= 2 * heartbeatIntervalMs()) {
      throw new ConfigException(ELECTION_TIMEOUT_MS.key(),
          "must exceed twice heartbeat_interval_ms (" + heartbeatIntervalMs() + ")");
    }
    checkDataDir();
    checkPeerTrust();
  }

  /**
   * Without a key, any host that can reach the multicast group or a peer port can forge peer messages.
   * On loopback only local users can; anywhere else a key is required unless the operator says, by
   * the setting's name, that unauthenticated peers are accepted.
   */
  private void checkPeerTrust() {
    if (!get(CLUSTER_KEY_FILE).isEmpty()) {
      clusterKeys(); // a broken key file fails the configuration, not the first datagram
      return;
    }
    if (get(ACCEPT_UNAUTHENTICATED_PEERS)) {
      return;
    }
    String exposed = null;
    if (!isLoopbackInterface(get(MULTICAST_INTERFACE))) {
      exposed = "multicast_interface " + get(MULTICAST_INTERFACE) + " is not loopback";
    } else {
      for (ReplicaAddress r : replicas()) {
        if (!isLoopbackHost(r.peer().host())) {
          exposed = "replica " + r.id() + "'s peer address " + r.peer() + " is not on loopback";
          break;
        }
      }
    }
    if (exposed != null) {
      throw new ConfigException(CLUSTER_KEY_FILE.key(), exposed + ", so any host of that network could"
          + " forge peer messages: set cluster_key_file (`choir keygen --out FILE` writes one), or set "
          + ACCEPT_UNAUTHENTICATED_PEERS.key() + ": true to accept that");
    }
  }

  private static boolean isLoopbackInterface(String name) {
    try {
      NetworkInterface nif = NetworkInterface.getByName(name);
      return nif != null ? nif.isLoopback() : name.equals("lo");
    } catch (SocketException e) {
      return false;
    }
  }

  private static boolean isLoopbackHost(String host) {
    if (host.equals("localhost")) {
      return true;
    }
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    } catch (UnknownHostException e) {
      return false;
    }
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

  private void checkDataDir() {
    Path dir = dataDir();
    try {
      Files.createDirectories(dir);
    } catch (IOException | SecurityException e) {
      throw new ConfigException(DATA_DIR.key(), "cannot create " + dir.toAbsolutePath() + ": " + e);
    }
    if (!Files.isDirectory(dir) || !Files.isWritable(dir)) {
      throw new ConfigException(DATA_DIR.key(), dir.toAbsolutePath() + " is not a writable folder");
    }
  }

  @SuppressWarnings("unchecked")
  public <T> T get(Setting<T> setting) {
    return (T) values.get(setting.key());
  }

  /** Every value by key, for `choir server --print-config` and logs. */
  public Map<String, Object> asMap() {
    Map<String, Object> out = new TreeMap<>();
    values.forEach((k, v) -> out.put(k, v instanceof List<?> l ? l.stream().map(String::valueOf).toList()
        : v instanceof Enum<?> e ? e.name().toLowerCase(Locale.ROOT) : v));
    return out;
  }

  public String clusterId() {
    return get(CLUSTER_ID);
  }

  /** A 64-bit id of the cluster name, carried in every datagram header. */
  public long clusterIdHash() {
    long h = 0xcbf29ce484222325L; // FNV-1a 64: stable across JVMs, unlike String.hashCode's width
    for (byte b : clusterId().getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
      h ^= b & 0xff;
      h *= 0x100000001b3L;
    }
    return h;
  }

  public int replicaId() {
    return get(REPLICA_ID);
  }

  public List<ReplicaAddress> replicas() {
    return get(REPLICAS);
  }

  /** This replica's entry in replicas (never null after validation). */
  public ReplicaAddress self() {
    return replicas().stream().filter(r -> r.id() == replicaId()).findFirst().orElse(null);
  }

  /** Host the client port binds to. */
  public String listenHost() {
    String h = get(LISTEN_HOST);
    return h.isEmpty() ? self().client().host() : h;
  }

  public Path dataDir() {
    return Path.of(get(DATA_DIR));
  }

  public Durability durability() {
    return get(DURABILITY);
  }

  public int heartbeatIntervalMs() {
    return get(HEARTBEAT_INTERVAL_MS);
  }

  public int electionTimeoutMs() {
    return get(ELECTION_TIMEOUT_MS);
  }

  public int maxFrameBytes() {
    return get(MAX_FRAME_BYTES);
  }

  public int maxKeyBytes() {
    return get(MAX_KEY_BYTES);
  }

  public int maxValueBytes() {
    return get(MAX_VALUE_BYTES);
  }

  public int maxBatchOps() {
    return get(MAX_BATCH_OPS);
  }

  public int maxScanLimit() {
    return get(MAX_SCAN_LIMIT);
  }

  public int maxConnections() {
    return get(MAX_CONNECTIONS);
  }

  public int maxInFlightPerConnection() {
    return get(MAX_IN_FLIGHT_PER_CONNECTION);
  }

  public int clientIdleTimeoutMs() {
    return get(CLIENT_IDLE_TIMEOUT_MS);
  }

  public int clientWriteBufferBytes() {
    return get(CLIENT_WRITE_BUFFER_BYTES);
  }

  public int eventQueueCapacity() {
    return get(EVENT_QUEUE_CAPACITY);
  }

  public int maxInFlightOps() {
    return get(MAX_IN_FLIGHT_OPS);
  }

  public int maxInFlightBytes() {
    return get(MAX_IN_FLIGHT_BYTES);
  }

  public int maxQueuedRequests() {
    return get(MAX_QUEUED_REQUESTS);
  }

  public int maxBatchEntries() {
    return get(MAX_BATCH_ENTRIES);
  }

  public int maxBatchBytes() {
    return get(MAX_BATCH_BYTES);
  }

  public int maxClientSessions() {
    return get(MAX_CLIENT_SESSIONS);
  }

  public int maxRepliesPerClient() {
    return get(MAX_REPLIES_PER_CLIENT);
  }

  public int logRetentionOps() {
    return get(LOG_RETENTION_OPS);
  }

  public int readTimeoutMs() {
    return get(READ_TIMEOUT_MS);
  }

  public int readThreads() {
    return get(READ_THREADS);
  }

  public int shutdownTimeoutMs() {
    return get(SHUTDOWN_TIMEOUT_MS);
  }

  public String logLevel() {
    return get(LOG_LEVEL);
  }

  private static <T> Setting<T> add(Setting<T> s) {
    SETTINGS.put(s.key(), s);
    return s;
  }

  // Parsers: a raw value is a YAML scalar (String, Integer, Long, Boolean), a YAML list, or a flag's
  // String. Each refuses with the reason; Setting.parse adds the key.

  private static String string(Object v) {
    if (v instanceof Map<?, ?> || v instanceof List<?>) {
      throw new IllegalArgumentException("must be a single value, got " + v);
    }
    return String.valueOf(v).trim();
  }

  private static boolean bool(Object v) {
    if (v instanceof Boolean b) {
      return b;
    }
    String s = string(v).toLowerCase(Locale.ROOT);
    if (s.equals("true") || s.equals("false")) {
      return Boolean.parseBoolean(s);
    }
    throw new IllegalArgumentException("must be true or false, got '" + s + "'");
  }

  private static String nonEmptyString(Object v) {
    String s = string(v);
    if (s.isEmpty()) {
      throw new IllegalArgumentException("must not be empty");
    }
    return s;
  }

  private static String oneOf(Object v, String... allowed) {
    String s = nonEmptyString(v).toLowerCase(Locale.ROOT);
    for (String a : allowed) {
      if (a.equals(s)) {
        return s;
      }
    }
    throw new IllegalArgumentException("'" + s + "' is not one of " + List.of(allowed));
  }

  private static int intIn(Object v, int min, int max) {
    long n;
    if (v instanceof Number num && !(v instanceof Double) && !(v instanceof Float)) {
      n = num.longValue();
    } else {
      String s = string(v).replace("_", "");
      try {
        n = Long.parseLong(s);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("'" + v + "' is not a whole number");
      }
    }
    if (n < min || n > max) {
      throw new IllegalArgumentException(n + " is outside " + min + ".." + max);
    }
    return (int) n;
  }

  private static String multicastGroup(Object v) {
    HostPort hp = HostPort.parse(nonEmptyString(v));
    String[] parts = hp.host().split("\\.");
    int first;
    try {
      first = parts.length == 4 ? Integer.parseInt(parts[0]) : -1;
    } catch (NumberFormatException e) {
      first = -1;
    }
    if (first < 224 || first > 239) {
      throw new IllegalArgumentException("'" + v + "' is not an IPv4 multicast group:port (224-239.x.x.x)");
    }
    return hp.toString();
  }

  private static List<ReplicaAddress> replicas(Object v) {
    List<ReplicaAddress> out = new ArrayList<>();
    if (v instanceof List<?> list) {
      for (Object item : list) {
        if (item instanceof Map<?, ?> m) {
          Object id = m.get("id");
          Object client = m.get("client");
          Object peer = m.get("peer");
          if (id == null || client == null || peer == null || m.size() != 3) {
            throw new IllegalArgumentException("each replica needs exactly id, client and peer: " + m);
          }
          out.add(new ReplicaAddress(intIn(id, 1, 255), HostPort.parse(string(client)),
              HostPort.parse(string(peer))));
        } else {
          out.add(ReplicaAddress.parse(string(item)));
        }
      }
    } else {
      for (String part : nonEmptyString(v).split(",")) {
        out.add(ReplicaAddress.parse(part.trim()));
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("must list at least one replica");
    }
    if (out.size() > 7) {
      throw new IllegalArgumentException("at most 7 replicas are supported, got " + out.size());
    }
    TreeSet<Integer> ids = new TreeSet<>();
    TreeSet<String> addresses = new TreeSet<>();
    for (ReplicaAddress r : out) {
      if (!ids.add(r.id())) {
        throw new IllegalArgumentException("replica id " + r.id() + " appears twice");
      }
      if (!addresses.add(r.client().toString()) || !addresses.add(r.peer().toString())) {
        throw new IllegalArgumentException("address of replica " + r.id() + " is used twice");
      }
    }
    out.sort((a, b) -> Integer.compare(a.id(), b.id()));
    return List.copyOf(out);
  }
}
