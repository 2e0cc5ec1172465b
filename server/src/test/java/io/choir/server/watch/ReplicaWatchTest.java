package io.choir.server.watch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.CancelWatch;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.Watch;
import io.choir.proto.WatchEvent;
import io.choir.server.config.ServerConfig;
import io.choir.server.replica.ReplicaServer;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Watches on a real replica (one, in process) over its client port, with the protocol's own frames: the
 * first answer, the events of puts made on another connection, cancel, a slow watcher cut off, and the
 * heap a watcher costs.
 */
class ReplicaWatchTest {
  @TempDir Path dir;

  /** RawClient speaks the client protocol over a plain socket: 4-byte length, then the message. */
  static final class RawClient implements AutoCloseable {
    final Socket socket;
    final DataOutputStream out;
    final DataInputStream in;

    RawClient(InetSocketAddress address) throws IOException {
      this(address, 0);
    }

    /**
     * A client whose socket has a receive buffer of receiveBufferBytes (0: the default), set before it
     * connects: set after, TCP has already announced a large window, the sender meets a zero window and
     * then waits for its persist timer's growing probes (seconds) once the reader drains.
     */
    RawClient(InetSocketAddress address, int receiveBufferBytes) throws IOException {
      socket = new Socket();
      if (receiveBufferBytes > 0) {
        socket.setReceiveBufferSize(receiveBufferBytes);
      }
      socket.connect(address, 10_000);
      socket.setSoTimeout(10_000);
      out = new DataOutputStream(socket.getOutputStream());
      in = new DataInputStream(socket.getInputStream());
    }

    void send(Request r) throws IOException {
      byte[] b = r.toByteArray();
      out.writeInt(b.length);
      out.write(b);
      out.flush();
    }

    Response read() throws IOException {
      byte[] b = new byte[in.readInt()];
      in.readFully(b);
      return Response.parseFrom(b);
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private ReplicaServer start(Map<String, Object> extra) throws Exception {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cluster_id", "watch-test");
    m.put("replica_id", 1);
    m.put("replicas", "1=127.0.0.1:" + freePort() + "/127.0.0.1:" + freePort());
    m.put("data_dir", dir.resolve("data").toString());
    m.put("log_level", "warn");
    m.put("durability", "buffered");
    m.putAll(extra);
    return ReplicaServer.start(ServerConfig.build(m, Map.of()));
  }

  private static Request put(long id, String key, String value) {
    return Request.newBuilder().setRequestId(id).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key))
        .setValue(ByteString.copyFromUtf8(value))).build();
  }

  private static Request watch(long id, String key, boolean prefix, long from) {
    return Request.newBuilder().setRequestId(id).setWatch(Watch.newBuilder().setKey(ByteString.copyFromUtf8(key))
        .setPrefix(prefix).setStartRevision(from).setPrevValue(true)).build();
  }

  @Test
  void shouldStreamThePutsOfAnotherConnectionInOrderAndStopOnCancel() throws Exception {
    try (ReplicaServer replica = start(Map.of()); RawClient watcher = new RawClient(replica.clientAddress());
        RawClient writer = new RawClient(replica.clientAddress())) {
      watcher.send(watch(5, "app/", true, 0));
      Response first = watcher.read();
      assertEquals(Status.OK, first.getStatus());
      assertEquals(5, first.getRequestId());
      long start = first.getWatchEvents().getStartRevision();
      List<Long> versions = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        writer.send(put(i + 1, i % 2 == 0 ? "app/k" : "other/k", "v" + i));
        Response r = writer.read();
        assertEquals(Status.OK, r.getStatus(), r.getError());
        if (i % 2 == 0) {
          versions.add(r.getVersion());
        }
      }
      List<WatchEvent> got = new ArrayList<>();
      while (got.size() < versions.size()) {
        Response r = watcher.read();
        assertEquals(5, r.getRequestId());
        got.addAll(r.getWatchEvents().getEventsList());
      }
      List<Long> revisions = got.stream().map(WatchEvent::getRevision).toList();
      assertEquals(versions, revisions);
      assertTrue(versions.get(0) >= start);
      assertEquals("v2", got.get(1).getValue().toStringUtf8());
      assertEquals("v0", got.get(1).getPrevValue().toStringUtf8(), "previous value asked for");
      assertEquals(versions.get(0), got.get(1).getPrevVersion());

      // Resume from a revision out of the history, on a new connection: the same events again.
      try (RawClient again = new RawClient(replica.clientAddress())) {
        again.send(watch(1, "app/k", false, versions.get(3)));
        assertEquals(Status.OK, again.read().getStatus());
        List<Long> resumed = new ArrayList<>();
        while (resumed.size() < versions.size() - 3) {
          again.read().getWatchEvents().getEventsList().forEach(e -> resumed.add(e.getRevision()));
        }
        assertEquals(versions.subList(3, versions.size()), resumed);
      }

      watcher.send(Request.newBuilder().setRequestId(6).setCancelWatch(CancelWatch.newBuilder().setWatchRequestId(5))
          .build());
      Response cancelled = watcher.read();
      assertEquals(6, cancelled.getRequestId());
      assertEquals(Status.OK, cancelled.getStatus());
      writer.send(put(100, "app/k", "after"));
      writer.read();
      watcher.send(Request.newBuilder().setRequestId(7).setCancelWatch(CancelWatch.newBuilder().setWatchRequestId(5))
          .build());
      Response none = watcher.read(); // no event came in between: the next frame answers the second cancel
      assertEquals(7, none.getRequestId());
      assertEquals(Status.NOT_FOUND, none.getStatus());
      assertEquals(0, replica.watches().watchers());
    }
  }

  @Test
  void shouldCutOffAWatcherWhoseConnectionDoesNotRead() throws Exception {
    try (ReplicaServer replica = start(Map.of("watch_buffer_bytes", 4096, "watch_history_events", 100,
        "client_write_buffer_bytes", 65536));
        RawClient stuck = new RawClient(replica.clientAddress(), 4096);
        RawClient writer = new RawClient(replica.clientAddress())) {
      stuck.send(watch(1, "", true, 0));
      String value = "x".repeat(4000);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      int i = 0;
      while (replica.watches().cutOffCount() == 0 && System.nanoTime() < deadline) {
        writer.send(put(++i, "k" + (i % 10), value));
        assertEquals(Status.OK, writer.read().getStatus());
      }
      assertEquals(1, replica.watches().cutOffCount(), "cut off after " + i + " puts");
      assertEquals(0, replica.watches().watchers());
      // What it was sent ends with the error, never a gap before it.
      Response r;
      long next = 0;
      do {
        r = stuck.read();
        for (WatchEvent e : r.getWatchEvents().getEventsList()) {
          assertTrue(e.getRevision() > next, "in order");
          next = e.getRevision();
        }
      } while (r.getStatus() == Status.OK);
      assertEquals(Status.UNAVAILABLE, r.getStatus());
      assertTrue(r.getError().startsWith("watch cut off"), r.getError());
    }
  }

  /**
   * A watch's connection is quiet while nothing changes: it is not closed as idle, as a connection
   * without a watch is (which shows that the idle timeout has passed).
   */
  @Test
  void shouldNotCloseAWatchingConnectionAsIdle() throws Exception {
    try (ReplicaServer replica = start(Map.of("client_idle_timeout_ms", 200));
        RawClient watcher = new RawClient(replica.clientAddress());
        RawClient quiet = new RawClient(replica.clientAddress())) {
      watcher.send(watch(1, "k", false, 0));
      assertEquals(Status.OK, watcher.read().getStatus());
      quiet.send(put(1, "other", "x"));
      assertEquals(Status.OK, quiet.read().getStatus());
      assertEquals(-1, quiet.in.read(), "the connection without a watch is closed as idle");
      try (RawClient writer = new RawClient(replica.clientAddress())) {
        writer.send(put(2, "k", "v"));
        long version = writer.read().getVersion();
        Response event = watcher.read();
        assertEquals(version, event.getWatchEvents().getEvents(0).getRevision());
      }
    }
  }

  /** Heap per watcher: 10,000 watches of distinct keys on one replica, heap after GC before and after. */
  @Test
  void shouldMeasureTheHeapAWatcherCosts() throws Exception {
    int connections = 10;
    int perConnection = 1000;
    try (ReplicaServer replica = start(Map.of())) {
      List<RawClient> clients = new ArrayList<>();
      for (int c = 0; c < connections; c++) {
        clients.add(new RawClient(replica.clientAddress()));
      }
      clients.get(0).send(watch(1, "warm", false, 0)); // the watch path's classes, loaded before measuring
      clients.get(0).read();
      long before = usedAfterGc();
      long id = 10;
      for (RawClient client : clients) {
        for (int w = 0; w < perConnection; w++) {
          client.send(watch(id++, "service/" + id, false, 0));
        }
      }
      for (RawClient client : clients) {
        for (int w = 0; w < perConnection; w++) {
          assertEquals(Status.OK, client.read().getStatus());
        }
      }
      long after = usedAfterGc();
      int watchers = connections * perConnection;
      assertEquals(watchers + 1, replica.watches().watchers());
      long perWatcher = (after - before) / watchers;
      System.out.println("ReplicaWatchTest heap per watcher: " + perWatcher + " bytes (" + watchers
          + " watchers, " + (after - before) + " bytes)");
      assertTrue(perWatcher < 2048, "heap per watcher " + perWatcher);
      for (RawClient client : clients) {
        client.close();
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (replica.watches().watchers() > 0 && System.nanoTime() < deadline) {
        Thread.sleep(10); // polling, with a deadline
      }
      assertEquals(0, replica.watches().watchers(), "closed connections take their watches");
    }
  }

  private static long usedAfterGc() {
    Runtime rt = Runtime.getRuntime();
    long used = Long.MAX_VALUE;
    for (int i = 0; i < 5; i++) {
      System.gc();
      used = Math.min(used, rt.totalMemory() - rt.freeMemory());
    }
    return used;
  }
}
