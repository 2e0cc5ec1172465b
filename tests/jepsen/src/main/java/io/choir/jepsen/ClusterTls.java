package io.choir.jepsen;

import io.choir.client.ChoirClient;
import io.choir.server.security.LocalCa;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * ClusterTls is the certificates of one harness run, issued fresh by {@link LocalCa} (the CA `choir
 * cluster init --tls` uses): a CA, one server certificate per replica and one client certificate for
 * the harness's clients. They live in a folder of the host that only the owner may enter, removed with
 * the cluster; each replica's certificate, key and the CA certificate are copied into its container
 * ({@link NodeSpec#TLS_CERT_PATH} ...).
 *
 * <p>Subject alternative names of a replica's certificate: 127.0.0.1, because the harness reaches every
 * replica through a port Docker publishes on the host's 127.0.0.1 and a NOT_PRIMARY redirect names
 * {@code 127.0.0.1:P} too (see {@link NodeSpec}), and the client verifies the host it connects to against
 * the certificate; {@code localhost}; and the node's name (n1 ...), its host name on the test network.
 */
public final class ClusterTls implements AutoCloseable {
  /**
   * CLIENT_CN is the subject CN of the harness's client certificate: the access file's one identity,
   * with read-write on every key.
   */
  public static final String CLIENT_CN = "jepsen";

  private final Path dir;
  private final LocalCa ca; // its key stays in memory, never written: it signs the joiners' certificates
  private final Map<String, Path[]> servers; // node name -> {certificate, key}

  private ClusterTls(Path dir, LocalCa ca, Map<String, Path[]> servers) {
    this.dir = dir;
    this.ca = ca;
    this.servers = servers;
  }

  /** issue makes a CA and the certificates of {@code nodes} and of the client in a fresh private folder. */
  public static ClusterTls issue(String runId, List<NodeSpec> nodes, SecureRandom random) {
    Path dir = null;
    try {
      dir = Files.createTempDirectory("choir-jepsen-tls-" + runId + "-",
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      LocalCa ca = LocalCa.create("choir jepsen CA", random);
      ca.write(dir.resolve("ca.crt"), null); // the CA's key stays in memory (for the joiners) and is never written
      ClusterTls tls = new ClusterTls(dir, ca, new LinkedHashMap<>());
      for (NodeSpec n : nodes) {
        tls.issueServer(n);
      }
      ca.issueClient(CLIENT_CN).write(dir.resolve("client.crt"), dir.resolve("client.key"));
      return tls;
    } catch (IOException | RuntimeException e) {
      if (dir != null) {
        delete(dir);
      }
      throw new IllegalStateException("cannot issue the run's certificates: " + e.getMessage(), e);
    }
  }

  /**
   * issueServer issues replica {@code n}'s certificate and key into the folder (at the start, and for a
   * replica that joins later); its names are 127.0.0.1, localhost and the node's name.
   */
  public synchronized void issueServer(NodeSpec n) {
    Path cert = dir.resolve(n.name() + ".crt");
    Path key = dir.resolve(n.name() + ".key");
    try {
      ca.issueServer(n.name(), List.of("127.0.0.1", "localhost", n.name())).write(cert, key);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot issue the certificate of " + n.name(), e);
    }
    servers.put(n.name(), new Path[] {cert, key});
  }

  /** dir is the folder of the run's certificates and keys. */
  public Path dir() {
    return dir;
  }

  /** caFile is the CA certificate (PEM): it signed every replica's certificate and the client's. */
  public Path caFile() {
    return dir.resolve("ca.crt");
  }

  /** clientCertFile is the harness's client certificate (PEM, CN {@link #CLIENT_CN}). */
  public Path clientCertFile() {
    return dir.resolve("client.crt");
  }

  /** clientKeyFile is that certificate's private key (PKCS#8 PEM, owner only). */
  public Path clientKeyFile() {
    return dir.resolve("client.key");
  }

  /** serverCertFile is replica {@code name}'s certificate (PEM). */
  public Path serverCertFile(String name) {
    return server(name)[0];
  }

  /** serverKeyFile is replica {@code name}'s private key (PKCS#8 PEM, owner only). */
  public Path serverKeyFile(String name) {
    return server(name)[1];
  }

  private synchronized Path[] server(String name) {
    Path[] p = servers.get(name);
    if (p == null) {
      throw new IllegalArgumentException("no certificate for " + name);
    }
    return p;
  }

  /** read is a file's bytes, to copy it into a container. */
  public static byte[] read(Path file) {
    try {
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** apply makes {@code b} connect with TLS: trust the run's CA, present the client certificate. */
  public ChoirClient.Builder apply(ChoirClient.Builder b) {
    return b.trustCertificates(caFile()).clientCertificate(clientCertFile(), clientKeyFile());
  }

  /**
   * accessFile is the replicas' access file: the client certificate's CN may read and write every key,
   * and nobody else may do anything. The harness's requests (status included) thus pass the access
   * checks, as a production client's do.
   */
  public static String accessFile() {
    return "# access file of one harness run (io.choir.jepsen.ClusterTls)\n"
        + "identities:\n"
        + "  - name: " + CLIENT_CN + "\n"
        + "    cert_cn: " + CLIENT_CN + "\n"
        + "    permissions:\n"
        + "      - prefix: \"\"\n"
        + "        access: readwrite\n";
  }

  /** close deletes the folder of certificates and keys. */
  @Override
  public void close() {
    delete(dir);
  }

  private static void delete(Path dir) {
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          // left in the temporary folder, owner-only
        }
      });
    } catch (IOException e) {
      // already gone
    }
  }
}
