package io.choir.client;

import io.netty.handler.ssl.SslContext;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import javax.net.ssl.SSLContext;
import org.slf4j.LoggerFactory;

/**
 * NetworkClientBuilder holds the settings of {@link ChoirClient.Builder} that only a client on real
 * sockets has (a DeterministicClient gets its transport and clock instead): the connect timeout, the
 * I/O threads, TLS and the token, with their validation, and turns them into the client's
 * {@link ClientConfig} and {@link ClientSecurity}. ChoirClient.Builder adds the defaults and build();
 * the setters return it, so chained calls keep its type.
 */
abstract class NetworkClientBuilder extends ClientBuilder<ChoirClient.Builder> {
  /** Default for {@link #connectTimeout}: a replica on the same network answers a SYN much faster. */
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(1);

  private Duration connectTimeout = DEFAULT_CONNECT_TIMEOUT;
  private int eventLoopThreads = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));
  private Random random;
  private Path trustCertificates;
  private Path clientCertificate;
  private Path clientKey;
  private SslContext sslContext;
  private String token;

  NetworkClientBuilder() {}

  /**
   * Connects with TLS, trusting the replicas' certificates only when caFile's CA signed them. The
   * certificate must also name the host of the endpoint connected to (a DNS name or IP address in its
   * subject alternative names), as HTTPS checks it.
   *
   * @param caFile PEM file of the CA certificate(s)
   * @return this builder
   */
  public ChoirClient.Builder trustCertificates(Path caFile) {
    this.trustCertificates = Objects.requireNonNull(caFile, "caFile");
    return self();
  }

  /**
   * Connects with TLS and presents this client certificate (mutual TLS): the replicas' access file
   * may name its subject (CN or whole DN) as an identity. Without {@link #trustCertificates}, the
   * replicas' certificates must be signed by a CA of the JDK's default trust store.
   *
   * @param certFile PEM certificate (chain) of this client
   * @param keyFile its PEM private key (PKCS#8, unencrypted)
   * @return this builder
   */
  public ChoirClient.Builder clientCertificate(Path certFile, Path keyFile) {
    this.clientCertificate = Objects.requireNonNull(certFile, "certFile");
    this.clientKey = Objects.requireNonNull(keyFile, "keyFile");
    return self();
  }

  /**
   * Connects with TLS as this Netty client context says (its trust, its key, its engine), instead of
   * {@link #trustCertificates} and {@link #clientCertificate}. Host names are verified regardless.
   *
   * @param sslContext a client context
   * @return this builder
   */
  public ChoirClient.Builder sslContext(SslContext sslContext) {
    if (sslContext == null || sslContext.isServer()) {
      throw new IllegalArgumentException("sslContext must be a client context");
    }
    this.sslContext = sslContext;
    return self();
  }

  /**
   * Connects with TLS as this JDK context says (its trust and key managers), instead of
   * {@link #trustCertificates} and {@link #clientCertificate}. Only TLS 1.3 and 1.2 are offered and
   * host names are verified regardless.
   *
   * @param sslContext an initialised JDK SSLContext
   * @return this builder
   */
  public ChoirClient.Builder sslContext(SSLContext sslContext) {
    return sslContext(ClientSecurity.fromJdk(Objects.requireNonNull(sslContext, "sslContext")));
  }

  /**
   * A token the replicas' access file knows (by its SHA-256): every connection presents it first (a
   * reconnect too), and its requests are then checked against the token's identity. A token is a
   * secret: use it with TLS, since without TLS anyone on the network path can read it. A token the
   * replicas do not know fails calls with {@link PermissionDeniedException}.
   *
   * @param token the token (not empty)
   * @return this builder
   */
  public ChoirClient.Builder token(String token) {
    if (token == null || token.isEmpty()) {
      throw new IllegalArgumentException("token must not be empty");
    }
    this.token = token;
    return self();
  }

  /**
   * Varargs form of {@link #endpoints(List)}.
   *
   * @param endpoints host:port strings, at least one
   * @return this builder
   */
  public ChoirClient.Builder endpoints(String... endpoints) {
    return endpoints(endpoints == null ? List.of() : Arrays.asList(endpoints));
  }

  /**
   * How long one TCP connect may take before the endpoint counts as down for this attempt.
   *
   * @param connectTimeout positive, at least 1 ms
   * @return this builder
   */
  public ChoirClient.Builder connectTimeout(Duration connectTimeout) {
    this.connectTimeout = positive(connectTimeout, "connectTimeout");
    return self();
  }

  /**
   * The number of Netty I/O threads (default: the number of cores, at most 4). Futures complete on
   * these threads.
   *
   * @param eventLoopThreads at least 1
   * @return this builder
   */
  public ChoirClient.Builder eventLoopThreads(int eventLoopThreads) {
    if (eventLoopThreads < 1) {
      throw new IllegalArgumentException("eventLoopThreads must be at least 1: " + eventLoopThreads);
    }
    this.eventLoopThreads = eventLoopThreads;
    return self();
  }

  /** Test hook: the source of retry jitter, seeded so a test replays the same pauses. */
  ChoirClient.Builder random(Random random) {
    this.random = random;
    return self();
  }

  /** Test hook: a fixed client instance id (its top bit is set, see {@link ChoirClient#clientId()}). */
  ChoirClient.Builder clientId(long clientId) {
    return setClientId(clientId);
  }

  /**
   * What the connections present: the TLS context set, or made from the PEM files set (plaintext when
   * neither), and the token.
   *
   * @throws IllegalArgumentException when both a context and files are set, or a TLS file cannot be
   *     read or used
   */
  final ClientSecurity security() {
    if (sslContext != null && (trustCertificates != null || clientCertificate != null)) {
      throw new IllegalArgumentException("set either sslContext or trustCertificates/clientCertificate, not both");
    }
    SslContext tls = sslContext;
    if (tls == null && (trustCertificates != null || clientCertificate != null)) {
      tls = ClientSecurity.fromFiles(trustCertificates, clientCertificate, clientKey);
    }
    if (token != null && tls == null) {
      LoggerFactory.getLogger(ChoirClient.class).warn("a token is set without TLS: anyone on the"
          + " network path can read it (set trustCertificates or sslContext)");
    }
    return new ClientSecurity(tls, token);
  }

  /** The shared settings with this client's connect timeout, I/O threads and jitter source. */
  final ClientConfig networkConfig() {
    return config(connectTimeout.toMillis(), eventLoopThreads, random != null ? random : new Random());
  }
}
