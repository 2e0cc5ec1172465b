package io.choir.server.security;

import io.choir.server.config.ConfigException;
import io.choir.server.config.ServerConfig;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.File;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ClientTls is the TLS of the client port, as the settings client_tls_cert_file, client_tls_key_file,
 * client_tls_ca_file, client_auth and client_tls_provider describe it: a Netty {@link SslContext}
 * (TLS 1.3 and 1.2 only), OpenSSL through netty-tcnative when it loads (else the JDK's engine), and
 * the client-certificate policy.
 *
 * <p>Secure by default ({@link #checkPlaintextPolicy}): a replica whose client port is reachable from
 * other hosts (its bind address is not loopback) refuses to start without TLS, unless
 * accept_plaintext_clients says by name that plaintext clients are accepted. This mirrors what
 * cluster_key_file / accept_unauthenticated_peers do for the peers.
 */
public final class ClientTls {
  private static final Logger log = LoggerFactory.getLogger(ClientTls.class);

  /** The only protocol versions offered: TLS 1.0 and 1.1 are broken (RFC 8996). */
  public static final List<String> PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");

  /**
   * Most time a connection may take to show its first TLS record and then to finish the handshake;
   * a connection that does neither holds a socket for nothing (slowloris) and is closed. Netty's
   * default handshake timeout, kept as a named bound.
   */
  public static final long HANDSHAKE_TIMEOUT_MS = 10_000;

  /** Client certificates: not asked for, verified when sent, or required (mutual TLS). */
  public enum Auth { NONE, OPTIONAL, REQUIRE }

  private final SslContext context;
  private final Auth auth;
  private final String provider;

  private ClientTls(SslContext context, Auth auth, String provider) {
    this.context = context;
    this.auth = auth;
    this.provider = provider;
  }

  /** The server context every client connection's SslHandler is made from. */
  public SslContext context() {
    return context;
  }

  public Auth auth() {
    return auth;
  }

  /** "openssl" or "jdk": the engine in use. */
  public String provider() {
    return provider;
  }

  /**
   * The client port's TLS from config, or null when client_tls_cert_file is empty (plaintext). Refuses
   * (ConfigException naming the setting) a key without a certificate or the other way round, client
   * certificates without a CA to check them, unreadable or unparseable files, an OpenSSL engine that
   * was asked for and does not load, and plaintext on a port other hosts can reach (see
   * {@link #checkPlaintextPolicy}).
   */
  public static ClientTls fromConfig(ServerConfig config) {
    String cert = config.get(ServerConfig.CLIENT_TLS_CERT_FILE);
    String key = config.get(ServerConfig.CLIENT_TLS_KEY_FILE);
    String ca = config.get(ServerConfig.CLIENT_TLS_CA_FILE);
    Auth auth = Auth.valueOf(config.get(ServerConfig.CLIENT_AUTH).toUpperCase(Locale.ROOT));
    if (cert.isEmpty()) {
      if (!key.isEmpty()) {
        throw new ConfigException(ServerConfig.CLIENT_TLS_CERT_FILE.key(), "client_tls_key_file is set without a"
            + " certificate");
      }
      if (auth != Auth.NONE) {
        throw new ConfigException(ServerConfig.CLIENT_AUTH.key(), "client_auth " + auth.name().toLowerCase(
            Locale.ROOT) + " needs TLS on the client port (client_tls_cert_file)");
      }
      checkPlaintextPolicy(config.listenHost(), config.get(ServerConfig.ACCEPT_PLAINTEXT_CLIENTS));
      return null;
    }
    if (key.isEmpty()) {
      throw new ConfigException(ServerConfig.CLIENT_TLS_KEY_FILE.key(), "client_tls_cert_file is set without its"
          + " private key");
    }
    if (auth != Auth.NONE && ca.isEmpty()) {
      throw new ConfigException(ServerConfig.CLIENT_TLS_CA_FILE.key(), "client_auth " + auth.name().toLowerCase(
          Locale.ROOT) + " needs the CA that signs client certificates");
    }
    readable(ServerConfig.CLIENT_TLS_CERT_FILE.key(), cert);
    readable(ServerConfig.CLIENT_TLS_KEY_FILE.key(), key);
    if (!ca.isEmpty()) {
      readable(ServerConfig.CLIENT_TLS_CA_FILE.key(), ca);
    }
    SslProvider provider = provider(config.get(ServerConfig.CLIENT_TLS_PROVIDER));
    try {
      return build(new File(cert), new File(key), ca.isEmpty() ? null : new File(ca), auth, provider);
    } catch (SSLException | IllegalArgumentException e) {
      throw new ConfigException(ServerConfig.CLIENT_TLS_CERT_FILE.key(), "cannot use " + cert + " / " + key
          + (ca.isEmpty() ? "" : " / " + ca) + ": " + e.getMessage());
    }
  }

  /** A server context from PEM files; for tests and fromConfig. caFile may be null when auth is NONE. */
  public static ClientTls build(File certFile, File keyFile, File caFile, Auth auth, SslProvider provider)
      throws SSLException {
    SslContextBuilder b = SslContextBuilder.forServer(certFile, keyFile)
        .sslProvider(provider)
        .protocols(PROTOCOLS)
        .clientAuth(switch (auth) {
          case NONE -> ClientAuth.NONE;
          case OPTIONAL -> ClientAuth.OPTIONAL;
          case REQUIRE -> ClientAuth.REQUIRE;
        });
    if (caFile != null && auth != Auth.NONE) {
      b.trustManager(caFile);
    }
    String name = provider == SslProvider.JDK ? "jdk" : "openssl";
    return new ClientTls(b.build(), auth, name);
  }

  /** The engine for setting value auto, openssl or jdk. */
  static SslProvider provider(String setting) {
    boolean openSsl = OpenSsl.isAvailable();
    switch (setting) {
      case "jdk":
        return SslProvider.JDK;
      case "openssl":
        if (!openSsl) {
          throw new ConfigException(ServerConfig.CLIENT_TLS_PROVIDER.key(), "OpenSSL (netty-tcnative) does not"
              + " load here: " + OpenSsl.unavailabilityCause());
        }
        return SslProvider.OPENSSL;
      default:
        if (!openSsl) {
          log.atInfo().addKeyValue("reason", String.valueOf(OpenSsl.unavailabilityCause()))
              .log("OpenSSL (netty-tcnative) unavailable; client TLS uses the JDK engine");
        }
        return openSsl ? SslProvider.OPENSSL : SslProvider.JDK;
    }
  }

  /**
   * Refuses plaintext on a client port other hosts can reach, unless accepted by name: with plaintext,
   * anyone on the network reads every value and token and can rewrite the replies.
   */
  public static void checkPlaintextPolicy(String listenHost, boolean acceptPlaintext) {
    if (acceptPlaintext || isLoopbackHost(listenHost)) {
      return;
    }
    throw new ConfigException(ServerConfig.CLIENT_TLS_CERT_FILE.key(), "the client port binds to " + listenHost
        + ", which is not loopback, so any host of that network could read and forge client traffic: set"
        + " client_tls_cert_file and client_tls_key_file (`choir cluster init --tls` writes certificates), or set "
        + ServerConfig.ACCEPT_PLAINTEXT_CLIENTS.key() + ": true to accept that");
  }

  static boolean isLoopbackHost(String host) {
    if (host.equals("localhost")) {
      return true;
    }
    try {
      InetAddress a = InetAddress.getByName(host);
      return a.isLoopbackAddress();
    } catch (UnknownHostException e) {
      return false;
    }
  }

  private static void readable(String setting, String file) {
    if (!Files.isReadable(Path.of(file))) {
      throw new ConfigException(setting, file + " does not exist or is not readable");
    }
  }
}
