package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.google.protobuf.ByteString;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Scan;
import io.choir.server.config.ServerConfig;
import io.choir.server.security.AccessControl;
import io.choir.server.security.ClientTls;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The generated replica configuration is accepted by the server's own parser, with the run's key file
 * and, by default, TLS and the access file the harness issues.
 */
class NodeSpecTest {
  @TempDir
  Path tmp;

  static final List<NodeSpec> THREE = List.of(new NodeSpec(1, "n1", "10.199.7.11", 21001),
      new NodeSpec(2, "n2", "10.199.7.12", 21002), new NodeSpec(3, "n3", "10.199.7.13", 21003));

  /**
   * overrides redirect what points into the container (data_dir, the key file, and with {@code tls} the
   * certificates and the access file) to host copies, so the server's parser can read them.
   */
  private Map<String, Object> hostFiles(ClusterTls tls, String node) throws Exception {
    Map<String, Object> o = new HashMap<>();
    o.put("data_dir", tmp.resolve("data").toString());
    Path key = tmp.resolve("cluster.key");
    Files.writeString(key, NodeSpec.clusterKeyFile(new SecureRandom()));
    Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
    o.put("cluster_key_file", key.toString());
    if (tls != null) {
      Path access = tmp.resolve("access.yaml");
      Files.writeString(access, ClusterTls.accessFile());
      o.put("client_tls_cert_file", tls.serverCertFile(node).toString());
      o.put("client_tls_key_file", tls.serverKeyFile(node).toString());
      o.put("client_tls_ca_file", tls.caFile().toString());
      o.put("access_file", access.toString());
    }
    return o;
  }

  @Test
  void theServerAcceptsTheConfiguration() throws Exception {
    String yaml = THREE.get(1).serverYaml("jepsen-x", THREE, true, Map.of("election_timeout_ms", 800));
    Path file = tmp.resolve("choir.yaml");
    Files.writeString(file, yaml);
    assertTrue(yaml.contains("cluster_key_file: \"" + NodeSpec.KEY_PATH + "\""), yaml);
    // /ready and /health on the container's loopback, where the image's choir-ready asks
    assertTrue(yaml.contains("metrics_address: \"127.0.0.1:9300\""), yaml);
    ServerConfig c;
    try (ClusterTls tls = ClusterTls.issue("t", THREE, new SecureRandom())) {
      c = ServerConfig.load(file, hostFiles(tls, "n2"));
    }
    assertEquals(1, c.clusterKeys().sendingKeyId(), "the harness's key file is one the replica reads");
    assertEquals(2, c.get(ServerConfig.REPLICA_ID));
    assertEquals("jepsen-x", c.get(ServerConfig.CLUSTER_ID));
    assertEquals("0.0.0.0", c.listenHost());
    assertEquals(21002, c.self().client().port());
    assertEquals("127.0.0.1", c.self().client().host(), "the address a NOT_PRIMARY redirect names");
    assertEquals("n2", c.self().peer().host(), "peers by host name");
    assertEquals(NodeSpec.PEER_PORT, c.self().peer().port());
    assertEquals("eth0", c.get(ServerConfig.MULTICAST_INTERFACE));
    assertEquals(1, c.get(ServerConfig.MULTICAST_TTL));
    assertEquals(800, c.get(ServerConfig.ELECTION_TIMEOUT_MS));
    assertEquals(3, c.get(ServerConfig.REPLICAS).size());
  }

  @Test
  void clientsNeedTlsAndACertificateOfTheRunsCa() throws Exception {
    String yaml = THREE.get(0).serverYaml("jepsen-x", THREE, true, Map.of());
    assertFalse(yaml.contains("accept_plaintext_clients"), yaml);
    for (String path : List.of(NodeSpec.TLS_CERT_PATH, NodeSpec.TLS_KEY_PATH, NodeSpec.TLS_CA_PATH, NodeSpec.ACCESS_PATH)) {
      assertTrue(yaml.contains(": \"" + path + "\"\n"), "the container's copy " + path + " in\n" + yaml);
    }
    Path file = tmp.resolve("choir.yaml");
    Files.writeString(file, yaml);
    try (ClusterTls tls = ClusterTls.issue("t", THREE, new SecureRandom())) {
      Map<String, Object> host = hostFiles(tls, "n1");
      ServerConfig c = ServerConfig.load(file, host);
      assertEquals("require", c.get(ServerConfig.CLIENT_AUTH));
      ClientTls server = ClientTls.fromConfig(c); // reads the certificate, key and CA as the replica does
      assertNotNull(server, "TLS on the client port");
      assertEquals(ClientTls.Auth.REQUIRE, server.auth());
      assertFalse(c.get(ServerConfig.ACCEPT_PLAINTEXT_CLIENTS), "listen_host 0.0.0.0 is served by TLS alone");

      // the name the client verifies: 127.0.0.1 (published port and redirects), localhost, the node name
      X509Certificate cert = certificate(tls.serverCertFile("n1"));
      Set<String> sans = cert.getSubjectAlternativeNames().stream().map(n -> String.valueOf(n.get(1)))
          .collect(Collectors.toSet());
      assertEquals(Set.of("127.0.0.1", "localhost", "n1"), sans);
      X509Certificate ca = certificate(tls.caFile());
      cert.verify(ca.getPublicKey());
      X509Certificate client = certificate(tls.clientCertFile());
      client.verify(ca.getPublicKey());
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(tls.clientKeyFile())));
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(tls.serverKeyFile("n1"))));
      assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(tls.dir())));

      // the access file: the client certificate may write and scan every key, any other certificate nothing
      AccessControl access = AccessControl.load(Path.of((String) host.get("access_file")));
      AccessControl.Identity jepsen = access.forCertificate(client.getSubjectX500Principal());
      Request put = Request.newBuilder().setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("r/k1"))
          .setValue(ByteString.copyFromUtf8("3"))).build();
      Request scanAll = Request.newBuilder().setScan(Scan.newBuilder().setStartKey(ByteString.copyFromUtf8("set/"))
          .setEndKey(ByteString.copyFromUtf8("set0"))).build();
      assertNull(access.check(jepsen, put));
      assertNull(access.check(jepsen, scanAll));
      AccessControl.Identity other = access.forCertificate(cert.getSubjectX500Principal());
      assertNotNull(access.check(other, put), "a certificate of another CN is nobody");
    }
  }

  @Test
  void theCertificatesAreGoneWithTheRun() {
    ClusterTls tls = ClusterTls.issue("t", THREE, new SecureRandom());
    assertTrue(Files.isRegularFile(tls.clientKeyFile()));
    tls.close();
    assertFalse(Files.exists(tls.dir()));
  }

  @Test
  void plaintextIsAcceptedByName() throws Exception {
    String yaml = THREE.get(0).serverYaml("jepsen-x", THREE, false, Map.of());
    Path file = tmp.resolve("choir.yaml");
    Files.writeString(file, yaml);
    ServerConfig c = ServerConfig.load(file, hostFiles(null, "n1"));
    assertTrue(c.get(ServerConfig.ACCEPT_PLAINTEXT_CLIENTS));
    assertNull(ClientTls.fromConfig(c));
    assertEquals("", c.get(ServerConfig.ACCESS_FILE));
  }

  /**
   * A joiner's configuration (member-replace's newcomer): join: true, replicas the current voters plus
   * itself, its own peer address by IP (the older containers' /etc/hosts do not name it); the server's
   * parser accepts the even count only because of join. Its certificate is issued after the others'.
   */
  @Test
  void aJoinersConfigurationListsTheVotersAndItselfWithJoin() throws Exception {
    NodeSpec joiner = new NodeSpec(6, "n6", "10.199.7.16", 21006, true);
    List<NodeSpec> voters = List.of(THREE.get(1), THREE.get(2), new NodeSpec(4, "n4", "10.199.7.14", 21004, true));
    List<NodeSpec> replicas = new ArrayList<>(voters);
    replicas.add(joiner);
    String yaml = joiner.serverYaml("jepsen-x", replicas, true, Map.of());
    assertTrue(yaml.contains("\njoin: true\n"), yaml);
    assertTrue(yaml.contains("  - \"6=127.0.0.1:21006/10.199.7.16:7401\"\n"), yaml);
    assertTrue(yaml.contains("  - \"2=127.0.0.1:21002/n2:7401\"\n"), "a first member by name\n" + yaml);
    assertFalse(THREE.get(0).serverYaml("jepsen-x", THREE, true, Map.of()).contains("join"), "only a joiner joins");
    Path file = tmp.resolve("choir.yaml");
    Files.writeString(file, yaml);
    try (ClusterTls tls = ClusterTls.issue("t", THREE, new SecureRandom())) {
      tls.issueServer(joiner);
      ServerConfig c = ServerConfig.load(file, hostFiles(tls, "n6"));
      assertTrue(c.get(ServerConfig.JOIN));
      assertEquals(6, c.get(ServerConfig.REPLICA_ID));
      assertEquals(List.of(2, 3, 4, 6), c.get(ServerConfig.REPLICAS).stream().map(r -> r.id()).toList());
      assertEquals("10.199.7.16", c.self().peer().host(), "its peer address by IP");
      assertEquals(21006, c.self().client().port());
      assertEquals("10.199.7.16:" + NodeSpec.PEER_PORT, joiner.peerAddress(), "what replaceMember is given");
      X509Certificate cert = certificate(tls.serverCertFile("n6"));
      cert.verify(certificate(tls.caFile()).getPublicKey());
    }
    Files.writeString(file, yaml.replace("join: true\n", ""));
    assertThrows(RuntimeException.class, () -> ServerConfig.load(file, hostFiles(null, "n6")),
        "without join an even count of replicas is refused: the test would see a joiner that is not one");
  }

  @Test
  void replicasIsTheHarnesss() {
    assertThrows(IllegalArgumentException.class,
        () -> THREE.get(0).serverYaml("x", THREE, true, Map.of("replicas", "1=a:1/b:2")));
    assertTrue(THREE.get(0).serverYaml("x", THREE, true, Map.of("log_level", "debug")).contains("log_level: \"debug\""));
  }

  private static X509Certificate certificate(Path pem) throws Exception {
    try (InputStream in = Files.newInputStream(pem)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }
}
