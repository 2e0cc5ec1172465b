package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.choir.launcher.ChoirLauncher;
import io.choir.server.replica.ReplicaServer;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** CliTest runs `choir` commands in this JVM against a replica and checks output and exit codes. */
class CliTest {
  @TempDir Path dir;
  private ReplicaServer server;
  private String endpoint;

  @BeforeEach
  void start() throws Exception {
    int port = TestCluster.freePort();
    server = ReplicaServer.start(TestCluster.config(TestCluster.singleReplica(dir.resolve("data"), port)));
    endpoint = "127.0.0.1:" + port;
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private record Run(int code, String out, String err) {}

  private Run choir(String... args) {
    CommandLine cl = ChoirLauncher.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out));
    cl.setErr(new PrintWriter(err));
    int code = cl.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void shouldPutGetCasDeleteAndScanWithDocumentedExitCodes() throws Exception {
    assertEquals(0, choir("put", "greeting", "hello", "-e", endpoint).code());
    Run get = choir("get", "greeting", "-e", endpoint);
    assertEquals(0, get.code());
    assertEquals("hello", get.out().trim());
    assertEquals(1, choir("get", "missing", "-e", endpoint).code(), "not found exits 1");
    assertEquals(1, choir("cas", "greeting", "wrong", "new", "-e", endpoint).code(), "CAS failure exits 1");
    assertEquals(0, choir("cas", "greeting", "hello", "bye", "-e", endpoint).code());
    JsonNode json = new ObjectMapper().readTree(choir("get", "greeting", "--json", "-e", endpoint).out());
    assertEquals("bye", json.get("value").asText());
    assertTrue(json.get("version").asLong() > 0);
    assertEquals(0, choir("put", "greeting2", "x", "-e", endpoint).code());
    Run scan = choir("scan", "greeting", "greetinh", "--limit", "10", "-e", endpoint);
    assertEquals(2, scan.out().trim().split("\n").length, scan.out());
    assertEquals(0, choir("delete", "greeting", "-e", endpoint).code());
    assertEquals(1, choir("delete", "greeting", "-e", endpoint).code());
    assertEquals(2, choir("put", "only-key").code(), "a missing argument is a usage error");
  }

  @Test
  void shouldReportStatusAsJsonWithTheFieldsScriptsRelyOn() throws Exception {
    choir("put", "a", "b", "-e", endpoint);
    Run status = choir("status", "--json", "-e", endpoint);
    assertEquals(0, status.code(), status.err());
    JsonNode replica = new ObjectMapper().readTree(status.out()).get(0);
    for (String field : new String[] {"id", "role", "view", "op", "commit", "applied", "checksum"}) {
      assertTrue(replica.has(field), "status lacks " + field + ": " + status.out());
    }
    assertEquals("primary", replica.get("role").asText());
    assertEquals(replica.get("op").asLong(), replica.get("applied").asLong());
    assertEquals("lease", replica.get("read_mode").asText(), "linearizable reads by lease, the default");
  }

  @Test
  void shouldExitWithUnavailableWhenNoReplicaAnswers() {
    Run r = choir("get", "k", "-e", "127.0.0.1:" + TestCluster.freePort(), "--timeout-ms", "1500");
    assertEquals(3, r.code(), r.err());
  }

  @Test
  void shouldWriteOneConfigPerReplicaWithClusterInit() throws Exception {
    Path cluster = dir.resolve("cluster");
    assertEquals(0, choir("cluster", "init", "--replicas", "3", "--dir", cluster.toString()).code());
    for (int i = 1; i <= 3; i++) {
      String yaml = Files.readString(cluster.resolve("node" + i + ".yaml"));
      assertTrue(yaml.contains("replica_id: " + i), yaml);
      assertTrue(yaml.contains("multicast_interface: lo"), "multicast stays on loopback by default");
    }
    assertEquals(2, choir("cluster", "init", "--dir", cluster.toString()).code(), "refuses to overwrite");
    assertEquals(2, choir("cluster", "init", "--replicas", "2", "--dir", dir.resolve("even").toString()).code());
  }

  @Test
  void shouldRefuseABadSettingNamingItAndWhy() {
    Run r = choir("server", "--max-key-bytes", "0", "--data-dir", dir.resolve("d2").toString());
    assertEquals(2, r.code());
    assertTrue(r.err().contains("max_key_bytes"), r.err());
  }
}
