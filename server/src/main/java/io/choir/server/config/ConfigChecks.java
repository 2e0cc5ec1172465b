package io.choir.server.config;

import static io.choir.server.config.ServerConfig.ACCEPT_UNAUTHENTICATED_PEERS;
import static io.choir.server.config.ServerConfig.CLUSTER_KEY_FILE;
import static io.choir.server.config.ServerConfig.DATA_DIR;
import static io.choir.server.config.ServerConfig.ELECTION_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.HEARTBEAT_INTERVAL_MS;
import static io.choir.server.config.ServerConfig.JOIN;
import static io.choir.server.config.ServerConfig.LOG_RETENTION_MAX_OPS;
import static io.choir.server.config.ServerConfig.LOG_RETENTION_OPS;
import static io.choir.server.config.ServerConfig.MAX_FRAME_BYTES;
import static io.choir.server.config.ServerConfig.MAX_KEY_BYTES;
import static io.choir.server.config.ServerConfig.MAX_VALUE_BYTES;
import static io.choir.server.config.ServerConfig.MULTICAST_INTERFACE;
import static io.choir.server.config.ServerConfig.REPLICAS;
import static io.choir.server.config.ServerConfig.REPLICA_ID;

import java.io.IOException;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * ConfigChecks holds the rules that no single setting's {@link Range} can say: those between settings
 * (this replica is a member, the membership is odd, a put fits a frame, retention and timer order) and
 * those about the machine (the data folder is writable, peers are authenticated off loopback). They run
 * once every value is parsed, and refuse with a {@link ConfigException} naming the setting to change.
 */
final class ConfigChecks {
  private ConfigChecks() {
  }

  static void check(ServerConfig c) {
    List<ReplicaAddress> replicas = c.get(REPLICAS);
    if (c.self() == null) {
      throw new ConfigException(
          REPLICA_ID.key(), "replica " + c.get(REPLICA_ID) + " is not in replicas " + replicas);
    }
    if (c.get(JOIN)) {
      if (replicas.size() < 2) {
        throw new ConfigException(JOIN.key(), "a joiner's replicas must list the cluster's current voters"
            + " besides itself, got only " + replicas);
      }
    } else if (replicas.size() % 2 == 0) {
      throw new ConfigException(REPLICAS.key(),
          "the cluster needs an odd number of replicas (2f+1), got " + replicas.size());
    }
    int largestPut = c.get(MAX_KEY_BYTES) + c.get(MAX_VALUE_BYTES) + 256;
    if (c.get(MAX_FRAME_BYTES) < largestPut) {
      throw new ConfigException(MAX_FRAME_BYTES.key(), "must be at least max_key_bytes + max_value_bytes"
          + " + 256 (" + largestPut + ") so the largest put fits a frame");
    }
    if (c.get(LOG_RETENTION_MAX_OPS) < c.get(LOG_RETENTION_OPS)) {
      throw new ConfigException(LOG_RETENTION_MAX_OPS.key(), "must be at least log_retention_ops ("
          + c.get(LOG_RETENTION_OPS) + ")");
    }
    if (c.get(ELECTION_TIMEOUT_MS) <= 2 * c.get(HEARTBEAT_INTERVAL_MS)) {
      throw new ConfigException(ELECTION_TIMEOUT_MS.key(),
          "must exceed twice heartbeat_interval_ms (" + c.get(HEARTBEAT_INTERVAL_MS) + ")");
    }
    checkDataDir(c.dataDir());
    checkPeerTrust(c);
  }

  /**
   * Without a key, any host that can reach the multicast group or a peer port can forge peer messages.
   * On loopback only local users can; anywhere else a key is required unless the operator says, by
   * the setting's name, that unauthenticated peers are accepted.
   */
  private static void checkPeerTrust(ServerConfig c) {
    if (!c.get(CLUSTER_KEY_FILE).isEmpty()) {
      c.clusterKeys(); // a broken key file fails the configuration, not the first datagram
      return;
    }
    if (c.get(ACCEPT_UNAUTHENTICATED_PEERS)) {
      return;
    }
    String exposed = null;
    if (!isLoopbackInterface(c.get(MULTICAST_INTERFACE))) {
      exposed = "multicast_interface " + c.get(MULTICAST_INTERFACE) + " is not loopback";
    } else {
      for (ReplicaAddress r : c.get(REPLICAS)) {
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

  private static void checkDataDir(Path dir) {
    try {
      Files.createDirectories(dir);
    } catch (IOException | SecurityException e) {
      throw new ConfigException(DATA_DIR.key(), "cannot create " + dir.toAbsolutePath() + ": " + e);
    }
    if (!Files.isDirectory(dir) || !Files.isWritable(dir)) {
      throw new ConfigException(DATA_DIR.key(), dir.toAbsolutePath() + " is not a writable folder");
    }
  }
}
