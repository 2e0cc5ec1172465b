package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ChoirClient;
import io.choir.client.VersionedValue;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DurabilityTest runs the server as a real process, kills it with SIGKILL and restarts it from the same
 * folder: every acknowledged write must be there, with the same version and the same checksum.
 *
 * <p>This covers a process crash only: after kill -9 the OS still holds everything the process wrote,
 * fsynced or not, so this test would pass even if nothing were ever fsynced. A power loss, which keeps
 * only what was fsynced, is {@link PowerLossTest}'s (on the {@link LazyFs} FUSE filesystem).
 */
class DurabilityTest {
  @TempDir Path dir;

  private Path writeConfig(int port, String durability) throws Exception {
    Path file = dir.resolve("node1.yaml");
    Files.writeString(file, "cluster_id: durability-test\n"
        + "replica_id: 1\n"
        + "replicas:\n  - id: 1\n    client: 127.0.0.1:" + port + "\n    peer: 127.0.0.1:" + TestCluster.freePort() + "\n"
        + "data_dir: " + dir.resolve("data") + "\n"
        + "durability: " + durability + "\n");
    return file;
  }

  private static ChoirClient client(int port) {
    return ChoirClient.builder().endpoints("127.0.0.1:" + port).requestTimeout(Duration.ofSeconds(10)).build();
  }

  /**
   * A SIGTERM that arrives while the replica starts (here: once its client port is set up, before the
   * start has ended; in a container that takes seconds) stops it gracefully once the start is done,
   * with exit code 0. Before, the shutdown hook was installed only after the start, so such a signal
   * ended the JVM with 143 and no clean shutdown (the harness's restart-all right after a kill-all).
   */
  @Test
  void shouldShutDownGracefullyOnSigtermWhileStarting() throws Exception {
    int port = TestCluster.freePort();
    Path config = writeConfig(port, "fsync");
    Path log = dir.resolve("replica.log");
    try (ReplicaProcess replica = new ReplicaProcess(config, log, port)) {
      replica.startUntilLogSays("client port security");
      int exit = replica.terminate();
      String out = Files.readString(log);
      System.out.println("SIGTERM while starting: exit " + exit + ", replica started: " + out.contains("replica started")
          + ", replica stopped: " + out.contains("replica stopped"));
      assertEquals(0, exit, "SIGTERM while starting shuts down gracefully with exit code 0; see " + log);
      assertTrue(out.contains("replica stopped"), "the graceful shutdown ran");
    }
  }

  @Test
  void shouldKeepEveryAcknowledgedWriteAcrossKillMinus9() throws Exception {
    int port = TestCluster.freePort();
    Path config = writeConfig(port, "fsync");
    int n = 2000;
    long lastVersion;
    String checksumBefore;
    try (ReplicaProcess replica = new ReplicaProcess(config, dir.resolve("replica.log"), port)) {
      replica.start();
      try (ChoirClient c = client(port)) {
        long v1 = c.put("first", "one");
        assertEquals(Optional.of("one"), c.get("first").map(VersionedValue::valueAsString));
        List<CompletableFuture<Long>> acks = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          acks.add(c.async().put("key-" + i, "value-" + i));
        }
        lastVersion = 0;
        for (CompletableFuture<Long> f : acks) {
          lastVersion = Math.max(lastVersion, f.join());
        }
        assertTrue(lastVersion > v1);
      }
      long appliedBefore;
      try (ChoirClient c = client(port)) { // after the writer closed its session (one more entry)
        var before = c.status().get(0).info();
        appliedBefore = before.applied();
        checksumBefore = String.valueOf(before.checksum());
      }
      assertTrue(appliedBefore >= lastVersion);
      replica.kill();
      replica.start();
      try (ChoirClient c = client(port)) {
        assertEquals("one", c.get("first").orElseThrow().valueAsString());
        for (int i = 0; i < n; i++) {
          Optional<VersionedValue> v = c.get("key-" + i);
          assertTrue(v.isPresent(), "acknowledged key-" + i + " lost after kill -9");
          assertEquals("value-" + i, v.get().valueAsString());
        }
        var status = c.status().get(0).info();
        assertEquals(appliedBefore, status.applied(), "applied number survives the restart");
        assertEquals(checksumBefore, String.valueOf(status.checksum()), "checksum survives the restart");
        long next = c.put("after", "restart");
        // This client's session registration comes first, then the write.
        assertEquals(appliedBefore + 2, next, "op numbers continue after the restart");
      }
      assertEquals(0, replica.terminate(), "SIGTERM shuts down gracefully with exit code 0");
    }
  }
}
