package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.choir.cli.Choir;
import io.choir.launcher.ChoirLauncher;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * ClusterTlsCliTest writes a 3-replica cluster with `choir cluster init --tls`, runs its replicas as
 * processes, and drives it with the CLI's --cacert/--cert/--key/--token: what the certificates it wrote
 * allow, what a client without them gets (exit 5, at once), and a token's narrower permissions.
 */
class ClusterTlsCliTest {
  /** Base ports are drawn here: between the fixed ranges of the older process tests, below ephemeral ports. */
  private static final int FIRST_BASE = 17_000;
  private static final int BASES = 2_500;

  @TempDir Path dir;
  private final List<ReplicaProcess> replicas = new ArrayList<>();

  @AfterEach
  void stop() {
    replicas.forEach(ReplicaProcess::close);
  }

  private record Run(int code, String out, String err) {}

  private static Run choir(String... args) {
    CommandLine cl = ChoirLauncher.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(err));
    int code = cl.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  private static String[] args(List<String> base, String... more) {
    List<String> all = new ArrayList<>(List.of(more));
    all.addAll(base);
    return all.toArray(new String[0]);
  }

  @Test
  void shouldServeTheCliWithTheCertificatesClusterInitTlsWrote() throws Exception {
    int base = freeBase();
    Path cluster = dir.resolve("cluster");
    Run init = choir("cluster", "init", "--tls", "--replicas", "3", "--dir", cluster.toString(),
        "--base-port", String.valueOf(base), "--cluster-id", "clitls-" + base, "--durability", "buffered");
    assertEquals(0, init.code(), init.err());
    assertTrue(init.out().contains("TLS is on: connect with --cacert"), init.out());
    Path tls = cluster.resolve("tls");
    for (String key : List.of("ca.key", "node1.key", "node3.key", "client.key")) {
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(tls.resolve(key))),
          key + " is readable by its owner only");
    }
    String node1 = Files.readString(cluster.resolve("node1.yaml"));
    assertTrue(node1.contains("client_auth: require") && node1.contains("node1.crt")
        && node1.contains("access_file: "), node1);
    assertTrue(node1.contains("cluster_key_file: "), "the cluster key stays: " + node1);

    // A token that may write only under app/, added to the access file the cluster reads at start.
    Run token = choir("token");
    String secret = token.out().lines().filter(l -> l.startsWith("token: ")).findFirst().orElseThrow().substring(7);
    String sha = token.out().lines().filter(l -> l.startsWith("token_sha256: ")).findFirst().orElseThrow()
        .substring(14);
    Files.writeString(tls.resolve("access.yaml"), "  - name: app\n    token_sha256: " + sha + "\n"
        + "    permissions: [{prefix: \"app/\", access: readwrite}]\n", StandardOpenOption.APPEND);

    List<String> endpoints = new ArrayList<>();
    for (int i = 1; i <= 3; i++) {
      endpoints.add("127.0.0.1:" + (base + i - 1));
      replicas.add(new ReplicaProcess(cluster.resolve("node" + i + ".yaml"), cluster.resolve("node" + i + ".log"),
          base + i - 1));
    }
    for (ReplicaProcess r : replicas) {
      r.start();
    }
    List<String> e = List.of("-e", String.join(",", endpoints));
    List<String> root = new ArrayList<>(e);
    root.addAll(List.of("--cacert", tls.resolve("ca.crt").toString(), "--cert", tls.resolve("client.crt").toString(),
        "--key", tls.resolve("client.key").toString()));

    Run put = choir(args(root, "put", "greeting", "hello", "--timeout-ms", "30000"));
    assertEquals(0, put.code(), put.err());
    Run get = choir(args(root, "get", "greeting"));
    assertEquals(0, get.code(), get.err());
    assertEquals("hello", get.out().trim());
    Run status = choir(args(root, "status", "--json"));
    assertEquals(0, status.code(), status.err());
    assertEquals(3, new ObjectMapper().readTree(status.out()).size());

    Run plain = choir(args(e, "get", "greeting"));
    assertEquals(Choir.EXIT_DENIED, plain.code(), plain.err());
    assertTrue(plain.err().contains("requires TLS"), plain.err());
    Run noCert = choir(args(e, "get", "greeting", "--cacert", tls.resolve("ca.crt").toString()));
    assertEquals(Choir.EXIT_DENIED, noCert.code(), noCert.err());
    assertTrue(noCert.err().startsWith("choir: tls:"), noCert.err());

    List<String> app = new ArrayList<>(root);
    app.addAll(List.of("--token", secret));
    Run outside = choir(args(app, "put", "greeting", "changed", "--json"));
    assertEquals(Choir.EXIT_DENIED, outside.code(), outside.out());
    JsonNode denied = new ObjectMapper().readTree(outside.out());
    assertEquals("permission_denied", denied.get("error").asText());
    assertEquals("hello", choir(args(root, "get", "greeting")).out().trim(), "the denied put changed nothing");
    assertEquals(0, choir(args(app, "put", "app/x", "1")).code(), "the token may write under app/");

    Run bench = choir(args(root, "bench", "--clients", "2", "--duration", "1", "--warmup", "0", "--keys", "10",
        "--no-progress", "--out", dir.resolve("bench").toString()));
    assertEquals(0, bench.code(), bench.err());
    assertTrue(Files.readString(dir.resolve("bench").resolve("result.json")).contains("\"tls\" : true"),
        "the report says TLS was on");
  }

  /** A base port whose client, peer and multicast ports (as cluster init lays them out) are all free. */
  private static int freeBase() {
    SplittableRandom random = new SplittableRandom(System.nanoTime());
    for (int attempt = 0; attempt < 200; attempt++) {
      int base = FIRST_BASE + random.nextInt(BASES);
      List<Integer> ports = List.of(base, base + 1, base + 2, base + 100, base + 101, base + 102, base + 199);
      if (ports.stream().allMatch(ClusterTlsCliTest::free)) {
        return base;
      }
    }
    throw new IllegalStateException("no free base port in " + FIRST_BASE + ".." + (FIRST_BASE + BASES));
  }

  private static boolean free(int port) {
    try (ServerSocket tcp = new ServerSocket()) {
      tcp.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
    } catch (IOException taken) {
      return false;
    }
    try (DatagramSocket udp = new DatagramSocket(new InetSocketAddress(port))) {
      return udp.getLocalPort() == port;
    } catch (IOException taken) {
      return false;
    }
  }
}
