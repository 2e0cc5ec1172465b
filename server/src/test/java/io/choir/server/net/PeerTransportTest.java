package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Put;
import io.choir.proto.wire.DatagramHeader;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Real UDP on loopback multicast (never another interface): delivery, fragments, and counted drops. */
class PeerTransportTest {
  private static final long CLUSTER = 0x1234L;

  private record Got(int from, long view, MessageType type, MessageLite body) {}

  private final List<PeerTransport> transports = new ArrayList<>();
  private final Map<Integer, BlockingQueue<Got>> inboxes = new HashMap<>();
  private final Map<Integer, InetSocketAddress> peers = new HashMap<>();

  private static int freeUdpPort() throws Exception {
    try (DatagramSocket s = new DatagramSocket(0, java.net.InetAddress.getLoopbackAddress());
        ServerSocket t = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  @BeforeEach
  void start() throws Exception {
    InetSocketAddress group = new InetSocketAddress("239.255.77.9", freeUdpPort());
    for (int id = 1; id <= 3; id++) {
      peers.put(id, new InetSocketAddress("127.0.0.1", freeUdpPort()));
    }
    for (int id = 1; id <= 3; id++) {
      BlockingQueue<Got> inbox = new LinkedBlockingQueue<>();
      inboxes.put(id, inbox);
      int self = id;
      transports.add(new PeerTransport(new PeerTransport.Settings(self, CLUSTER, peers, group, "lo", 1, 1400,
          1 << 20, 0, ""), (from, view, type, body) -> inbox.add(new Got(from, view, type, body)),
          new SimpleMeterRegistry()));
    }
  }

  @AfterEach
  void stop() {
    transports.forEach(PeerTransport::close);
  }

  @Test
  void shouldDeliverAMulticastToEveryOtherReplicaButNotBackToTheSender() throws Exception {
    Heartbeat hb = Heartbeat.newBuilder().setLastOp(42).setCommit(41).build();
    transports.get(0).send(0, 7, MessageType.HEARTBEAT, hb);
    for (int id : new int[] {2, 3}) {
      Got g = inboxes.get(id).poll(5, TimeUnit.SECONDS);
      assertEquals(new Got(1, 7, MessageType.HEARTBEAT, hb), g);
    }
    assertNull(inboxes.get(1).poll(200, TimeUnit.MILLISECONDS), "the sender drops its own looped-back copy");
  }

  @Test
  void shouldFragmentAPrepareBiggerThanADatagramAndReassembleIt() throws Exception {
    Entry big = Entry.newBuilder().setOp(5).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k"))
        .setValue(ByteString.copyFrom(new byte[20_000]))).build();
    Prepare p = Prepare.newBuilder().setFirstOp(5).addEntries(big).setCommit(4).build();
    transports.get(0).send(2, 0, MessageType.PREPARE, p);
    Got g = inboxes.get(2).poll(5, TimeUnit.SECONDS);
    assertEquals(MessageType.PREPARE, g.type());
    assertEquals(p, g.body());
  }

  @Test
  void shouldDropAndCountEveryKindOfBadDatagram() throws Exception {
    InetSocketAddress target = peers.get(2);
    try (DatagramSocket raw = new DatagramSocket(0, java.net.InetAddress.getLoopbackAddress())) {
      send(raw, target, new byte[] {1, 2, 3});
      send(raw, target, datagram(DatagramHeader.PROTOCOL_VERSION, MessageType.HEARTBEAT_VALUE, 999L, 1, new byte[0]));
      send(raw, target, datagram(9, MessageType.HEARTBEAT_VALUE, CLUSTER, 1, new byte[0]));
      send(raw, target, datagram(DatagramHeader.PROTOCOL_VERSION, 200, CLUSTER, 1, new byte[0]));
      send(raw, target, datagram(DatagramHeader.PROTOCOL_VERSION, MessageType.HEARTBEAT_VALUE, CLUSTER, 77, new byte[0]));
      send(raw, target, datagram(DatagramHeader.PROTOCOL_VERSION, MessageType.PREPARE_VALUE, CLUSTER, 1,
          new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff}));
      // and a good one last: once it arrives, every bad one before it has been handled
      send(raw, target, datagram(DatagramHeader.PROTOCOL_VERSION, MessageType.HEARTBEAT_VALUE, CLUSTER, 1,
          Heartbeat.newBuilder().setLastOp(1).build().toByteArray()));
    }
    Got good = inboxes.get(2).poll(5, TimeUnit.SECONDS);
    assertEquals(MessageType.HEARTBEAT, good.type());
    assertTrue(inboxes.get(2).isEmpty(), "nothing bad reached the core");
    Map<String, Long> dropped = transports.get(1).droppedByReason();
    assertEquals(Map.of("bad_magic", 1L, "foreign_cluster", 1L, "bad_version", 1L, "unknown_type", 1L,
        "unknown_sender", 1L, "malformed", 1L), dropped);
  }

  private static byte[] datagram(int version, int type, long cluster, int sender, byte[] body) {
    ByteBuf b = Unpooled.buffer();
    new DatagramHeader(version, type, 0, cluster, 0, sender).encode(b);
    b.writeBytes(body);
    byte[] out = new byte[b.readableBytes()];
    b.readBytes(out);
    return out;
  }

  private static void send(DatagramSocket s, InetSocketAddress to, byte[] data) throws Exception {
    s.send(new DatagramPacket(data, data.length, to));
  }
}
