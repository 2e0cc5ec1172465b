package io.choir.cli;

import io.choir.client.ChoirClient;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * SecurityOptions are the TLS and token flags of every client command and of `choir bench`, named as
 * etcdctl names them: --cacert (turns TLS on: the CA of the replicas' certificates), --cert and --key
 * (this client's certificate, for mutual TLS), --token. Each falls back to an environment variable
 * (CHOIR_CACERT, CHOIR_CERT, CHOIR_KEY, CHOIR_TOKEN), so that a token need not appear in the shell's
 * history or the process list.
 */
public final class SecurityOptions {
  @Option(names = "--cacert", paramLabel = "FILE",
      description = "Connect with TLS, trusting replicas whose certificate this CA (PEM) signed"
          + " (default: $CHOIR_CACERT).")
  Path caCert;

  @Option(names = "--cert", paramLabel = "FILE",
      description = "This client's certificate (PEM), for mutual TLS; with --key (default: $CHOIR_CERT).")
  Path cert;

  @Option(names = "--key", paramLabel = "FILE",
      description = "The private key (PKCS#8 PEM) of --cert (default: $CHOIR_KEY).")
  Path key;

  @Option(names = "--token", paramLabel = "TOKEN",
      description = "Authenticate with this token (default: $CHOIR_TOKEN, which keeps it out of shell history).")
  String token;

  /** The environment the fallbacks come from (a test hook). */
  Map<String, String> env = System.getenv();

  /** Sets TLS and the token on builder, from the flags or their environment variables. */
  public ChoirClient.Builder apply(ChoirClient.Builder builder) {
    Path ca = caCert != null ? caCert : path("CHOIR_CACERT");
    Path c = cert != null ? cert : path("CHOIR_CERT");
    Path k = key != null ? key : path("CHOIR_KEY");
    String t = token != null ? token : env.get("CHOIR_TOKEN");
    if ((c == null) != (k == null)) {
      throw new IllegalArgumentException("--cert and --key go together");
    }
    if (ca != null) {
      builder.trustCertificates(ca);
    }
    if (c != null) {
      builder.clientCertificate(c, k);
    }
    if (t != null && !t.isEmpty()) {
      builder.token(t);
    }
    return builder;
  }

  /** Whether TLS is on (for reports). */
  public boolean tls() {
    return caCert != null || cert != null || path("CHOIR_CACERT") != null || path("CHOIR_CERT") != null;
  }

  private Path path(String var) {
    String v = env.get(var);
    return v == null || v.isBlank() ? null : Path.of(v);
  }
}
