package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.config.ServerConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The generated replica configuration is accepted by the server's own parser. */
class NodeSpecTest {
  @TempDir
  Path tmp;

  static final List<NodeSpec> THREE = List.of(new NodeSpec(1, "n1", "10.199.7.11", 21001),
      new NodeSpec(2, "n2", "10.199.7.12", 21002), new NodeSpec(3, "n3", "10.199.7.13", 21003));

  @Test
  void theServerAcceptsTheConfiguration() throws Exception {
    String yaml = THREE.get(1).serverYaml("jepsen-x", THREE, Map.of("election_timeout_ms", 800));
    Path file = tmp.resolve("choir.yaml");
    Files.writeString(file, yaml);
    // data_dir and the key file point into the container; the host test redirects them
    Path key = tmp.resolve("cluster.key");
    Files.writeString(key, NodeSpec.clusterKeyFile(new SecureRandom()));
    Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
    assertTrue(yaml.contains("cluster_key_file: \"" + NodeSpec.KEY_PATH + "\""), yaml);
    ServerConfig c = ServerConfig.load(file,
        Map.of("data_dir", tmp.resolve("data").toString(), "cluster_key_file", key.toString()));
    assertEquals(1, c.clusterKeys().sendingKeyId(), "the harness's key file is one the replica reads");
    assertEquals(2, c.replicaId());
    assertEquals("jepsen-x", c.clusterId());
    assertEquals("0.0.0.0", c.listenHost());
    assertEquals(21002, c.self().client().port());
    assertEquals("127.0.0.1", c.self().client().host(), "the address a NOT_PRIMARY redirect names");
    assertEquals("n2", c.self().peer().host(), "peers by host name");
    assertEquals(NodeSpec.PEER_PORT, c.self().peer().port());
    assertEquals("eth0", c.get(ServerConfig.MULTICAST_INTERFACE));
    assertEquals(1, c.get(ServerConfig.MULTICAST_TTL));
    assertEquals(800, c.electionTimeoutMs());
    assertEquals(3, c.replicas().size());
  }

  @Test
  void replicasIsTheHarnesss() {
    assertThrows(IllegalArgumentException.class, () -> THREE.get(0).serverYaml("x", THREE, Map.of("replicas", "1=a:1/b:2")));
    assertTrue(THREE.get(0).serverYaml("x", THREE, Map.of("log_level", "debug")).contains("log_level: \"debug\""));
  }
}
