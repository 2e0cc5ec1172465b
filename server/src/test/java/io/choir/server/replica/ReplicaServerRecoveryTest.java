package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.config.ServerConfig;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.WriteSet;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ReplicaServerRecoveryTest starts a real replica on a RocksDB data folder whose log has a hole
 * (issue 9, hole 2f): the replica must refuse to start and say what is wrong and what to do. Before
 * the fix, recovery checked only the log above the applied op, so both folders here started.
 */
class ReplicaServerRecoveryTest {
  @TempDir Path dir;

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private ServerConfig config() throws IOException {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cluster_id", "recovery-test");
    m.put("replica_id", 1);
    m.put("replicas", "1=127.0.0.1:" + freePort() + "/127.0.0.1:" + freePort());
    m.put("data_dir", dir.resolve("data").toString());
    m.put("log_level", "warn");
    return ServerConfig.build(m, Map.of());
  }

  private void dataFolder(long applied, long[]... logRanges) {
    try (RocksDbStorage storage = RocksDbStorage.open(dir.resolve("data"))) {
      for (long[] range : logRanges) {
        storage.appendLog(RecoveryTest.entries(range[0], range[1]), true);
      }
      storage.write(new WriteSet().putMeta(MetaKeys.bytes(MetaKeys.APPLIED), Bytes.longToBytes(applied))
          .putMeta(MetaKeys.bytes(MetaKeys.CHECKSUM), Bytes.longToBytes(1)), true);
    }
  }

  @Test
  void shouldRefuseToStartOnALogWithAHoleBelowTheAppliedOp() throws Exception {
    dataFolder(6, new long[] {1, 3}, new long[] {5, 8});

    IllegalStateException e = assertThrows(IllegalStateException.class, () -> ReplicaServer.start(config()).close());

    assertTrue(e.getMessage().contains("missing ops 4..4"), e.getMessage());
    assertTrue(e.getMessage().contains(dir.resolve("data").toAbsolutePath().toString()), e.getMessage());
    RocksDbStorage.open(dir.resolve("data")).close(); // refused cleanly: the folder is not left locked
  }

  @Test
  void shouldRefuseToStartWhenTheAppliedStateIsAboveTheLog() throws Exception {
    dataFolder(8, new long[] {1, 5});

    IllegalStateException e = assertThrows(IllegalStateException.class, () -> ReplicaServer.start(config()).close());

    assertTrue(e.getMessage().contains("that the log lost"), e.getMessage());
  }

  /**
   * The way out the refusal names: --rejoin moves the damaged folder aside and starts from an empty one
   * marked as catching up, so the replica takes no part in votes until it has the state again (an
   * empty folder alone would make it count as a new replica that votes with nothing).
   */
  @Test
  void shouldRejoinFromAnEmptyFolderAsACatchingUpReplicaKeepingTheOldOneAside() throws Exception {
    dataFolder(6, new long[] {1, 3}, new long[] {5, 8});
    Path aside = Recovery.prepareRejoin(dir.resolve("data"));
    assertTrue(Files.isDirectory(aside), "the old folder is kept");
    try (RocksDbStorage storage = RocksDbStorage.open(dir.resolve("data"))) {
      var recovered = Recovery.recover(storage, new KvStateMachine(storage, 100, 10),
          "test", false, true);
      assertTrue(recovered.mustCatchUp(), "it must catch up before it votes or acknowledges");
      assertTrue(recovered.restarted(), "not a new replica");
      assertEquals(0, recovered.appliedOp());
    }
    ReplicaServer.start(config()).close();
  }

  @Test
  void shouldStartOnAContinuousLog() throws Exception {
    dataFolder(5, new long[] {1, 8});

    ReplicaServer.start(config()).close();
  }
}
