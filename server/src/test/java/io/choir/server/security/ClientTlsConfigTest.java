package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.config.ConfigException;
import io.choir.server.config.ServerConfig;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslProvider;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ClientTlsConfigTest checks the client port's TLS settings and its secure-by-default rule. */
class ClientTlsConfigTest {
  @TempDir Path dir;

  private Map<String, Object> base(String listenHost) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("data_dir", dir.resolve("data").toString());
    m.put("listen_host", listenHost);
    return m;
  }

  private ServerConfig config(Map<String, Object> m) {
    return ServerConfig.build(m, Map.of());
  }

  @Test
  void shouldRefusePlaintextClientsOffLoopbackUnlessAcceptedByName() {
    ConfigException e = assertThrows(ConfigException.class, () -> ClientTls.fromConfig(config(base("0.0.0.0"))));
    assertTrue(e.getMessage().contains("accept_plaintext_clients") && e.getMessage().contains("client_tls_cert_file"),
        e.getMessage());
    Map<String, Object> accepted = base("0.0.0.0");
    accepted.put("accept_plaintext_clients", true);
    assertNull(ClientTls.fromConfig(config(accepted)), "accepted by name: plaintext");
    assertNull(ClientTls.fromConfig(config(base("127.0.0.1"))), "loopback: plaintext is fine");
    assertNull(ClientTls.fromConfig(config(base("localhost"))));
  }

  @Test
  void shouldServeTlsWithFilesFromLocalCaAndRefuseIncompleteSettings() throws Exception {
    LocalCa ca = LocalCa.create("test CA", new SecureRandom());
    ca.write(dir.resolve("ca.crt"), null);
    ca.issueServer("node1", List.of("127.0.0.1", "localhost")).write(dir.resolve("n.crt"), dir.resolve("n.key"));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("n.key"))),
        "keys are readable by the owner only");
    Map<String, Object> m = base("0.0.0.0");
    m.put("client_tls_cert_file", dir.resolve("n.crt").toString());
    m.put("client_tls_key_file", dir.resolve("n.key").toString());
    ClientTls tls = assertDoesNotThrow(() -> ClientTls.fromConfig(config(m)), "TLS off loopback: fine");
    assertNotNull(tls);
    assertEquals(ClientTls.Auth.NONE, tls.auth());
    m.put("client_auth", "require");
    ConfigException noCa = assertThrows(ConfigException.class, () -> ClientTls.fromConfig(config(m)));
    assertTrue(noCa.getMessage().contains("client_tls_ca_file"), noCa.getMessage());
    m.put("client_tls_ca_file", dir.resolve("ca.crt").toString());
    assertEquals(ClientTls.Auth.REQUIRE, ClientTls.fromConfig(config(m)).auth());
    m.put("client_tls_provider", "jdk");
    assertEquals("jdk", ClientTls.fromConfig(config(m)).provider());
    m.remove("client_tls_key_file");
    assertTrue(assertThrows(ConfigException.class, () -> ClientTls.fromConfig(config(m))).getMessage()
        .contains("client_tls_key_file"));
    m.put("client_tls_key_file", dir.resolve("missing.key").toString());
    assertTrue(assertThrows(ConfigException.class, () -> ClientTls.fromConfig(config(m))).getMessage()
        .contains("not readable"));
    m.put("client_tls_key_file", dir.resolve("ca.crt").toString());
    assertThrows(ConfigException.class, () -> ClientTls.fromConfig(config(m)), "a certificate is not a key");
  }

  @Test
  void shouldRefuseClientCertificatesWithoutTls() {
    Map<String, Object> m = base("127.0.0.1");
    m.put("client_auth", "optional");
    assertTrue(assertThrows(ConfigException.class, () -> ClientTls.fromConfig(config(m))).getMessage()
        .contains("client_auth"));
  }

  @Test
  void shouldUseOpenSslWhenItLoadsHere() {
    // netty-tcnative-boringssl-static (linux-x86_64) is on the server's class path: auto picks it.
    assertEquals(OpenSsl.isAvailable() ? SslProvider.OPENSSL
        : SslProvider.JDK, ClientTls.provider("auto"));
    assertEquals(SslProvider.JDK, ClientTls.provider("jdk"));
  }
}
