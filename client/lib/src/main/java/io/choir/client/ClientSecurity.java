package io.choir.client;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.IdentityCipherSuiteFilter;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;

/**
 * ClientSecurity is what a {@link ChoirClient}'s connections present: TLS (a Netty client
 * {@link SslContext}, TLS 1.3 and 1.2 only, with the replica's host name verified against its
 * certificate) and a token. Null context: plaintext; null token: none.
 */
record ClientSecurity(SslContext tls, String token) {
  /** The protocol versions offered, as the replicas do. */
  static final List<String> PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");

  static final ClientSecurity NONE = new ClientSecurity(null, null);

  /** Whether a connection needs the gate (a TLS handshake, an Authenticate round trip) before use. */
  boolean gated() {
    return tls != null || token != null;
  }

  /**
   * The client context from PEM files: caFile the CA of the replicas' certificates (null: the JDK's
   * default trust store); certFile and keyFile this client's certificate and PKCS#8 key (both null: no
   * client certificate). OpenSSL through netty-tcnative when it is on the class path, else the JDK.
   */
  static SslContext fromFiles(Path caFile, Path certFile, Path keyFile) {
    if ((certFile == null) != (keyFile == null)) {
      throw new IllegalArgumentException("a client certificate needs both its certificate and its key file");
    }
    for (Path p : new Path[] {caFile, certFile, keyFile}) {
      if (p != null && !Files.isReadable(p)) {
        throw new IllegalArgumentException(p + " does not exist or is not readable");
      }
    }
    try {
      SslContextBuilder b = SslContextBuilder.forClient()
          .sslProvider(OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK)
          .protocols(PROTOCOLS)
          .endpointIdentificationAlgorithm("HTTPS");
      if (caFile != null) {
        b.trustManager(caFile.toFile());
      }
      if (certFile != null) {
        b.keyManager(certFile.toFile(), keyFile.toFile());
      }
      return b.build();
    } catch (SSLException | IllegalArgumentException e) {
      throw new IllegalArgumentException("cannot use the TLS files (CA " + caFile + ", certificate " + certFile
          + ", key " + keyFile + "): " + e.getMessage(), e);
    }
  }

  /** A JDK SSLContext as a Netty client context (its own trust and key managers, protocols as set). */
  static SslContext fromJdk(SSLContext context) {
    return new JdkSslContext(context, true, null, IdentityCipherSuiteFilter.INSTANCE,
        null, ClientAuth.NONE, PROTOCOLS.toArray(new String[0]), false);
  }
}
