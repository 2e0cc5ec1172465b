package io.choir.tests;

import io.choir.server.config.ServerConfig;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** TestCluster builds configurations for replicas on loopback with free ports and temporary folders. */
final class TestCluster {
  private TestCluster() {}

  /** A free TCP port on loopback (the OS picks it; a tiny race with other processes is acceptable). */
  static int freePort() {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Settings of a single replica on loopback with its data in dataDir. */
  static Map<String, Object> singleReplica(Path dataDir, int clientPort) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cluster_id", "test");
    m.put("replica_id", 1);
    m.put("replicas", "1=127.0.0.1:" + clientPort + "/127.0.0.1:" + freePort());
    m.put("data_dir", dataDir.toString());
    m.put("log_level", "warn");
    return m;
  }

  static ServerConfig config(Map<String, Object> settings) {
    return ServerConfig.build(settings, Map.of());
  }
}
