package io.choir.server.watch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.LeaseGrant;
import io.choir.proto.LeaseKeepAlive;
import io.choir.proto.LeaseRevoke;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.Watch;
import io.choir.proto.WatchEvent;
import io.choir.server.config.ServerConfig;
import io.choir.server.replica.ReplicaServer;
import io.choir.server.watch.ReplicaWatchTest.RawClient;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LeaseWatchTest: what a watcher sees when a lease ends (docs/watch.md). A revoke or an expiry deletes
 * every key attached in one entry, so a prefix watcher gets one DELETE per attached key, all at that
 * entry's revision, with the values they had, and nothing for the keys of other leases or for writes the
 * replica refused (a put with an ended lease, a keep-alive of an ended lease).
 */
class LeaseWatchTest {
  @TempDir Path dir;

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** One replica with a short election timeout, so the shortest TTL is 400 ms. */
  private ReplicaServer start() throws Exception {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cluster_id", "lease-watch-test");
    m.put("replica_id", 1);
    m.put("replicas", "1=127.0.0.1:" + freePort() + "/127.0.0.1:" + freePort());
    m.put("data_dir", dir.resolve("data").toString());
    m.put("log_level", "warn");
    m.put("durability", "buffered");
    m.put("election_timeout_ms", 200);
    return ReplicaServer.start(ServerConfig.build(m, Map.of()));
  }

  private static ByteString utf8(String s) {
    return ByteString.copyFromUtf8(s);
  }

  private static long ids = 1;

  private static Response call(RawClient c, Request.Builder r) throws IOException {
    long id = ids++;
    c.send(r.setRequestId(id).build());
    Response response = c.read();
    assertEquals(id, response.getRequestId());
    return response;
  }

  private static long grant(RawClient c, long ttlMs) throws IOException {
    Response r = call(c, Request.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(ttlMs)));
    assertEquals(Status.OK, r.getStatus(), r.getError());
    return r.getLease().getId();
  }

  private static Response put(RawClient c, String key, String value, long lease) throws IOException {
    return call(c, Request.newBuilder().setPut(Put.newBuilder().setKey(utf8(key)).setValue(utf8(value)).setLease(lease)));
  }

  /** Reads the watcher's events until count have come (the socket's timeout ends a wait for more). */
  private static List<WatchEvent> events(RawClient watcher, int count) throws IOException {
    List<WatchEvent> got = new ArrayList<>();
    while (got.size() < count) {
      Response r = watcher.read();
      assertEquals(Status.OK, r.getStatus(), r.getError());
      got.addAll(r.getWatchEvents().getEventsList());
    }
    return got;
  }

  private static Set<String> keys(List<WatchEvent> events) {
    Set<String> keys = new TreeSet<>();
    events.forEach(e -> keys.add(e.getKey().toStringUtf8()));
    return keys;
  }

  private static void assertOneDeleteEntry(List<WatchEvent> events, Set<String> keys, String value) {
    assertEquals(keys, keys(events));
    long revision = events.get(0).getRevision();
    for (WatchEvent e : events) {
      assertEquals(WatchEvent.Kind.DELETE, e.getKind(), e.toString());
      assertEquals(revision, e.getRevision(), "every key of the lease at the one revision of its end: " + events);
      assertTrue(e.getHasPrev());
      assertEquals(value, e.getPrevValue().toStringUtf8());
    }
  }

  @Test
  void aRevokeAndAnExpiryEachGiveOneDeletePerAttachedKeyAtOneRevision() throws Exception {
    try (ReplicaServer replica = start(); RawClient writer = new RawClient(replica.clientAddress());
        RawClient watcher = new RawClient(replica.clientAddress())) {
      long revoked = grant(writer, 60_000);
      long expiring = grant(writer, 600);
      long kept = grant(writer, 60_000);
      watcher.send(Request.newBuilder().setRequestId(1).setWatch(Watch.newBuilder().setKey(utf8("svc/"))
          .setPrefix(true).setPrevValue(true)).build());
      assertEquals(Status.OK, watcher.read().getStatus());
      for (String k : List.of("svc/r1", "svc/r2", "svc/r3")) {
        assertEquals(Status.OK, put(writer, k, "r", revoked).getStatus());
      }
      for (String k : List.of("svc/e1", "svc/e2")) {
        assertEquals(Status.OK, put(writer, k, "e", expiring).getStatus());
      }
      assertEquals(Status.OK, put(writer, "svc/k1", "k", kept).getStatus());
      assertEquals(6, events(watcher, 6).size(), "the six puts");

      Response revoke = call(writer, Request.newBuilder().setLeaseRevoke(LeaseRevoke.newBuilder().setId(revoked)));
      assertEquals(Status.OK, revoke.getStatus(), revoke.getError());
      List<WatchEvent> afterRevoke = events(watcher, 3);
      assertOneDeleteEntry(afterRevoke, Set.of("svc/r1", "svc/r2", "svc/r3"), "r");

      // The expiry: the primary's own entry, no client's; the socket's 10 s timeout bounds the wait.
      List<WatchEvent> afterExpiry = events(watcher, 2);
      assertOneDeleteEntry(afterExpiry, Set.of("svc/e1", "svc/e2"), "e");
      assertTrue(afterExpiry.get(0).getRevision() > afterRevoke.get(0).getRevision());

      // Refused writes give no event: a put with the ended lease, a keep-alive of it. The next event
      // is the plain put after them.
      assertEquals(Status.NOT_FOUND, put(writer, "svc/late", "x", expiring).getStatus());
      assertEquals(Status.NOT_FOUND, call(writer, Request.newBuilder().setLeaseKeepAlive(
          LeaseKeepAlive.newBuilder().setId(revoked))).getStatus());
      Response plain = put(writer, "svc/plain", "p", 0);
      assertEquals(Status.OK, plain.getStatus());
      List<WatchEvent> last = events(watcher, 1);
      assertEquals(1, last.size(), last.toString());
      assertEquals("svc/plain", last.get(0).getKey().toStringUtf8());
      assertEquals(WatchEvent.Kind.PUT, last.get(0).getKind());
    }
  }
}
