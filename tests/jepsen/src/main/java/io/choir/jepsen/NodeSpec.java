package io.choir.jepsen;

import java.security.SecureRandom;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * NodeSpec is everything about one replica container that is fixed before it starts: its id, its name on
 * the test network (n1..n5, also its host name and network alias), its static IP on the run's subnet, and
 * its client port.
 *
 * <p>Why the client port is not 7301 inside the container: a backup answers NOT_PRIMARY with the
 * primary's client address from {@code replicas}, and the Java client connects to that address as given
 * (it has no way to map it). The harness runs on the host, where {@code n2:7301} does not resolve. So each
 * replica's client address in {@code replicas} is the one the harness can reach, {@code 127.0.0.1:P}
 * with a free host port P, the replica listens on P inside its container ({@code listen_host: 0.0.0.0})
 * and Docker publishes 127.0.0.1:P to the container's P. A redirect then leads the client straight to
 * the primary. Replicas talk to each other only over their peer addresses {@code nK:7401} (and the
 * multicast group), which are in-network names.
 *
 * <p>A <em>joiner</em> is a replica the {@code member-replace} nemesis ({@link MembershipFaults}) starts
 * after the others: its configuration sets {@code join: true}, and its peer address is its IP, not its
 * name, because the replicas started before it have no line for it in their /etc/hosts.
 *
 * @param id the replica id, 1..n
 * @param name the host name and network alias, {@code n<id>}
 * @param ip the static IPv4 address on the run's network
 * @param clientPort the client port, the same on the host (bound to 127.0.0.1) and in the container
 * @param joiner true for a replica started later to join the running cluster ({@code join: true})
 */
public record NodeSpec(int id, String name, String ip, int clientPort, boolean joiner) {
  /** PEER_PORT is the UDP/TCP peer port of every replica (in-network only). */
  public static final int PEER_PORT = 7401;
  /** MULTICAST_GROUP is the group of PREPAREs; datagrams stay on the test network (TTL 1, eth0 of the containers). */
  public static final String MULTICAST_GROUP = "239.255.77.1:7500";
  /**
   * DATA_DIR is the replica's RocksDB folder: the replica's own data disk on the host, bind-mounted
   * ({@link DataDisks}), or else the image's volume; either is kept across container restarts.
   */
  public static final String DATA_DIR = "/var/lib/choir";
  /** CONFIG_PATH is where the image's default command reads its configuration. */
  public static final String CONFIG_PATH = "/etc/choir/choir.yaml";
  /** KEY_PATH is where the run's cluster key file is copied (mode 600: the replica refuses others). */
  public static final String KEY_PATH = "/etc/choir/cluster.key";
  /** TLS_CERT_PATH is where the replica's client-port certificate is copied ({@link ClusterTls}). */
  public static final String TLS_CERT_PATH = "/etc/choir/tls/server.crt";
  /** TLS_KEY_PATH is where that certificate's private key is copied (mode 600). */
  public static final String TLS_KEY_PATH = "/etc/choir/tls/server.key";
  /** TLS_CA_PATH is where the run's CA certificate is copied: it signs the harness's client certificate. */
  public static final String TLS_CA_PATH = "/etc/choir/tls/ca.crt";
  /** ACCESS_PATH is where the run's access file is copied ({@link ClusterTls#accessFile}). */
  public static final String ACCESS_PATH = "/etc/choir/access.yaml";

  /**
   * METRICS_ADDRESS is where every replica serves /metrics, /health and /ready: the container's own
   * loopback, on the port the image's choir-ready asks ({@link Readiness}); nothing outside reaches it.
   */
  public static final String METRICS_ADDRESS = "127.0.0.1:9300";

  /** NodeSpec of a replica of the first membership (not a joiner). */
  public NodeSpec(int id, String name, String ip, int clientPort) {
    this(id, name, ip, clientPort, false);
  }

  /**
   * clusterKeyFile is the text of a fresh cluster key file: key id 1 and 32 random bytes in base64, the
   * format `choir keygen` writes (NodeSpecTest checks that the server reads it).
   */
  public static String clusterKeyFile(SecureRandom random) {
    byte[] key = new byte[32];
    random.nextBytes(key);
    return "# cluster key of one harness run\n1 " + Base64.getEncoder().encodeToString(key) + "\n";
  }

  /** endpoint is the address the harness's clients use: {@code 127.0.0.1:<clientPort>}. */
  public String endpoint() {
    return "127.0.0.1:" + clientPort;
  }

  /**
   * peerAddress is the replica's peer address: {@code nK:7401}, or {@code <ip>:7401} for a joiner (only
   * the containers started after it list its name in /etc/hosts).
   */
  public String peerAddress() {
    return (joiner ? ip : name) + ":" + PEER_PORT;
  }

  /** replicaEntry is this replica's line of {@code replicas}: {@code id=client/peer}. */
  public String replicaEntry() {
    return id + "=" + endpoint() + "/" + peerAddress();
  }

  /**
   * serverYaml is the configuration file of replica {@code self} of {@code all}: multicast on the
   * container's eth0 (the test network; never set outside a container), peers by host name.
   *
   * <p>For a joiner, {@code all} is the voters of the cluster's current epoch plus itself, and the
   * file sets {@code join: true} (docs/design.md "Membership", "Starting a new replica").
   *
   * @param clusterId a per-run cluster id, so stray datagrams of another run are dropped
   * @param all every replica of the cluster (for a joiner: the current voters and itself)
   * @param tls true: TLS on the client port with client certificates required and the access file
   *     ({@link ClusterTls} writes the files); false: plaintext clients, accepted by name
   * @param extra further settings (e.g. election_timeout_ms), written last
   */
  public String serverYaml(String clusterId, List<NodeSpec> all, boolean tls, Map<String, Object> extra) {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("cluster_id", clusterId);
    settings.put("replica_id", id);
    settings.put("listen_host", "0.0.0.0");
    settings.put("data_dir", DATA_DIR);
    settings.put("durability", "fsync");
    settings.put("multicast_group", MULTICAST_GROUP);
    settings.put("multicast_interface", "eth0");
    settings.put("multicast_ttl", 1);
    // Every run has its own cluster key (Cluster writes it to KEY_PATH): peers seal their datagrams and
    // prove their streams with it, as a cluster on a LAN must.
    settings.put("cluster_key_file", KEY_PATH);
    settings.put("metrics_address", METRICS_ADDRESS);
    if (joiner) {
      settings.put("join", true);
    }
    if (tls) {
      // Clients over TLS with a certificate of the run's CA (mutual TLS), and the access file: the harness's
      // every request passes the checks a production client's do. The replica listens on 0.0.0.0 (Docker
      // publishes its port), which is not loopback: without TLS it would refuse to start.
      settings.put("client_tls_cert_file", TLS_CERT_PATH);
      settings.put("client_tls_key_file", TLS_KEY_PATH);
      settings.put("client_tls_ca_file", TLS_CA_PATH);
      settings.put("client_auth", "require");
      settings.put("access_file", ACCESS_PATH);
    } else {
      // --plaintext: the clients reach the replicas through ports Docker publishes on the host's loopback only.
      settings.put("accept_plaintext_clients", true);
    }
    settings.putAll(extra);
    StringBuilder sb = new StringBuilder("# generated by the Choir failure-injection harness (io.choir.jepsen)\n");
    sb.append("replicas:\n");
    for (NodeSpec n : all) {
      sb.append("  - \"").append(n.replicaEntry()).append("\"\n");
    }
    for (Map.Entry<String, Object> e : settings.entrySet()) {
      if (e.getKey().equals("replicas")) {
        throw new IllegalArgumentException("replicas is generated by the harness");
      }
      Object v = e.getValue();
      sb.append(e.getKey()).append(": ");
      if (v instanceof Number || v instanceof Boolean) {
        sb.append(v);
      } else {
        sb.append('"').append(String.valueOf(v).replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
      }
      sb.append('\n');
    }
    return sb.toString();
  }
}
