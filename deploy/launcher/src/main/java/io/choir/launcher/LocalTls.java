package io.choir.launcher;

import io.choir.server.security.LocalCa;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;

/**
 * LocalTls writes the certificates of `choir cluster init --tls` into one folder: ca.crt (and
 * ca.key, to issue more later), nodeN.crt/.key per replica (SAN 127.0.0.1 and localhost), client.crt
 * /.key for CN=root, and access.yaml, which lets root read and write every key. Keys are owner-only.
 */
final class LocalTls {
  /** The identity of the client certificate, and its name in the access file. */
  static final String CLIENT_CN = "root";

  private LocalTls() {}

  /**
   * Writes the files into dir and returns the YAML lines every replica's config gets, with NODE in
   * place of the replica's file name (node1, ...).
   */
  static String write(Path dir, int replicas, PrintWriter out) throws IOException {
    Files.createDirectories(dir);
    SecureRandom random = new SecureRandom();
    LocalCa ca = LocalCa.create("choir local CA", random);
    ca.write(dir.resolve("ca.crt"), dir.resolve("ca.key"));
    for (int i = 1; i <= replicas; i++) {
      ca.issueServer("node" + i, List.of("127.0.0.1", "localhost"))
          .write(dir.resolve("node" + i + ".crt"), dir.resolve("node" + i + ".key"));
    }
    ca.issueClient(CLIENT_CN).write(dir.resolve("client.crt"), dir.resolve("client.key"));
    Path access = dir.resolve("access.yaml");
    Files.writeString(access, "# Who may do what (written by `choir cluster init --tls`). An identity is a client\n"
        + "# certificate's subject (cert_cn or cert_dn), a token (token_sha256; `choir token` makes one) or\n"
        + "# anonymous: true; each has read or readwrite permissions on key prefixes (\"\" is every key).\n"
        + "identities:\n"
        + "  - name: " + CLIENT_CN + "\n"
        + "    cert_cn: " + CLIENT_CN + "\n"
        + "    permissions:\n"
        + "      - prefix: \"\"\n"
        + "        access: readwrite\n", StandardCharsets.UTF_8);
    out.println("wrote " + dir + "/{ca,node1.." + replicas + ",client}.{crt,key} and " + access);
    return "# TLS on the client port; clients need a certificate signed by ca.crt (mutual TLS).\n"
        + "client_tls_cert_file: " + dir.resolve("NODE.crt") + "\n"
        + "client_tls_key_file: " + dir.resolve("NODE.key") + "\n"
        + "client_tls_ca_file: " + dir.resolve("ca.crt") + "\n"
        + "client_auth: require\n"
        + "access_file: " + access + "\n";
  }

  /** The client flags for a cluster whose config is nodeConfig, when it has TLS from LocalTls; else null. */
  static String clientFlags(Path nodeConfig) throws IOException {
    for (String line : Files.readAllLines(nodeConfig, StandardCharsets.UTF_8)) {
      if (line.startsWith("client_tls_ca_file: ")) {
        Path dir = Path.of(line.substring("client_tls_ca_file: ".length()).trim()).getParent();
        if (dir != null && Files.exists(dir.resolve("client.crt"))) {
          return "--cacert " + dir.resolve("ca.crt") + " --cert " + dir.resolve("client.crt") + " --key "
              + dir.resolve("client.key") + " (or set CHOIR_CACERT, CHOIR_CERT, CHOIR_KEY)";
        }
      }
    }
    return null;
  }
}
