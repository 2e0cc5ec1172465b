package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PeerTrustProcessTest: the real `choir server` refuses to start without a cluster key when its peers
 * are not all on loopback (issue 10, item 2), saying which setting to set. The replica's own peer
 * address is the one off loopback (192.0.2.1, TEST-NET-1, on no interface here), so that even if the
 * check were gone the process could only fail to bind it: nothing is ever sent off loopback.
 */
class PeerTrustProcessTest {
  @TempDir Path dir;

  @Test
  void shouldRefuseToStartWithPeersOffLoopbackAndNoKey() throws Exception {
    int client = TestCluster.freePort();
    Path yaml = dir.resolve("node1.yaml");
    Files.writeString(yaml, "cluster_id: trust-" + client + "\n"
        + "replica_id: 1\n"
        + "replicas:\n"
        + "  - id: 1\n    client: 127.0.0.1:" + client + "\n    peer: 192.0.2.1:" + TestCluster.freePort() + "\n"
        + "  - id: 2\n    client: 127.0.0.1:" + TestCluster.freePort() + "\n    peer: 127.0.0.1:"
        + TestCluster.freePort() + "\n"
        + "  - id: 3\n    client: 127.0.0.1:" + TestCluster.freePort() + "\n    peer: 127.0.0.1:"
        + TestCluster.freePort() + "\n"
        + "data_dir: " + dir.resolve("data") + "\n"
        + "multicast_interface: lo\n");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process p = new ProcessBuilder(List.of(java, "-Xmx128m", "-cp", System.getProperty("java.class.path"),
        "io.choir.launcher.ChoirLauncher", "server", "--config", yaml.toString())).redirectErrorStream(true).start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the server did not exit");
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    System.out.println("choir server without a key, a peer off loopback: exit " + p.exitValue() + ": " + out.strip());
    assertNotEquals(0, p.exitValue());
    assertTrue(out.contains("cluster_key_file") && out.contains("accept_unauthenticated_peers")
        && out.contains("forge peer messages"), out);
  }
}
