package io.choir.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.config.ServerConfig;
import io.choir.server.net.TransportMode;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code choir cluster init --peer-transport}: the configs it writes name the transport, and load. */
class ClusterPeerTransportTest {
  @TempDir Path dir;

  private int init(String... args) {
    StringWriter out = new StringWriter();
    var cl = ChoirLauncher.commandLine();
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(out));
    return cl.execute(args);
  }

  @Test
  void shouldWriteThePeerTransportIntoEveryConfig() {
    for (String mode : new String[] {"unicast", "auto", "multicast"}) {
      Path d = dir.resolve(mode);
      assertEquals(0, init("cluster", "init", "--replicas", "3", "--dir", d.toString(), "--peer-transport", mode));
      for (int i = 1; i <= 3; i++) {
        ServerConfig c = ServerConfig.load(d.resolve("node" + i + ".yaml"), Map.of());
        assertEquals(TransportMode.valueOf(mode.toUpperCase(Locale.ROOT)), c.get(ServerConfig.PEER_TRANSPORT));
      }
    }
    ServerConfig byDefault = ServerConfig.load(dir.resolve("multicast").resolve("node1.yaml"), Map.of());
    assertTrue(byDefault.get(ServerConfig.PEER_TRANSPORT) == TransportMode.MULTICAST);
    assertEquals(2, init("cluster", "init", "--dir", dir.resolve("bad").toString(), "--peer-transport", "carrier-pigeon"));
  }
}
