package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Put;
import io.choir.server.security.DatagramCodec;
import io.choir.server.storage.MemoryStorage;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Peers by name on real loopback sockets: replica 1 knows replica 2 as "two.choir-peers", which a
 * fake resolver first points at 127.0.0.3 (nobody there) and then at 127.0.0.2, where replica 2
 * really is. Replica 1 hears nothing from 2, resolves it again, and then reaches it by datagram and
 * by peer stream, and accepts 2's keyless peer stream from the new address (refused before). An
 * update of the directory makes a new member a known sender of the codec.
 */
class PeerTransportDirectoryTest {
  private static final long CLUSTER = 0x7777L;
  private static final long WAIT_MS = 15_000;
  private static final long SILENCE_NS = TimeUnit.MILLISECONDS.toNanos(100);

  private record Got(int from, MessageType type, MessageLite body) {}

  private final List<AutoCloseable> open = new ArrayList<>();
  private final Map<Integer, BlockingQueue<Got>> inboxes = Map.of(1, new LinkedBlockingQueue<>(),
      2, new LinkedBlockingQueue<>());

  @AfterEach
  void stop() throws Exception {
    for (int i = open.size() - 1; i >= 0; i--) {
      open.get(i).close();
    }
  }

  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(10); // polling a condition with a deadline
    }
  }

  /** Starts replica id (unicast mode) over directory, with its peer stream server on the same port. */
  private PeerTransport startReplica(int id, PeerDirectory directory, MeterRegistry metrics) throws Exception {
    Map<Integer, InetSocketAddress> configured = new HashMap<>();
    for (int member : directory.ids()) {
      InetSocketAddress a = directory.address(member);
      configured.put(member, a != null ? a : InetSocketAddress.createUnresolved("unresolved.invalid", 1));
    }
    PeerTcpAuth auth = new PeerTcpAuth(CLUSTER, directory, null, 2_000, 16, metrics);
    BlockingQueue<Got> inbox = inboxes.get(id);
    PeerTransport t = new PeerTransport(new PeerTransport.Settings(id, CLUSTER, configured,
        new InetSocketAddress("239.255.77.12", 9), "lo", 1, 1400, 1 << 20, 0, "",
        PeerRouting.maxReassembledBytes(4 << 20), 4 << 20, PeerTransport.Settings.DEFAULT_STREAM_BUFFER_BYTES,
        TransportMode.UNICAST, MulticastProbes.DEFAULT_INTERVAL_NS, SILENCE_NS), directory, null, 1, auth,
        (from, view, type, body) -> inbox.add(new Got(from, type, body)), metrics);
    open.add(t);
    StateTransferServer server = new StateTransferServer(directory.address(id), id, CLUSTER, directory.ids(),
        () -> 0, new MemoryStorage(), StateTransferServer.Limits.defaults(), 1, t.streamSink(), auth);
    open.add(server);
    return t;
  }

  private static Prepare bigPrepare(long op) {
    Entry big = Entry.newBuilder().setOp(op).setView(1).setPut(Put.newBuilder()
        .setKey(ByteString.copyFromUtf8("k")).setValue(ByteString.copyFrom(new byte[50_000]))).build();
    return Prepare.newBuilder().setFirstOp(op).addEntries(big).build();
  }

  @Test
  void shouldResolveAChangedNameAgainAndThenReachAndAdmitThePeerAtItsNewAddress() throws Exception {
    Set<Integer> taken = new HashSet<>();
    int port1 = PeerTransportTest.freeUdpAndTcpPort(taken);
    int port2 = PeerTransportTest.freeUdpAndTcpPort(taken);
    PeerDirectoryTest.FakeResolver resolver = new PeerDirectoryTest.FakeResolver();
    resolver.set("two.choir-peers", "127.0.0.3"); // a stale record: nobody listens there
    MeterRegistry metrics1 = new SimpleMeterRegistry();
    PeerDirectory d1 = new PeerDirectory(1, Map.of(1, new InetSocketAddress("127.0.0.1", port1),
        2, InetSocketAddress.createUnresolved("two.choir-peers", port2)), resolver, System::nanoTime, SILENCE_NS,
        metrics1);
    PeerDirectory d2 = new PeerDirectory(2, Map.of(1, new InetSocketAddress("127.0.0.1", port1),
        2, new InetSocketAddress("127.0.0.2", port2)), resolver, System::nanoTime, SILENCE_NS,
        new SimpleMeterRegistry());
    PeerTransport t1 = startReplica(1, d1, metrics1);
    MeterRegistry metrics2 = new SimpleMeterRegistry();
    PeerTransport t2 = startReplica(2, d2, metrics2);
    Heartbeat hb = Heartbeat.newBuilder().setLastOp(1).build();
    t1.send(2, 1, MessageType.HEARTBEAT, hb);
    // Replica 2's keyless stream to 1 comes from 127.0.0.2, which 1 does not know as a member yet.
    t2.send(1, 1, MessageType.PREPARE, bigPrepare(1));
    await(() -> t1.directory().address(2) != null, "resolved");
    await(() -> (long) metrics1.counter("choir.peer_tcp.refused.unknown_address").count() >= 1,
        "1 refuses 2's stream from an address it does not know");
    assertTrue(inboxes.get(2).isEmpty(), "the stale address reaches nobody");
    resolver.set("two.choir-peers", "127.0.0.2");
    // 1 has heard nothing from 2: within about a second it asks again, and its datagrams reach 2.
    await(() -> {
      t1.send(2, 1, MessageType.HEARTBEAT, hb);
      return !inboxes.get(2).isEmpty();
    }, "a datagram reaches 2 at its new address");
    assertEquals(new Got(1, MessageType.HEARTBEAT, hb), inboxes.get(2).poll());
    assertEquals(1, d1.addressChanges());
    assertTrue(d1.resolutions() >= 2);
    // The peer stream connects to the new address too.
    inboxes.get(2).clear();
    Prepare big = bigPrepare(2);
    t1.send(2, 1, MessageType.PREPARE, big);
    await(() -> inboxes.get(2).stream().anyMatch(g -> g.body().equals(big)), "the big PREPARE over the stream");
    // And 1 now admits 2's keyless stream from 127.0.0.2 (the stream's backoff is at most a second).
    await(() -> {
      t2.send(1, 1, MessageType.PREPARE, bigPrepare(3));
      return inboxes.get(1).stream().anyMatch(g -> g.type() == MessageType.PREPARE);
    }, "1 admits 2's stream from its new address");
  }

  @Test
  void shouldMakeANewMemberAKnownSenderOnUpdate() throws Exception {
    Set<Integer> taken = new HashSet<>();
    int port1 = PeerTransportTest.freeUdpAndTcpPort(taken);
    int port2 = PeerTransportTest.freeUdpAndTcpPort(taken);
    int port3 = PeerTransportTest.freeUdpAndTcpPort(taken);
    MeterRegistry metrics = new SimpleMeterRegistry();
    Map<Integer, InetSocketAddress> two = Map.of(1, new InetSocketAddress("127.0.0.1", port1),
        2, new InetSocketAddress("127.0.0.1", port2));
    PeerDirectory d1 = new PeerDirectory(1, two, host -> InetAddress.getLoopbackAddress(), System::nanoTime,
        SILENCE_NS, metrics);
    startReplica(1, d1, metrics);
    DatagramCodec three = new DatagramCodec(3, CLUSTER, Set.of(1, 2, 3), null, 5);
    byte[] hb = Heartbeat.newBuilder().setLastOp(9).build().toByteArray();
    try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
      byte[] d = three.encode(MessageType.HEARTBEAT.getNumber(), 1, hb);
      s.send(new DatagramPacket(d, d.length, new InetSocketAddress("127.0.0.1", port1)));
      await(() -> metrics.counter("choir.datagrams.dropped.unknown_sender").count() == 1, "3 is no member yet");
      d1.update(Map.of(1, two.get(1), 2, two.get(2), 3, new InetSocketAddress("127.0.0.1", port3)));
      byte[] again = three.encode(MessageType.HEARTBEAT.getNumber(), 1, hb);
      s.send(new DatagramPacket(again, again.length, new InetSocketAddress("127.0.0.1", port1)));
      Got g = inboxes.get(1).poll(WAIT_MS, TimeUnit.MILLISECONDS);
      assertEquals(3, g.from(), "the codec's known senders followed the update");
      assertEquals(1, (long) metrics.counter("choir.datagrams.dropped.unknown_sender").count());
    }
  }
}
