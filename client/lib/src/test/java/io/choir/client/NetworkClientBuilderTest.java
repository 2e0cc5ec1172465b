package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.handler.ssl.SslContextBuilder;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** NetworkClientBuilder: what a ChoirClient's connections present, and what it refuses before connecting. */
class NetworkClientBuilderTest {
  @TempDir Path dir;

  @Test
  void shouldConnectInPlaintextWithoutTokenWhenNoTlsIsSet() {
    ClientSecurity security = ChoirClient.builder().security();
    assertNull(security.tls());
    assertNull(security.token());
  }

  @Test
  void shouldRefuseAContextTogetherWithTlsFiles() throws Exception {
    ChoirClient.Builder b = ChoirClient.builder().endpoints("127.0.0.1:7000")
        .sslContext(SslContextBuilder.forClient().build()).trustCertificates(dir.resolve("ca.pem"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
    assertTrue(e.getMessage().contains("not both"), e.getMessage());
  }

  @Test
  void shouldRefuseTlsFilesItCannotRead() {
    ChoirClient.Builder b = ChoirClient.builder().endpoints("127.0.0.1:7000")
        .trustCertificates(dir.resolve("missing-ca.pem"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
    assertTrue(e.getMessage().contains("not readable"), e.getMessage());
  }

  @Test
  void shouldRefuseAnEmptyToken() {
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().token(""));
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().token(null));
  }

  @Test
  void shouldSetTheTopBitOfEveryClientInstanceId() {
    assertEquals(Long.MIN_VALUE | 5, ClientIds.instanceId(5));
    assertTrue(ClientIds.newClientId() < 0, "the top bit keeps it apart from every session id");
    assertEquals(Long.MIN_VALUE | 7, ChoirClient.builder().clientId(7).instanceId().getAsLong());
  }
}
