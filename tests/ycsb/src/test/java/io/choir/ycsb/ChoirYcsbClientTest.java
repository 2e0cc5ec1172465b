package io.choir.ycsb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.config.ServerConfig;
import io.choir.server.replica.ReplicaServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.Vector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import site.ycsb.ByteIterator;
import site.ycsb.DB;
import site.ycsb.Status;
import site.ycsb.StringByteIterator;

/** The YCSB binding against one real replica: every operation, a partial update's merge, the sharing. */
class ChoirYcsbClientTest {
  @TempDir Path dir;
  private ReplicaServer replica;
  private final java.util.List<DB> dbs = new java.util.ArrayList<>();

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  @BeforeEach
  void start() throws Exception {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cluster_id", "ycsb-test");
    m.put("replica_id", 1);
    m.put("replicas", "1=127.0.0.1:" + freePort() + "/127.0.0.1:" + freePort());
    m.put("data_dir", dir.resolve("data").toString());
    m.put("log_level", "warn");
    m.put("durability", "buffered");
    replica = ReplicaServer.start(ServerConfig.build(m, Map.of()));
  }

  @AfterEach
  void stop() throws Exception {
    for (DB db : dbs) {
      db.cleanup();
    }
    if (replica != null) {
      replica.close();
    }
  }

  private DB db(int fieldCount) throws Exception {
    Properties p = new Properties();
    p.setProperty("choir.endpoints", "127.0.0.1:" + replica.clientAddress().getPort());
    p.setProperty("fieldcount", Integer.toString(fieldCount));
    DB db = new ChoirYcsbClient();
    db.setProperties(p);
    db.init();
    dbs.add(db);
    return db;
  }

  private static Map<String, ByteIterator> fields(String... kv) {
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put(kv[i], kv[i + 1]);
    }
    return StringByteIterator.getByteIteratorMap(m);
  }

  private static Map<String, String> strings(Map<String, ByteIterator> m) {
    Map<String, String> s = new HashMap<>();
    m.forEach((k, v) -> s.put(k, v.toString()));
    return s;
  }

  @Test
  void everyOperationOfTheWorkloadsDoesWhatYcsbAsks() throws Exception {
    DB db = db(3);
    assertEquals(Status.OK, db.insert("usertable", "user1", fields("field0", "a", "field1", "b", "field2", "c")));
    assertEquals(Status.OK, db.insert("usertable", "user2", fields("field0", "x", "field1", "y", "field2", "z")));
    assertEquals(Status.OK, db.insert("othertable", "user3", fields("field0", "o", "field1", "o", "field2", "o")));

    Map<String, ByteIterator> all = new HashMap<>();
    assertEquals(Status.OK, db.read("usertable", "user1", null, all));
    assertEquals(Map.of("field0", "a", "field1", "b", "field2", "c"), strings(all));
    Map<String, ByteIterator> one = new HashMap<>();
    assertEquals(Status.OK, db.read("usertable", "user1", Set.of("field1"), one));
    assertEquals(Map.of("field1", "b"), strings(one));
    assertEquals(Status.NOT_FOUND, db.read("usertable", "nobody", null, new HashMap<>()));

    // A partial update keeps the other fields (read, merge, compare-and-set); a whole one replaces.
    assertEquals(Status.OK, db.update("usertable", "user1", fields("field1", "B")));
    Map<String, ByteIterator> merged = new HashMap<>();
    db.read("usertable", "user1", null, merged);
    assertEquals(Map.of("field0", "a", "field1", "B", "field2", "c"), strings(merged));
    assertEquals(Status.OK, db.update("usertable", "user1", fields("field0", "1", "field1", "2", "field2", "3")));
    Map<String, ByteIterator> replaced = new HashMap<>();
    db.read("usertable", "user1", null, replaced);
    assertEquals(Map.of("field0", "1", "field1", "2", "field2", "3"), strings(replaced));
    assertEquals(Status.NOT_FOUND, db.update("usertable", "nobody", fields("field1", "B")));

    // A scan stays in its table.
    Vector<HashMap<String, ByteIterator>> rows = new Vector<>();
    assertEquals(Status.OK, db.scan("usertable", "user1", 10, Set.of("field0"), rows));
    assertEquals(2, rows.size()); // no message: a ByteIterator's toString consumes it
    assertEquals("1", rows.get(0).get("field0").toString());
    assertEquals("x", rows.get(1).get("field0").toString());

    assertEquals(Status.OK, db.delete("usertable", "user2"));
    assertEquals(Status.NOT_FOUND, db.delete("usertable", "user2"));
    assertEquals(Status.NOT_FOUND, db.read("usertable", "user2", null, new HashMap<>()));
  }

  @Test
  void threadsShareTheConfiguredClientsAndTheLastCleanupClosesThem() throws Exception {
    DB a = db(1);
    DB b = db(1);
    assertEquals(Status.OK, a.insert("t", "k", fields("field0", "v")));
    Map<String, ByteIterator> r = new HashMap<>();
    assertEquals(Status.OK, b.read("t", "k", null, r));
    assertEquals("v", r.get("field0").toString());
    a.cleanup();
    assertEquals(Status.OK, b.read("t", "k", null, new HashMap<>()), "b's shared client still open");
  }

  @Test
  void aDamagedRecordIsRefusedNotAllocated() {
    byte[] ok = RecordCodec.encode(Map.of("f", "v".getBytes(StandardCharsets.UTF_8)));
    assertEquals("v", new String(RecordCodec.decode(ok, null).get("f"), StandardCharsets.UTF_8));
    assertThrows(IllegalArgumentException.class, () -> RecordCodec.decode(new byte[] {1, (byte) 0xFF, (byte) 0xFF,
        (byte) 0xFF, 0x7F}, null));
    assertThrows(IllegalArgumentException.class, () -> RecordCodec.decode(new byte[] {(byte) 0x80}, null));
    byte[] trailing = java.util.Arrays.copyOf(ok, ok.length + 1);
    assertThrows(IllegalArgumentException.class, () -> RecordCodec.decode(trailing, null));
    assertTrue(RecordCodec.decode(new byte[] {0}, null).isEmpty());
  }
}
