package io.choir.server.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.choir.server.core.CoreConfig;
import io.choir.server.core.Membership;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * JoinerConfigTest: a joiner (join: true) lists the current voters plus itself; the configuration
 * accepts it (an even count included) and its core's bootstrap membership leaves it out, so it never
 * takes part in epoch 1 as a voter; a joiner listing only itself is refused.
 */
class JoinerConfigTest {
  @TempDir Path dir;

  private Path yaml(int self, int... ids) throws Exception {
    StringBuilder y = new StringBuilder("replica_id: " + self + "\njoin: true\nreplicas:\n");
    for (int id : ids) {
      y.append("  - id: ").append(id).append("\n    client: 127.0.0.1:").append(9000 + id)
          .append("\n    peer: 127.0.0.1:").append(9100 + id).append('\n');
    }
    y.append("data_dir: ").append(dir.resolve("data")).append('\n');
    Path f = dir.resolve("c.yaml");
    Files.writeString(f, y);
    return f;
  }

  @Test
  void shouldStartAJoinerOutsideTheBootstrapMembership() throws Exception {
    ServerConfig config = ServerConfig.load(yaml(4, 1, 2, 3, 4), Map.of());

    CoreConfig core = CoreSettings.coreConfig(config, 1);
    Membership bootstrap = core.bootstrapMembership();

    assertEquals(List.of(1, 2, 3), bootstrap.voterIds());
    assertFalse(bootstrap.contains(4), "a joiner is no member of epoch 1");
    assertEquals(9104, config.self().peer().port());
  }

  @Test
  void shouldRefuseAJoinerWithNoOtherReplica() throws Exception {
    ConfigException e = assertThrows(ConfigException.class, () -> ServerConfig.load(yaml(4, 4), Map.of()));

    assertEquals("join", e.key());
  }
}
