package io.choir.jepsen;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaStatusResult;
import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.testcontainers.containers.GenericContainer;

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
 *       {@link ClusterSettings#dataDiskMegabytes}), bind-mounted into the container: it survives kill and
 *       restart, and the disk-full nemesis can fill it. Without root the image's volume is used instead.
 * </ul>
 *
 * <p>The members change when the {@code member-replace} nemesis ({@link MembershipFaults}) replaces a
 * voter: {@link #nodes()} is the current voters (what faults target, what is healed, read and checked
 * for convergence), {@link #everyNode()} every replica ever started (logs, and every container is
 * removed at close, by the run's label). A joiner is started by {@link #startJoiner()} and becomes a
 * member by {@link #replaced}.
 *
 * <p>Its parts: {@link ClusterSettings}, {@link ClusterNetwork} (the network and the replicas'
 * addresses), {@link ReplicaContainers} (one replica's container) and {@link StatusRound} (reading the
 * replicas' status answers).
 */
public final class Cluster implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Cluster.class);

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

  /** Members is the current voters (id order) and the status client that asks exactly them. */
  private record Members(List<Node> nodes, ChoirClient admin) {}

  private final ClusterSettings settings;
  private final String clusterId;
  private final ClusterNetwork network;
  private final Map<String, String> labels;
  private final String clusterKey;
  private final List<Node> everyNode = new CopyOnWriteArrayList<>();
  private final List<ChoirClient> oldAdmins = new CopyOnWriteArrayList<>(); // closed at close: calls may be in flight
  private final Map<String, String> successors = new ConcurrentHashMap<>(); // removed node -> its replacement
  private volatile Members members;
  private final DataDisks disks; // null: the image's volume
  private final ClusterTls tls; // null: plaintext clients
  private volatile boolean closed;

  private Cluster(ClusterSettings settings, String clusterId, ClusterNetwork network, Map<String, String> labels,
      String clusterKey, List<Node> nodes, DataDisks disks, ClusterTls tls) {
    this.settings = settings;
    this.clusterId = clusterId;
    this.network = network;
    this.labels = Map.copyOf(labels);
    this.clusterKey = clusterKey;
    this.everyNode.addAll(nodes);
    this.disks = disks;
    this.tls = tls;
    this.members = members(nodes);
  }

  private Members members(List<Node> voters) {
    List<Node> sorted = voters.stream().sorted(Comparator.comparingInt(Node::id)).toList();
    return new Members(sorted, clientBuilder(sorted.stream().map(Node::endpoint).toList())
        .requestTimeout(Duration.ofMillis(1500)).connectTimeout(Duration.ofMillis(500)).eventLoopThreads(1).build());
  }

  /**
   * start removes what dead runs left behind, creates the network and the containers, and waits until
   * every replica answers status and they agree on a primary.
   */
  public static Cluster start(ClusterSettings settings) {
    Docker.removeStale(false);
    String runId = settings.runId();
    Map<String, String> labels = Docker.labels(runId);
    String clusterId = "jepsen-" + runId;
    ClusterNetwork network = ClusterNetwork.create(runId, labels);
    List<NodeSpec> specs = network.specs(settings.nodes());
    DataDisks disks = DataDisks.create(runId, specs.stream().map(NodeSpec::name).toList(),
        settings.dataDiskMegabytes()).orElse(null);
    List<Node> nodes = new ArrayList<>();
    SecureRandom secure = new SecureRandom();
    String clusterKey = NodeSpec.clusterKeyFile(secure);
    ClusterTls tls = settings.tls() ? ClusterTls.issue(runId, specs, secure) : null;
    for (NodeSpec spec : specs) {
      Path data = disks == null ? null : disks.hostPath(spec.name());
      nodes.add(new Node(spec, ReplicaContainers.create(settings, clusterId, network.network(), spec, specs, labels,
          data, clusterKey, tls)));
    }
    Cluster cluster = new Cluster(settings, clusterId, network, labels, clusterKey, nodes, disks, tls);
    log.info("run {}: starting {} replicas of {} on {} ({}), clients {}", runId, nodes.size(), settings.image(),
        network.subnet(),
        String.join(", ", nodes.stream().map(n -> n.name() + "=" + n.ip() + " client " + n.endpoint()).toList()),
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
      // ready: a majority answers 200 to /ready (docs/metrics.md); then the primary, found by a status
      // round, must take a probe write. Where /ready cannot serve, the status rounds alone decide.
      Readiness ready = Readiness.await(cluster, nodes, nodes.size() / 2 + 1, settings.startTimeout());
      log.info("run {}: {}", settings.runId(), ready.describe());
      cluster.awaitPrimary(settings.startTimeout());
    } catch (Exception e) {
      cluster.close();
      throw new IllegalStateException("cluster did not start: " + e, e);
    }
    return cluster;
  }

  /** settings are the settings the cluster was started with. */
  public ClusterSettings settings() {
    return settings;
  }

  /** clusterId is the servers' cluster_id. */
  public String clusterId() {
    return clusterId;
  }

  /** subnet is the run network's IPv4 subnet. */
  public String subnet() {
    return network.subnet();
  }

  /** nodes are the current members (the voters) in id order: n1..nN until a replacement. */
  public List<Node> nodes() {
    return members.nodes();
  }

  /** everyNode is every replica ever started, members or not (removed ones, joiners), in start order. */
  public List<Node> everyNode() {
    return List.copyOf(everyNode);
  }

  /** node is replica {@code id} (a member or not). */
  public Node node(int id) {
    return everyNode.stream().filter(n -> n.id() == id).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no node " + id));
  }

  /** node is the replica named {@code name} (n1..; a member or not). */
  public Node node(String name) {
    return everyNode.stream().filter(n -> n.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no node " + name));
  }

  /** endpoints are the current members' client endpoints (127.0.0.1:port) in id order. */
  public List<String> endpoints() {
    return nodes().stream().map(Node::endpoint).toList();
  }

  /**
   * startJoiner starts a fresh replica to join the cluster: the next unused id and IP, a free client port,
   * its own data disk (when the cluster has them) and certificate, the run's key, and a configuration with
   * {@code join: true} whose {@code replicas} are the current members plus itself. It is no member until
   * {@link #replaced}; its container is removed at close like every other.
   */
  public synchronized Node startJoiner() throws IOException {
    List<NodeSpec> ever = everyNode.stream().map(Node::spec).toList();
    int id = ever.stream().mapToInt(NodeSpec::id).max().orElse(0) + 1;
    NodeSpec spec = network.joinerSpec(id, ever.stream().map(NodeSpec::clientPort).toList());
    if (tls != null) {
      tls.issueServer(spec);
    }
    Path data = disks == null ? null : disks.add(spec.name());
    List<NodeSpec> replicas = new ArrayList<>(nodes().stream().map(Node::spec).toList());
    replicas.add(spec);
    List<NodeSpec> hosts = new ArrayList<>(ever);
    hosts.add(spec);
    Node n = new Node(spec, ReplicaContainers.create(settings, clusterId, network.network(), spec, replicas, hosts,
        labels, data, clusterKey, tls));
    everyNode.add(n);
    n.container.start();
    log.atInfo().setMessage("joiner started").addKeyValue("node", spec.name()).addKeyValue("ip", spec.ip())
        .addKeyValue("client", spec.endpoint()).addKeyValue("replicas", replicas.size() - 1 + " members").log();
    return n;
  }

  /**
   * replaced records that {@code removed} is no member any more and {@code replacement} is: the members,
   * the status client and the clients of workers that entered through {@code removed} follow.
   */
  public synchronized void replaced(Node removed, Node replacement) {
    List<Node> next = new ArrayList<>(nodes());
    next.remove(removed);
    if (!next.contains(replacement)) {
      next.add(replacement);
    }
    successors.put(removed.name(), replacement.name());
    Members old = members;
    members = members(next);
    oldAdmins.add(old.admin());
  }

  /** isMember tells whether {@code n} is one of the current members. */
  public boolean isMember(Node n) {
    return nodes().contains(n);
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
    String name = first.name();
    for (String next = successors.get(name); next != null; next = successors.get(name)) {
      name = next; // a worker that entered through a removed replica enters through its replacement
    }
    List<Node> nodes = nodes();
    int at = Math.max(0, nodes.indexOf(node(name)));
    List<String> eps = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      eps.add(nodes.get((at + i) % nodes.size()).endpoint());
    }
    return clientBuilder(eps).requestTimeout(requestTimeout)
        .connectTimeout(Duration.ofMillis(Math.min(1000, requestTimeout.toMillis()))).eventLoopThreads(1).build();
  }

  /**
   * status asks every current member for its status; a replica that does not answer maps to an error
   * entry.
   */
  public Map<Node, ReplicaStatusResult> status() {
    Members m = members;
    List<ReplicaStatusResult> results = m.admin().status();
    Map<Node, ReplicaStatusResult> out = new LinkedHashMap<>();
    for (int i = 0; i < m.nodes().size(); i++) {
      out.put(m.nodes().get(i), results.get(i));
    }
    return out;
  }

  /** status asks one replica, a member or not, for its status. */
  public ReplicaStatusResult status(Node n) {
    return members.admin().status(n.endpoint());
  }

  /**
   * primary is the replica that calls itself primary in the highest view a majority of the answering
   * replicas share, if any.
   */
  public Optional<Node> primary() {
    return StatusRound.highestPrimary(status());
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
      last = StatusRound.describe(status);
      Optional<Node> agreed = StatusRound.agreedPrimary(status);
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

  /** saveLogs writes every node's docker logs (removed ones and joiners too) to {@code dir}/n1.log ... */
  public void saveLogs(Path dir) {
    for (Node n : everyNode) {
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
    oldAdmins.add(members.admin());
    for (ChoirClient admin : oldAdmins) {
      try {
        admin.close();
      } catch (RuntimeException e) {
        log.debug("admin client close: {}", e.toString());
      }
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
}
