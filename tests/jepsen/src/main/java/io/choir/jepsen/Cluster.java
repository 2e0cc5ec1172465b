package io.choir.jepsen;

import com.github.dockerjava.api.model.Bind;
import com.github.dockerjava.api.model.Capability;
import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;
import com.github.dockerjava.api.model.Volume;
import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import java.io.IOException;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.containers.wait.strategy.AbstractWaitStrategy;
import org.testcontainers.images.builder.Transferable;
import org.testcontainers.utility.DockerImageName;

/**
 * Cluster is N replica containers of the Choir image on one Docker bridge network of their own.
 *
 * <ul>
 *   <li>The network is a plain bridge (multicast passes; an {@code --internal} one would drop it) with a
 *       subnet picked per run, so every replica gets a static IP: it keeps it across a kill and restart,
 *       and every container lists every replica's name in /etc/hosts, so peer names resolve even while a
 *       peer is down (the server resolves its peers once, at start).
 *   <li>Each replica's configuration (see {@link NodeSpec#serverYaml}) puts multicast on the container's
 *       eth0 with TTL 1: datagrams stay on this bridge.
 *   <li>Containers get NET_ADMIN (nftables faults inside them), the labels of {@link Docker}, and their
 *       client port published on 127.0.0.1 only.
 *   <li>Killed replicas are restarted with {@code docker start}: same container, same data volume.
 *   <li>Each replica's data folder is a small file system of its own on the host ({@link DataDisks},
 *       {@link Settings#dataDiskMegabytes}), bind-mounted into the container: it survives kill and restart,
 *       and the disk-full nemesis can fill it. Without root the image's volume is used instead.
 * </ul>
 */
public final class Cluster implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Cluster.class);

  /**
   * Settings of a cluster.
   *
   * @param dataDiskMegabytes size of each replica's own data file system ({@link DataDisks}); 0 keeps the
   *     data in the image's volume (then disk-full cannot run)
   * @param tls true (the default): TLS on the client port, client certificates required, an access file
   *     ({@link ClusterTls}); false: plaintext clients
   */
  public record Settings(
      int nodes,
      String image,
      String runId,
      Map<String, Object> serverSettings,
      String javaOpts,
      Duration startTimeout,
      long dataDiskMegabytes,
      boolean tls) {
    /**
     * DATA_DISK_MB_DEFAULT: 256 MiB holds well over a million register ops (about 200 bytes of WAL
     * each), and the image is sparse, so it costs only what is written. System property
     * {@code choir.jepsen.dataDiskMb} overrides it; 0 turns the data disks off.
     */
    public static final long DATA_DISK_MB_DEFAULT = 256;

    /** Settings checks the node count. */
    public Settings {
      if (nodes != 1 && nodes != 3 && nodes != 5 && nodes != 7) {
        throw new IllegalArgumentException("nodes must be 1, 3, 5 or 7, got " + nodes);
      }
      if (dataDiskMegabytes != 0 && dataDiskMegabytes < 64) {
        throw new IllegalArgumentException("a data disk needs at least 64 MiB (RocksDB's files), got " + dataDiskMegabytes);
      }
      serverSettings = Collections.unmodifiableMap(new LinkedHashMap<>(serverSettings));
    }

    /**
     * Settings with the default data disks ({@link #DATA_DISK_MB_DEFAULT} or the system property) and TLS
     * on.
     */
    public Settings(int nodes, String image, String runId, Map<String, Object> serverSettings, String javaOpts,
        Duration startTimeout) {
      this(nodes, image, runId, serverSettings, javaOpts, startTimeout,
          Long.getLong("choir.jepsen.dataDiskMb", DATA_DISK_MB_DEFAULT), true);
    }

    /** defaults: {@code nodes} replicas of choir:latest with the server's defaults. */
    public static Settings defaults(int nodes, String runId) {
      return new Settings(nodes, System.getProperty("choir.jepsen.image", "choir:latest"), runId, Map.of(),
          "-Xms64m -Xmx256m", Duration.ofSeconds(90));
    }

    /** withServerSettings replaces the extra server settings. */
    public Settings withServerSettings(Map<String, Object> settings) {
      return new Settings(nodes, image, runId, settings, javaOpts, startTimeout, dataDiskMegabytes, tls);
    }

    /** withDataDiskMegabytes replaces the data disks' size (0: none). */
    public Settings withDataDiskMegabytes(long megabytes) {
      return new Settings(nodes, image, runId, serverSettings, javaOpts, startTimeout, megabytes, tls);
    }

    /** withTls turns TLS on the client port on or off. */
    public Settings withTls(boolean on) {
      return new Settings(nodes, image, runId, serverSettings, javaOpts, startTimeout, dataDiskMegabytes, on);
    }
  }

  /** Node is one replica: its spec and its container. */
  public static final class Node {
    private final NodeSpec spec;
    private final GenericContainer<?> container;

    Node(NodeSpec spec, GenericContainer<?> container) {
      this.spec = spec;
      this.container = container;
    }

    public int id() {
      return spec.id();
    }

    public String name() {
      return spec.name();
    }

    public String ip() {
      return spec.ip();
    }

    public String endpoint() {
      return spec.endpoint();
    }

    public NodeSpec spec() {
      return spec;
    }

    public String containerId() {
      return container.getContainerId();
    }

    @Override
    public String toString() {
      return spec.name();
    }
  }

  private final Settings settings;
  private final String clusterId;
  private final Network network;
  private final String subnet;
  private final List<Node> nodes;
  private final ChoirClient admin;
  private final DataDisks disks; // null: the image's volume
  private final ClusterTls tls; // null: plaintext clients
  private volatile boolean closed;

  private Cluster(Settings settings, String clusterId, Network network, String subnet, List<Node> nodes,
      DataDisks disks, ClusterTls tls) {
    this.settings = settings;
    this.clusterId = clusterId;
    this.network = network;
    this.subnet = subnet;
    this.nodes = List.copyOf(nodes);
    this.disks = disks;
    this.tls = tls;
    this.admin = clientBuilder(nodes.stream().map(Node::endpoint).toList())
        .requestTimeout(Duration.ofMillis(1500)).connectTimeout(Duration.ofMillis(500)).eventLoopThreads(1).build();
  }

  /**
   * start removes what dead runs left behind, creates the network and the containers, and waits until
   * every replica answers status and they agree on a primary.
   */
  public static Cluster start(Settings settings) {
    Docker.removeStale(false);
    String runId = settings.runId();
    Map<String, String> labels = Docker.labels(runId);
    String clusterId = "jepsen-" + runId;
    Network network = null;
    String subnet = null;
    RuntimeException last = null;
    Random random = new Random();
    for (int attempt = 0; attempt < 8 && network == null; attempt++) {
      String candidate = pickSubnet(random);
      String gateway = prefix(candidate) + ".1";
      Network n = Network.builder()
          .createNetworkCmdModifier(cmd -> {
            Map<String, String> all = new HashMap<>(cmd.getLabels() == null ? Map.of() : cmd.getLabels());
            all.putAll(labels);
            cmd.withName("choir-jepsen-" + runId)
                .withLabels(all)
                .withIpam(new com.github.dockerjava.api.model.Network.Ipam().withConfig(
                    new com.github.dockerjava.api.model.Network.Ipam.Config().withSubnet(candidate).withGateway(gateway)));
          })
          .build();
      try {
        n.getId(); // creates it
        network = n;
        subnet = candidate;
      } catch (RuntimeException e) {
        last = e;
        log.debug("network on {} refused: {}", candidate, e.toString());
      }
    }
    if (network == null) {
      throw new IllegalStateException("could not create a network for the run", last);
    }
    List<NodeSpec> specs = new ArrayList<>();
    List<Integer> ports = freePorts(settings.nodes());
    for (int i = 1; i <= settings.nodes(); i++) {
      specs.add(new NodeSpec(i, "n" + i, prefix(subnet) + "." + (10 + i), ports.get(i - 1)));
    }
    DataDisks disks = DataDisks.create(runId, specs.stream().map(NodeSpec::name).toList(),
        settings.dataDiskMegabytes()).orElse(null);
    List<Node> nodes = new ArrayList<>();
    SecureRandom secure = new SecureRandom();
    String clusterKey = NodeSpec.clusterKeyFile(secure);
    ClusterTls tls = settings.tls() ? ClusterTls.issue(runId, specs, secure) : null;
    for (NodeSpec spec : specs) {
      Path data = disks == null ? null : disks.hostPath(spec.name());
      nodes.add(new Node(spec, container(settings, clusterId, network, spec, specs, labels, data, clusterKey, tls)));
    }
    Cluster cluster = new Cluster(settings, clusterId, network, subnet, nodes, disks, tls);
    log.info("run {}: starting {} replicas of {} on {} ({}), clients {}", runId, nodes.size(), settings.image(),
        subnet, String.join(", ", nodes.stream().map(n -> n.name() + "=" + n.ip() + " client " + n.endpoint()).toList()),
        tls == null ? "in plaintext" : "over TLS with certificate CN=" + ClusterTls.CLIENT_CN);
    try {
      ExecutorService pool = Executors.newFixedThreadPool(nodes.size());
      try {
        List<Future<?>> starts = new ArrayList<>();
        for (Node n : nodes) {
          starts.add(pool.submit(() -> n.container.start()));
        }
        for (Future<?> f : starts) {
          f.get();
        }
      } finally {
        pool.shutdownNow();
      }
      cluster.awaitPrimary(settings.startTimeout());
    } catch (Exception e) {
      cluster.close();
      throw new IllegalStateException("cluster did not start: " + e, e);
    }
    return cluster;
  }

  private static GenericContainer<?> container(Settings settings, String clusterId, Network network,
      NodeSpec spec, List<NodeSpec> all, Map<String, String> labels, Path dataOnHost, String clusterKey,
      ClusterTls tls) {
    String yaml = spec.serverYaml(clusterId, all, tls != null, settings.serverSettings());
    GenericContainer<?> c = new GenericContainer<>(DockerImageName.parse(settings.image()));
    if (tls != null) {
      // the container runs as root, the replica too: root owns the copies; keys are readable by it alone
      c.withCopyToContainer(Transferable.of(ClusterTls.read(tls.serverCertFile(spec.name())), 0644), NodeSpec.TLS_CERT_PATH)
          .withCopyToContainer(Transferable.of(ClusterTls.read(tls.serverKeyFile(spec.name())), 0600), NodeSpec.TLS_KEY_PATH)
          .withCopyToContainer(Transferable.of(ClusterTls.read(tls.caFile()), 0644), NodeSpec.TLS_CA_PATH)
          .withCopyToContainer(Transferable.of(ClusterTls.accessFile().getBytes(StandardCharsets.UTF_8), 0644),
              NodeSpec.ACCESS_PATH);
    }

    c.withNetwork(network)
        .withNetworkAliases(spec.name())
        .withLabels(labels)
        .withEnv("CHOIR_JAVA_OPTS", settings.javaOpts())
        .withCopyToContainer(Transferable.of(yaml), NodeSpec.CONFIG_PATH)
        .withCopyToContainer(Transferable.of(clusterKey.getBytes(StandardCharsets.UTF_8), 0600), NodeSpec.KEY_PATH)
        .waitingFor(new AbstractWaitStrategy() {
          @Override
          protected void waitUntilReady() {
            // readiness is the cluster's: every replica answers status and a primary is elected
          }
        })
        .withCreateContainerCmdModifier(cmd -> {
          List<String> hosts = new ArrayList<>();
          for (NodeSpec other : all) {
            if (other.id() != spec.id()) {
              hosts.add(other.name() + ":" + other.ip());
            }
          }
          ExposedPort client = ExposedPort.tcp(spec.clientPort());
          cmd.withName("choir-jepsen-" + settings.runId() + "-" + spec.name())
              .withHostName(spec.name())
              .withIpv4Address(spec.ip())
              .withExposedPorts(client);
          HostConfig hc = cmd.getHostConfig();
          if (dataOnHost != null) {
            // a bind of the host folder, set on the create command: Testcontainers' withFileSystemBind
            // would first probe with an alpine container whether binds work, and that image cannot be pulled
            hc.withBinds(new Bind(dataOnHost.toString(), new Volume(NodeSpec.DATA_DIR)));
          }
          hc.withCapAdd(Capability.NET_ADMIN)
              .withExtraHosts(hosts.toArray(String[]::new))
              .withPortBindings(new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", spec.clientPort()), client));
        });
    return c;
  }

  /** settings are the settings the cluster was started with. */
  public Settings settings() {
    return settings;
  }

  /** clusterId is the servers' cluster_id. */
  public String clusterId() {
    return clusterId;
  }

  /** subnet is the run network's IPv4 subnet. */
  public String subnet() {
    return subnet;
  }

  /** nodes are the replicas in id order. */
  public List<Node> nodes() {
    return nodes;
  }

  /** node is replica {@code id}. */
  public Node node(int id) {
    return nodes.get(id - 1);
  }

  /** node is the replica named {@code name} (n1..). */
  public Node node(String name) {
    return nodes.stream().filter(n -> n.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no node " + name));
  }

  /** endpoints are the clients' endpoints (127.0.0.1:port) in id order. */
  public List<String> endpoints() {
    return nodes.stream().map(Node::endpoint).toList();
  }

  /** tls is the run's certificates, when the clients use TLS. */
  public Optional<ClusterTls> tls() {
    return Optional.ofNullable(tls);
  }

  /**
   * clientBuilder is a client builder for {@code endpoints} with the run's client security: every
   * ChoirClient of the harness is built from one, so all of them use TLS when the cluster does.
   */
  public ChoirClient.Builder clientBuilder(List<String> endpoints) {
    ChoirClient.Builder b = ChoirClient.builder().endpoints(endpoints);
    return tls == null ? b : tls.apply(b);
  }

  /**
   * client builds a client of the cluster whose first endpoint is {@code first} (the others follow in
   * ring order), so that different workers enter through different replicas.
   */
  public ChoirClient client(Node first, Duration requestTimeout) {
    List<String> eps = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      eps.add(nodes.get((first.id() - 1 + i) % nodes.size()).endpoint());
    }
    return clientBuilder(eps).requestTimeout(requestTimeout)
        .connectTimeout(Duration.ofMillis(Math.min(1000, requestTimeout.toMillis()))).eventLoopThreads(1).build();
  }

  /** status asks every replica for its status; a replica that does not answer maps to an error entry. */
  public Map<Node, ReplicaStatusResult> status() {
    List<ReplicaStatusResult> results = admin.status();
    Map<Node, ReplicaStatusResult> out = new LinkedHashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      out.put(nodes.get(i), results.get(i));
    }
    return out;
  }

  /**
   * primary is the replica that calls itself primary in the highest view a majority of the answering
   * replicas share, if any.
   */
  public Optional<Node> primary() {
    Map<Node, ReplicaStatusResult> status = status();
    Node best = null;
    long bestView = -1;
    for (Map.Entry<Node, ReplicaStatusResult> e : status.entrySet()) {
      ReplicaInfo info = e.getValue().info();
      if (info != null && "primary".equals(info.role()) && info.view() > bestView) {
        best = e.getKey();
        bestView = info.view();
      }
    }
    return Optional.ofNullable(best);
  }

  /**
   * awaitPrimary waits until every replica answers, a majority (the primary included) agrees on one view
   * and its primary, that primary calls itself primary, and a probe write through the clients' path
   * succeeds. Followers may still be {@code catching-up}: serving is what counts.
   */
  public Node awaitPrimary(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    String last = "no answer yet";
    while (System.nanoTime() < deadline) {
      Map<Node, ReplicaStatusResult> status = status();
      last = describe(status);
      Optional<Node> agreed = agreedPrimary(status);
      if (agreed.isPresent()) {
        try (ChoirClient probe = client(agreed.get(), Duration.ofSeconds(2))) {
          probe.put("_jepsen/ready", "1");
          return agreed.get();
        } catch (RuntimeException e) {
          last = last + "; probe write: " + e.getMessage();
        }
      }
      Thread.sleep(250);
    }
    throw new IllegalStateException("no serving primary within " + timeout.toSeconds() + " s: " + last);
  }

  /**
   * agreedPrimary is the primary of one status round when every replica answered and a majority, the
   * primary included, reports the same view and primary.
   */
  static Optional<Node> agreedPrimary(Map<Node, ReplicaStatusResult> status) {
    Map<String, Integer> votes = new HashMap<>();
    int answered = 0;
    for (ReplicaStatusResult r : status.values()) {
      if (r.info() != null) {
        answered++;
        if (!r.info().role().equals("view-change") && !r.info().role().equals("recovering")) {
          votes.merge(r.info().view() + "/" + r.info().primaryId(), 1, Integer::sum);
        }
      }
    }
    if (answered < status.size()) {
      return Optional.empty();
    }
    for (Map.Entry<String, Integer> v : votes.entrySet()) {
      if (v.getValue() > status.size() / 2) {
        int primaryId = Integer.parseInt(v.getKey().substring(v.getKey().indexOf('/') + 1));
        for (Map.Entry<Node, ReplicaStatusResult> e : status.entrySet()) {
          ReplicaInfo i = e.getValue().info();
          if (e.getKey().id() == primaryId && i != null && i.role().equals("primary")
              && (i.view() + "/" + i.primaryId()).equals(v.getKey())) {
            return Optional.of(e.getKey());
          }
        }
      }
    }
    return Optional.empty();
  }

  /** describe is a one-line summary of a status round, for logs and errors. */
  public static String describe(Map<Node, ReplicaStatusResult> status) {
    List<String> parts = new ArrayList<>();
    for (Map.Entry<Node, ReplicaStatusResult> e : status.entrySet()) {
      ReplicaInfo i = e.getValue().info();
      parts.add(e.getKey().name() + "=" + (i == null ? "down(" + e.getValue().error().getClass().getSimpleName() + ")"
          : i.role() + " v" + i.view() + " p" + i.primaryId() + " applied " + i.applied() + " sum "
              + Long.toHexString(i.checksum())));
    }
    return String.join(", ", parts);
  }

  /** exec runs a command in a node's container (it must be running, not paused). */
  public Docker.ExecResult exec(Node n, String... cmd) {
    return Docker.exec(n.containerId(), Duration.ofSeconds(20), cmd);
  }

  /** kill sends SIGKILL to the replica process (the container's main process), like kill -9. */
  public void kill(Node n) {
    Docker.kill(n.containerId(), "KILL");
  }

  /**
   * stop stops a replica cleanly, like {@code docker stop}: SIGTERM (the image's STOPSIGNAL), then
   * SIGKILL after {@code grace}; returns the container's exit code (0 for a clean shutdown, 137 when it
   * had to be killed).
   */
  public long stop(Node n, Duration grace) {
    Docker.stop(n.containerId(), grace);
    return exitCode(n);
  }

  /** exitCode is the exit code of the node's container's last run (meaningful once it stopped). */
  public long exitCode(Node n) {
    Long code = Docker.state(n.containerId()).getExitCodeLong();
    return code == null ? -1 : code;
  }

  /** dataDisks are the replicas' own data file systems, when the cluster has them. */
  public Optional<DataDisks> dataDisks() {
    return Optional.ofNullable(disks);
  }

  /** restart starts a killed replica's container again: same data, IP and port. */
  public void restart(Node n) {
    Docker.start(n.containerId());
  }

  /** pause freezes a replica (SIGSTOP-like, through the cgroup freezer). */
  public void pause(Node n) {
    Docker.pause(n.containerId());
  }

  /** unpause thaws a paused replica. */
  public void unpause(Node n) {
    Docker.unpause(n.containerId());
  }

  /** isRunning tells whether the node's container runs (paused counts as running). */
  public boolean isRunning(Node n) {
    Boolean running = Docker.state(n.containerId()).getRunning();
    return running != null && running;
  }

  /** isPaused tells whether the node's container is paused. */
  public boolean isPaused(Node n) {
    Boolean paused = Docker.state(n.containerId()).getPaused();
    return paused != null && paused;
  }

  /** saveLogs writes every node's docker logs to {@code dir}/n1.log ... */
  public void saveLogs(Path dir) {
    for (Node n : nodes) {
      try {
        Docker.saveLogs(n.containerId(), dir.resolve(n.name() + ".log"));
      } catch (IOException | RuntimeException e) {
        log.warn("could not save the logs of {}: {}", n, e.toString());
      }
    }
  }

  /**
   * close stops the admin client, removes the run's containers (with volumes) and network, and
   * unmounts and deletes the data disks.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      admin.close();
    } catch (RuntimeException e) {
      log.debug("admin client close: {}", e.toString());
    }
    Docker.removeRun(settings.runId());
    try {
      network.close();
    } catch (RuntimeException e) {
      log.debug("network close: {}", e.toString());
    }
    if (disks != null) {
      disks.close(); // after the containers that bind-mounted them are gone
    }
    if (tls != null) {
      tls.close();
    }
  }

  static String prefix(String subnet24) {
    String base = subnet24.substring(0, subnet24.indexOf('/'));
    return base.substring(0, base.lastIndexOf('.'));
  }

  /**
   * pickSubnet picks a /24 in 10.199.0.0/16 that overlaps neither a Docker network nor an address of
   * this host (its loopback and LAN included).
   */
  static String pickSubnet(Random random) {
    List<String> used = new ArrayList<>(Docker.subnetsInUse());
    try {
      for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        nif.getInterfaceAddresses().forEach(a -> {
          if (a.getAddress() instanceof java.net.Inet4Address) {
            used.add(a.getAddress().getHostAddress() + "/" + a.getNetworkPrefixLength());
          }
        });
      }
    } catch (java.net.SocketException e) {
      log.debug("listing interfaces: {}", e.toString());
    }
    for (int i = 0; i < 256; i++) {
      String candidate = "10.199." + random.nextInt(256) + ".0/24";
      if (used.stream().noneMatch(u -> Subnets.overlap(u, candidate))) {
        return candidate;
      }
    }
    throw new IllegalStateException("no free /24 in 10.199.0.0/16 (in use: " + used + ")");
  }

  /**
   * freePorts finds {@code n} distinct TCP ports that are free on 127.0.0.1 now, below Linux's ephemeral
   * range (32768-60999) so that no outgoing connection can take one while its replica restarts.
   */
  static List<Integer> freePorts(int n) {
    Random random = new Random();
    List<Integer> ports = new ArrayList<>();
    for (int tries = 0; ports.size() < n && tries < 1000; tries++) {
      int p = 20000 + random.nextInt(10000);
      if (ports.contains(p)) {
        continue;
      }
      try (ServerSocket s = new ServerSocket(p, 1, InetAddress.getLoopbackAddress())) {
        ports.add(s.getLocalPort());
      } catch (IOException e) {
        // in use: try another
      }
    }
    if (ports.size() < n) {
      throw new IllegalStateException("cannot find " + n + " free ports in 20000-29999");
    }
    return ports;
  }
}
