package io.choir.tests;

import static org.junit.jupiter.api.Assertions.fail;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import io.choir.server.security.ClusterKeys;
import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * ProcessCluster runs the replicas of one cluster as real processes on loopback, each with a test fault
 * file (test_fault_file: the peer ids it cuts off, both ways, re-read every 100 ms).
 *
 * <p>Several JVMs of this machine run process tests at once (other test classes, other checkouts), so a
 * cluster gets its own block of ports, its own cluster_id and its own multicast port: the block is
 * reserved by an OS file lock under java.io.tmpdir (released when the JVM ends, even by kill -9) and
 * every port of it is probed free before use. The blocks lie below the ephemeral range (32768+), so no
 * outgoing connection can take a port while a replica is down and being restarted, and above the fixed
 * ranges of the older process tests (10000-16200 and 20000-26200).
 */
final class ProcessCluster implements AutoCloseable {
  private static final Path LOCKS = Path.of(System.getProperty("java.io.tmpdir"), "choir-e2e-ports");
  private static final int FIRST_PORT = 27_000;
  private static final int BLOCK = 16; // clients, peers (TCP and UDP) and multicast of up to 7 replicas
  private static final int BLOCKS = 350; // 27000..32599

  private final Path dir;
  private final int size;
  private final String clusterId;
  private final int base;
  private final FileChannel lockFile;
  private final List<ReplicaProcess> replicas = new ArrayList<>();
  private final List<String> endpoints = new ArrayList<>();

  /**
   * Writes the configs of size replicas into dir (nothing starts yet). extraYaml is appended to every
   * config; jvmOptions are each replica JVM's options (e.g. "-Xmx1g").
   */
  ProcessCluster(Path dir, String name, int size, String extraYaml, List<String> jvmOptions) throws IOException {
    this.dir = dir;
    this.size = size;
    Files.createDirectories(LOCKS);
    SplittableRandom random = new SplittableRandom(System.nanoTime() ^ ProcessHandle.current().pid());
    FileChannel locked = null;
    int chosen = -1;
    for (int attempt = 0; attempt < 4 * BLOCKS && locked == null; attempt++) {
      int b = FIRST_PORT + BLOCK * random.nextInt(BLOCKS);
      FileChannel ch = FileChannel.open(LOCKS.resolve(b + ".lock"), StandardOpenOption.CREATE,
          StandardOpenOption.WRITE);
      FileLock lock;
      try {
        lock = ch.tryLock();
      } catch (OverlappingFileLockException sameJvm) {
        lock = null;
      }
      if (lock != null && allFree(b, 2 * size + 1)) {
        locked = ch;
        chosen = b;
      } else {
        ch.close();
      }
    }
    if (locked == null) {
      throw new IllegalStateException("no free block of ports in " + FIRST_PORT + ".." + (FIRST_PORT + BLOCK * BLOCKS));
    }
    this.lockFile = locked;
    this.base = chosen;
    this.clusterId = name + "-" + base;
    StringBuilder members = new StringBuilder();
    for (int i = 1; i <= size; i++) {
      members.append("  - id: ").append(i).append('\n')
          .append("    client: 127.0.0.1:").append(clientPort(i)).append('\n')
          .append("    peer: 127.0.0.1:").append(peerPort(i)).append('\n');
    }
    for (int i = 1; i <= size; i++) {
      Path yaml = dir.resolve("node" + i + ".yaml");
      Files.writeString(yaml, "cluster_id: " + clusterId + "\n"
          + "replica_id: " + i + "\n"
          + "replicas:\n" + members
          + "data_dir: " + dir.toAbsolutePath().resolve("data").resolve("node" + i) + "\n"
          + "durability: fsync\n"
          + "multicast_group: 239.255.77.1:" + (base + 2 * size) + "\n"
          + "multicast_interface: lo\n"
          + "max_datagram_bytes: 60000\n"
          + "log_level: warn\n"
          + "test_fault_file: " + faultFile(i) + "\n"
          + extraYaml);
      Files.writeString(faultFile(i), "");
      endpoints.add("127.0.0.1:" + clientPort(i));
      replicas.add(new ReplicaProcess(yaml, log(i), clientPort(i), jvmOptions));
    }
  }

  /**
   * Like the main constructor, with every replica's cluster_key_file set to keyFile (written with
   * {@link #writeKeyFile}; rewrite it and restart a replica to rotate keys).
   */
  ProcessCluster(Path dir, String name, int size, String extraYaml, List<String> jvmOptions, Path keyFile)
      throws IOException {
    this(dir, name, size, "cluster_key_file: " + keyFile.toAbsolutePath() + "\n" + extraYaml, jvmOptions);
  }

  /** Writes keys to file, owner-only, as `choir keygen` does. */
  static void writeKeyFile(Path file, ClusterKeys keys) throws IOException {
    keys.write(file);
  }

  /** Three replicas with the default JVM options (-Xmx512m). */
  ProcessCluster(Path dir, String name, String extraYaml) throws IOException {
    this(dir, name, 3, extraYaml, List.of("-Xmx512m"));
  }

  private static boolean allFree(int from, int count) {
    InetAddress lo = InetAddress.getLoopbackAddress();
    for (int p = from; p < from + count; p++) {
      try (ServerSocket tcp = new ServerSocket()) {
        tcp.bind(new InetSocketAddress(lo, p));
      } catch (IOException taken) {
        return false;
      }
      // The wildcard address: a multicast socket of another cluster binds the group address, not lo.
      try (DatagramSocket udp = new DatagramSocket(new InetSocketAddress(p))) {
        udp.getLocalPort();
      } catch (IOException taken) {
        return false;
      }
    }
    return true;
  }

  private int clientPort(int id) {
    return base + id - 1;
  }

  /** Replica id's peer port (UDP datagrams and the TCP peer connection). */
  int peerPort(int id) {
    return base + size + id - 1;
  }

  private Path faultFile(int id) {
    return dir.resolve("faults" + id);
  }

  Path log(int id) {
    return dir.resolve("node" + id + ".log");
  }

  /** The multicast group's port (the group is 239.255.77.1 on lo). */
  int multicastPort() {
    return base + 2 * size;
  }

  int size() {
    return size;
  }

  String clusterId() {
    return clusterId;
  }

  List<String> endpoints() {
    return List.copyOf(endpoints);
  }

  String endpoint(int id) {
    return endpoints.get(id - 1);
  }

  ReplicaProcess replica(int id) {
    return replicas.get(id - 1);
  }

  /** Starts every replica at once (a JVM takes seconds to start on a loaded machine) and waits for all. */
  void startAll() throws IOException, InterruptedException {
    List<Thread> starters = new ArrayList<>();
    List<Exception> failures = Collections.synchronizedList(new ArrayList<>());
    for (ReplicaProcess r : replicas) {
      Thread t = new Thread(() -> {
        try {
          r.start();
        } catch (Exception e) {
          failures.add(e);
        }
      });
      t.start();
      starters.add(t);
    }
    for (Thread t : starters) {
      t.join();
    }
    if (!failures.isEmpty()) {
      throw new IllegalStateException("a replica did not start", failures.get(0));
    }
  }

  /** A client of every endpoint with the given request timeout; the caller closes it. */
  ChoirClient client(Duration requestTimeout) {
    return ChoirClient.builder().endpoints(endpoints).requestTimeout(requestTimeout).build();
  }

  /** Writes replica id's fault file: it drops everything to and from peers. */
  void cut(int id, List<Integer> peers) throws IOException {
    Files.writeString(faultFile(id), peers.stream().map(String::valueOf).collect(Collectors.joining(",")));
  }

  /** Cuts replica id off from every other replica, both ways (clients still reach everyone). */
  void isolate(int id) throws IOException {
    for (int i = 1; i <= size; i++) {
      int self = i;
      cut(i, i == id ? IntStream.rangeClosed(1, size).filter(x -> x != self).boxed().toList() : List.of(id));
    }
  }

  /** Empties every fault file. */
  void healAll() throws IOException {
    for (int i = 1; i <= size; i++) {
      cut(i, List.of());
    }
  }

  /** Each replica's status in id order; null where a replica did not answer. */
  List<ReplicaInfo> statuses(ChoirClient c) {
    List<ReplicaInfo> out = new ArrayList<>();
    for (String ep : endpoints) {
      ReplicaStatusResult r = c.status(ep);
      out.add(r.isOk() ? r.info() : null);
    }
    return out;
  }

  /** Replica id's status, or null if it did not answer. */
  ReplicaInfo status(ChoirClient c, int id) {
    ReplicaStatusResult r = c.status(endpoint(id));
    return r.isOk() ? r.info() : null;
  }

  /** The id of the replica that says it is primary in the highest view, waiting up to timeout. */
  int awaitPrimary(ChoirClient c, Duration timeout) throws InterruptedException {
    return awaitPrimary(() -> statuses(c), timeout);
  }

  /**
   * The id of the replica that says it is primary in the highest view among what statuses returns
   * (null: no answer), asked again until one does or timeout passes (NetnsCluster shares it).
   */
  static int awaitPrimary(Supplier<List<ReplicaInfo>> statuses, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<ReplicaInfo> last = List.of();
    while (System.nanoTime() < deadline) {
      last = statuses.get();
      ReplicaInfo best = null;
      for (ReplicaInfo r : last) {
        if (r != null && r.role().equals("primary") && (best == null || r.view() > best.view())) {
          best = r;
        }
      }
      if (best != null) {
        return best.id();
      }
      TimeUnit.MILLISECONDS.sleep(50); // polling status: no event to wait on from outside
    }
    fail("no primary within " + timeout + ": " + last);
    return -1;
  }

  /**
   * Waits until every replica answers in the same view, exactly one is primary and the others backups,
   * and all have applied everything committed, with the same checksum; returns their statuses.
   */
  List<ReplicaInfo> awaitConverged(ChoirClient c, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<ReplicaInfo> last = List.of();
    while (System.nanoTime() < deadline) {
      last = statuses(c);
      if (converged(last)) {
        return last;
      }
      TimeUnit.MILLISECONDS.sleep(100); // polling status; convergence has no event to wait on from here
    }
    fail("replicas did not converge in " + timeout + ": " + last);
    return last;
  }

  static boolean converged(List<ReplicaInfo> s) {
    return s.stream().allMatch(r -> r != null)
        && s.stream().map(ReplicaInfo::view).distinct().count() == 1
        && s.stream().map(ReplicaInfo::applied).distinct().count() == 1
        && s.stream().map(ReplicaInfo::checksum).distinct().count() == 1
        && s.stream().allMatch(r -> r.applied() == r.commit())
        && s.stream().filter(r -> r.role().equals("primary")).count() == 1
        && s.stream().filter(r -> r.role().equals("backup")).count() == s.size() - 1;
  }

  /** One replica's counter, 0 when it does not report it. */
  static long counter(ReplicaInfo r, String name) {
    return r.counters().getOrDefault(name, 0L);
  }

  /** Stops every replica (kill -9) and prints their warnings and errors, so a CI failure can be read. */
  @Override
  public void close() {
    replicas.forEach(ReplicaProcess::close);
    String keep = System.getProperty("choir.e2e.keepLogs", "");
    if (!keep.isEmpty()) {
      // -Dchoir.e2e.keepLogs=DIR: the whole replica logs, kept after the temporary folder is deleted.
      try {
        Path to = Path.of(keep).resolve(clusterId);
        Files.createDirectories(to);
        for (int i = 1; i <= replicas.size(); i++) {
          if (Files.exists(log(i))) {
            Files.copy(log(i), to.resolve("node" + i + ".log"), StandardCopyOption.REPLACE_EXISTING);
          }
        }
        System.out.println("replica logs kept in " + to);
      } catch (IOException e) {
        System.out.println("could not keep the logs: " + e);
      }
    }
    for (int i = 1; i <= replicas.size(); i++) {
      try {
        if (Files.exists(log(i))) {
          List<String> lines = Files.readAllLines(log(i)).stream()
              .filter(l -> l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("Exception") || l.contains("Error:"))
              .filter(l -> !l.contains("TEST ONLY: peer partitions are read from a fault file")).toList();
          int from = Math.max(0, lines.size() - 40);
          if (from > 0) {
            System.out.println("[node" + i + "] ... " + from + " earlier warnings");
          }
          for (String l : lines.subList(from, lines.size())) {
            System.out.println("[node" + i + "] " + l);
          }
        }
      } catch (IOException e) {
        System.out.println("[node" + i + "] log unreadable: " + e);
      }
    }
    try {
      lockFile.close(); // releases the block's lock
    } catch (IOException ignored) {
      // the lock goes with the JVM anyway
    }
  }
}
