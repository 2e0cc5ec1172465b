package io.choir.ycsb;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.Vector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import site.ycsb.ByteIterator;
import site.ycsb.DB;
import site.ycsb.DBException;
import site.ycsb.Status;
import site.ycsb.StringByteIterator;

/**
 * The JGroups binding in a cluster of three on loopback, in this JVM: two members as JGroupsMember holds
 * them and the binding's own. Every write must be on every member when it returns.
 */
class JGroupsYcsbClientTest {
  private final List<JGroupsNode> members = new ArrayList<>();
  private final List<DB> dbs = new ArrayList<>();
  private JGroupsNode.Settings settings;

  /** A cluster of its own: a fresh name, and a multicast port and unicast ports free now. */
  @BeforeEach
  void start() throws Exception {
    int base;
    try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
      base = s.getLocalPort();
    }
    // The unicast ports from base + 1 (FD_SOCK2 takes base + 101...), the multicast port base; a taken
    // port is skipped within the range.
    settings = new JGroupsNode.Settings("ycsb-test-" + ProcessHandle.current().pid() + "-" + base,
        "239.77.14.2", base, base + 1, 16);
    members.add(JGroupsNode.join(settings, 20_000, 1, null));
    members.add(JGroupsNode.join(settings, 20_000, 2, null));
  }

  @AfterEach
  void stop() throws Exception {
    for (DB db : dbs) {
      db.cleanup();
    }
    for (JGroupsNode m : members) {
      m.close();
    }
  }

  private Properties properties(int fieldCount) {
    Properties p = new Properties();
    p.setProperty("jgroups.cluster", settings.cluster());
    p.setProperty("jgroups.mcast_addr", settings.mcastAddr());
    p.setProperty("jgroups.mcast_port", Integer.toString(settings.mcastPort()));
    p.setProperty("jgroups.bind_port", Integer.toString(settings.bindPort()));
    p.setProperty("jgroups.timeout_ms", "20000");
    p.setProperty("fieldcount", Integer.toString(fieldCount));
    return p;
  }

  private DB db(int fieldCount) throws Exception {
    DB db = new JGroupsYcsbClient();
    db.setProperties(properties(fieldCount));
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

  /** The record as every member other than the binding's holds it, decoded; null where absent. */
  private List<Map<String, String>> onMembers(String table, String key) {
    List<Map<String, String>> out = new ArrayList<>();
    for (JGroupsNode m : members) {
      byte[] v = m.map().get(table + "/" + key);
      if (v == null) {
        out.add(null);
        continue;
      }
      Map<String, String> s = new HashMap<>();
      RecordCodec.decode(v, null).forEach((f, b) -> s.put(f, new String(b, StandardCharsets.UTF_8)));
      out.add(s);
    }
    return out;
  }

  @Test
  void everyWriteIsOnEveryMemberWhenItReturns() throws Exception {
    DB db = db(3);
    Map<String, String> abc = Map.of("field0", "a", "field1", "b", "field2", "c");
    assertEquals(Status.OK, db.insert("usertable", "user1", fields("field0", "a", "field1", "b", "field2", "c")));
    assertEquals(Status.OK, db.insert("usertable", "user2", fields("field0", "x", "field1", "y", "field2", "z")));
    assertEquals(List.of(abc, abc), onMembers("usertable", "user1"));

    Map<String, ByteIterator> all = new HashMap<>();
    assertEquals(Status.OK, db.read("usertable", "user1", null, all));
    assertEquals(abc, strings(all));
    Map<String, ByteIterator> one = new HashMap<>();
    assertEquals(Status.OK, db.read("usertable", "user1", Set.of("field1"), one));
    assertEquals(Map.of("field1", "b"), strings(one));
    assertEquals(Status.NOT_FOUND, db.read("usertable", "nobody", null, new HashMap<>()));

    // A partial update keeps the other fields (a conditional write at every member); a whole one replaces.
    assertEquals(Status.OK, db.update("usertable", "user1", fields("field1", "B")));
    Map<String, String> aBc = Map.of("field0", "a", "field1", "B", "field2", "c");
    Map<String, ByteIterator> merged = new HashMap<>();
    db.read("usertable", "user1", null, merged);
    assertEquals(aBc, strings(merged));
    assertEquals(List.of(aBc, aBc), onMembers("usertable", "user1"));
    assertEquals(Status.OK, db.update("usertable", "user1", fields("field0", "1", "field1", "2", "field2", "3")));
    Map<String, String> whole = Map.of("field0", "1", "field1", "2", "field2", "3");
    assertEquals(List.of(whole, whole), onMembers("usertable", "user1"));
    assertEquals(Status.NOT_FOUND, db.update("usertable", "nobody", fields("field1", "B")));
    assertEquals(java.util.Arrays.asList(null, null), onMembers("usertable", "nobody"));

    assertEquals(Status.NOT_IMPLEMENTED, db.scan("usertable", "user1", 10, null, new Vector<>()));

    assertEquals(Status.OK, db.delete("usertable", "user2"));
    assertEquals(java.util.Arrays.asList(null, null), onMembers("usertable", "user2"));
    assertEquals(Status.NOT_FOUND, db.delete("usertable", "user2"));
    assertEquals(Status.NOT_FOUND, db.read("usertable", "user2", null, new HashMap<>()));
  }

  @Test
  void aConditionalWriteComparesContentsAtEveryMember() throws Exception {
    db(1); // the binding's member, the writer
    try (JGroupsNode extra = JGroupsNode.join(settings, 20_000, 4, null)) {
      ReplicatedMap writer = extra.map();
      byte[] v1 = "one".getBytes(StandardCharsets.UTF_8);
      writer.putAcked("k", v1);
      // Another array of the same bytes matches; other bytes do not, anywhere.
      assertTrue(writer.replaceAcked("k", "one".getBytes(StandardCharsets.UTF_8), "two".getBytes(StandardCharsets.UTF_8)));
      assertFalse(writer.replaceAcked("k", "one".getBytes(StandardCharsets.UTF_8), "three".getBytes(StandardCharsets.UTF_8)));
      for (JGroupsNode m : members) {
        assertArrayEquals("two".getBytes(StandardCharsets.UTF_8), m.map().get("k"));
      }
      assertFalse(writer.replaceAcked("absent", v1, v1));
      assertNull(members.get(0).map().get("absent"));
      assertTrue(writer.removeAcked("k"));
      assertFalse(writer.removeAcked("k"));
      assertNull(members.get(1).map().get("k"));
    }
  }

  @Test
  void aLateMemberReceivesTheStateAndTheThreadsShareOneMember() throws Exception {
    DB a = db(1);
    assertEquals(Status.OK, a.insert("t", "k", fields("field0", "v")));
    DB b = db(1); // the second YCSB thread: the same member, not a fourth
    awaitView(members.get(0), 3);
    Map<String, ByteIterator> r = new HashMap<>();
    assertEquals(Status.OK, b.read("t", "k", null, r));
    assertEquals("v", r.get("field0").toString());
    a.cleanup();
    assertEquals(Status.OK, b.read("t", "k", null, new HashMap<>()), "b's shared member still joined");
    try (JGroupsNode late = JGroupsNode.join(settings, 20_000, 4, null)) {
      assertEquals(Map.of("field0", "v"), strings(toIterators(late.map().get("t/k"))));
    }
  }

  @Test
  void withFewerMembersThanRequiredTheBindingDoesNotStart() throws Exception {
    Properties p = properties(1);
    p.setProperty("jgroups.members", "4");
    p.setProperty("jgroups.timeout_ms", "1500");
    DB db = new JGroupsYcsbClient();
    db.setProperties(p);
    DBException e = assertThrows(DBException.class, db::init);
    assertTrue(e.getMessage().contains("not 4"), e.getMessage());
    awaitView(members.get(0), 2); // the binding's member left again
  }

  /** Waits (up to 20 s) until node's view has n members. */
  private static void awaitView(JGroupsNode node, int n) throws InterruptedException {
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (node.channel().getView().size() != n) {
      assertTrue(System.nanoTime() < deadline, "view " + node.channel().getView() + ", not " + n + " members");
      synchronized (node.map()) {
        node.map().wait(50); // JGroupsNode notifies the map on every view
      }
    }
  }

  @Test
  void theStackStaysOnLoopback() throws IOException {
    String xml = JGroupsNode.stack(settings);
    assertEquals(2, xml.split("bind_addr=\"127.0.0.1\"", -1).length - 1, "UDP's and FD_SOCK2's: " + xml);
    assertEquals(2, xml.split("bind_addr=", -1).length - 1, xml);
    assertTrue(xml.contains("ip_ttl=\"0\""), xml);
    assertTrue(xml.contains("mcast_port=\"" + settings.mcastPort() + "\""), xml);
    assertFalse(xml.contains("${"), xml);
    assertThrows(IllegalArgumentException.class,
        () -> new JGroupsNode.Settings("c", "10.0.0.1", 1, 2, 3), "a unicast address is no group");
  }

  @Test
  void aMemberProcessSaysReadyServesTheStateAndLeavesOnSigterm() throws Exception {
    members.get(1).map().putAcked("t/k", "v".getBytes(StandardCharsets.UTF_8));
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), JGroupsMember.class.getName(),
        "--cluster", settings.cluster(), "--mcast-addr", settings.mcastAddr(),
        "--mcast-port", Integer.toString(settings.mcastPort()), "--bind-port", Integer.toString(settings.bindPort()),
        "--expect", "3", "--timeout-ms", "20000"); // without three members it exits: readLine ends
    pb.redirectError(ProcessBuilder.Redirect.DISCARD);
    Process member = pb.start();
    try {
      String ready;
      try (var out = new java.io.BufferedReader(new java.io.InputStreamReader(member.getInputStream(),
          StandardCharsets.UTF_8))) {
        ready = out.readLine(); // its first line, once the view has three members
      }
      assertTrue(ready != null && ready.startsWith("ready members=3 ") && ready.endsWith(" records=1"), ready);
      awaitView(members.get(0), 3);
      member.destroy(); // SIGTERM: the member leaves, so the view shrinks without waiting for a suspicion
      assertTrue(member.waitFor(20, java.util.concurrent.TimeUnit.SECONDS), "exited on SIGTERM");
      awaitView(members.get(0), 2);
    } finally {
      member.destroyForcibly();
    }
  }

  private static Map<String, ByteIterator> toIterators(byte[] v) {
    Map<String, ByteIterator> m = new HashMap<>();
    RecordCodec.decode(v, null).forEach((f, b) -> m.put(f, new site.ycsb.ByteArrayByteIterator(b)));
    return m;
  }
}
