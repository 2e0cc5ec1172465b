package io.choir.server.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.choir.server.core.CoreConfig;
import io.choir.server.security.ClusterKeys;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** CoreSettings: the core a replica runs with its default settings is the core tests and the simulator build. */
class CoreConfigMappingTest {
  @TempDir Path dir;

  private ServerConfig config(Map<String, Object> settings) {
    Map<String, Object> m = new HashMap<>(settings);
    m.put("data_dir", dir.resolve("data").toString());
    return ServerConfig.build(m, Map.of());
  }

  @Test
  void shouldGiveTestsAndTheSimulatorTheCoreOfAReplicaWithTheDeclaredDefaults() throws Exception {
    CoreConfig fromSettings = CoreSettings.coreConfig(config(Map.of()), 1);
    CoreConfig declaredDefaults = CoreSettings.defaults(1, List.of(1)).build();
    for (Field f : CoreConfig.class.getFields()) {
      if (Modifier.isStatic(f.getModifiers())) {
        continue;
      }
      assertEquals(f.get(fromSettings), f.get(declaredDefaults), f.getName());
    }
    assertEquals(ServerConfig.MAX_KEY_BYTES.defaultValue(), declaredDefaults.maxKeyBytes);
    assertEquals(ServerConfig.RESEND_AMPLIFICATION_LIMIT.defaultValue(), declaredDefaults.resendAmplificationLimit,
        "a replica without a cluster key applies the anti-amplification limit");
    assertEquals(List.of(1), fromSettings.replicaIds());
    assertEquals("127.0.0.1:7301", fromSettings.clientAddress(1));
  }

  @Test
  void shouldConvertMillisecondsToTheCoresNanoseconds() {
    CoreConfig c = CoreSettings.coreConfig(config(Map.of("heartbeat_interval_ms", 7, "election_timeout_ms", 900,
        "read_timeout_ms", 11)), 1);
    assertEquals(7_000_000L, c.heartbeatIntervalNs);
    assertEquals(900_000_000L, c.quorumTimeoutNs, "CheckQuorum waits one election timeout");
    assertEquals(11_000_000L, c.readTimeoutNs);
  }

  @Test
  void shouldApplyTheAmplificationLimitOnlyWithoutAClusterKey() throws Exception {
    Path keyFile = dir.resolve("cluster.key");
    ClusterKeys.generate(1, new SecureRandom()).write(keyFile);
    assertEquals(0, CoreSettings.coreConfig(config(Map.of("cluster_key_file", keyFile.toString())), 1)
        .resendAmplificationLimit);
    assertEquals(3, CoreSettings.coreConfig(config(Map.of("resend_amplification_limit", 3)), 1)
        .resendAmplificationLimit);
  }

  @Test
  void shouldMapEveryWordOfTestBreakProtocolToItsOwnBreakage() {
    Set<CoreConfig.Breakage> seen = new HashSet<>();
    for (String word : ((Range.OneOf) TestSettings.TEST_BREAK_PROTOCOL.range()).values()) {
      CoreConfig.Breakage b = CoreSettings.breakage(word);
      assertEquals(word.equals("off"), b == CoreConfig.Breakage.NONE, word);
      seen.add(b);
    }
    assertEquals(CoreConfig.Breakage.values().length, seen.size(), "every Breakage has a word");
    assertNotEquals(CoreConfig.Breakage.NONE, CoreSettings.breakage("local-reads"));
  }
}
