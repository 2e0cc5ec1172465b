package io.choir.server.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.security.ClusterKeys;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServerConfigTest {
  @TempDir Path dir;

  private Path yaml(String text) throws Exception {
    Path f = dir.resolve("c.yaml");
    Files.writeString(f, text + "\ndata_dir: " + dir.resolve("data") + "\n");
    return f;
  }

  private static ConfigException refused(Path file, Map<String, Object> flags) {
    return assertThrows(ConfigException.class, () -> ServerConfig.load(file, flags));
  }

  @Test
  void shouldLoadYamlAndLetFlagsOverrideIt() throws Exception {
    Path f = yaml("max_key_bytes: 100\nreplicas:\n  - id: 1\n    client: 127.0.0.1:9001\n    peer: 127.0.0.1:9101");
    ServerConfig c = ServerConfig.load(f, Map.of("max_key_bytes", "200"));
    assertEquals(200, c.get(ServerConfig.MAX_KEY_BYTES));
    assertEquals(9001, c.self().client().port());
    assertEquals(ServerConfig.Durability.FSYNC, c.get(ServerConfig.DURABILITY), "fsync is the default");
    assertEquals("lo", c.get(ServerConfig.MULTICAST_INTERFACE), "multicast defaults to loopback");
  }

  @Test
  void shouldNameAnUnknownSetting() throws Exception {
    ConfigException e = refused(yaml("max_keybytes: 3"), Map.of());
    assertEquals("max_keybytes", e.key());
    assertTrue(e.getMessage().contains("unknown setting"), e.getMessage());
  }

  @Test
  void shouldRefuseBadPortsAndOutOfRangeLimitsSayingWhy() throws Exception {
    Path f = yaml("");
    ConfigException port = refused(f, Map.of("replicas", "1=127.0.0.1:70000/127.0.0.1:7401"));
    assertEquals("replicas", port.key());
    assertTrue(port.getMessage().contains("outside 1..65535"), port.getMessage());
    ConfigException range = refused(f, Map.of("max_value_bytes", "-1"));
    assertEquals("max_value_bytes", range.key());
    ConfigException notNumber = refused(f, Map.of("heartbeat_interval_ms", "soon"));
    assertTrue(notNumber.getMessage().contains("not a whole number"), notNumber.getMessage());
    assertEquals("durability", refused(f, Map.of("durability", "maybe")).key());
    assertEquals("multicast_group", refused(f, Map.of("multicast_group", "10.0.0.1:7500")).key());
  }

  @Test
  void shouldRefuseAnUnwritableDataFolder() throws Exception {
    Path file = dir.resolve("a-file");
    Files.writeString(file, "x");
    ConfigException e = refused(null, Map.of("data_dir", file.resolve("sub").toString()));
    assertEquals("data_dir", e.key());
  }

  @Test
  void shouldRefuseInconsistentSettings() throws Exception {
    Path f = yaml("");
    assertEquals("replica_id", refused(f, Map.of("replica_id", "2")).key());
    assertEquals("replicas", refused(f,
        Map.of("replicas", "1=127.0.0.1:1/127.0.0.1:2,2=127.0.0.1:3/127.0.0.1:4")).key(), "even count");
    assertEquals("max_frame_bytes", refused(f, Map.of("max_frame_bytes", "2048")).key());
    assertEquals("election_timeout_ms", refused(f, Map.of("election_timeout_ms", "50")).key());
  }

  @Test
  void shouldGiveEverySettingAFlagAndADescription() {
    for (Setting<?> s : ServerConfig.settings().values()) {
      assertTrue(s.flag().startsWith("--") && !s.flag().contains("_"), s.flag());
      assertTrue(!s.description().isBlank(), s.key());
    }
  }

  @Test
  void shouldRefuseToStartOffLoopbackWithoutAKeyUnlessToldByName() throws Exception {
    Path f = yaml("");
    Map<String, Object> lan = Map.of("replicas", "1=127.0.0.1:9001/192.0.2.10:9101");
    ConfigException e = refused(f, lan);
    assertEquals("cluster_key_file", e.key());
    assertTrue(e.getMessage().contains("accept_unauthenticated_peers"), e.getMessage());
    assertEquals("cluster_key_file", refused(f, Map.of("multicast_interface", "nosuch0")).key());
    Map<String, Object> accepted = new HashMap<>(lan);
    accepted.put("accept_unauthenticated_peers", "true");
    assertEquals(null, ServerConfig.load(f, accepted).clusterKeys());
    Path keyFile = dir.resolve("cluster.key");
    ClusterKeys.generate(3, new SecureRandom()).write(keyFile);
    Map<String, Object> keyed = new HashMap<>(lan);
    keyed.put("cluster_key_file", keyFile.toString());
    assertEquals(3, ServerConfig.load(f, keyed).clusterKeys().sendingKeyId());
  }

  @Test
  void shouldRefuseABrokenKeyFileAtConfigurationTime() throws Exception {
    Path keyFile = dir.resolve("bad.key");
    Files.writeString(keyFile, "1 not-base64!\n");
    Files.setPosixFilePermissions(keyFile, PosixFilePermissions.fromString("rw-------"));
    ConfigException e = refused(yaml(""), Map.of("cluster_key_file", keyFile.toString()));
    assertEquals("cluster_key_file", e.key());
    assertTrue(e.getMessage().contains("line 1"), e.getMessage());
  }
}
