package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.choir.client.ChoirClient;
import io.choir.server.replica.ReplicaServer;
import io.choir.server.security.LocalCa;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A TLS client whose first endpoint accepts TCP connections and closes them at once, saying nothing
 * (what Docker's port proxy does while its container's replica is down, and what a replica shedding
 * connections does), must fail over to the next endpoint, as a plaintext client does. Found by the
 * jepsen harness once it ran with TLS: in its restart-all scenario 409 of 1168 operations ended at
 * once in TlsException ("the replica ended TLS: null") instead of reaching a live replica, because a
 * close during the handshake was taken for a configuration error that ends the call.
 */
class ClientTlsFailoverTest {
  @TempDir Path dir;

  @Test
  void shouldFailOverPastAnEndpointThatClosesDuringTheHandshake() throws Exception {
    Path tls = dir.resolve("tls");
    LocalCa ca = LocalCa.create("test CA", new SecureRandom());
    ca.write(tls.resolve("ca.crt"), null);
    ca.issueServer("node1", List.of("127.0.0.1")).write(tls.resolve("node.crt"), tls.resolve("node.key"));
    ca.issueClient("root").write(tls.resolve("root.crt"), tls.resolve("root.key"));
    int port = TestCluster.freePort();
    Map<String, Object> s = TestCluster.singleReplica(dir.resolve("data"), port);
    s.put("client_tls_cert_file", tls.resolve("node.crt").toString());
    s.put("client_tls_key_file", tls.resolve("node.key").toString());
    s.put("client_tls_ca_file", tls.resolve("ca.crt").toString());
    s.put("client_auth", "require");
    try (ReplicaServer server = ReplicaServer.start(TestCluster.config(s));
        ServerSocket dead = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread closer = new Thread(() -> {
        while (!dead.isClosed()) {
          try (Socket c = dead.accept()) {
            // closed without a byte
          } catch (IOException e) {
            return;
          }
        }
      }, "closes-every-connection");
      closer.setDaemon(true);
      closer.start();
      try (ChoirClient client = ChoirClient.builder()
          .endpoints("127.0.0.1:" + dead.getLocalPort(), "127.0.0.1:" + port)
          .requestTimeout(Duration.ofSeconds(5))
          .trustCertificates(tls.resolve("ca.crt"))
          .clientCertificate(tls.resolve("root.crt"), tls.resolve("root.key")).build()) {
        client.put("k", "v");
        assertEquals("v", new String(client.get("k").orElseThrow().value()));
      }
    }
  }
}
