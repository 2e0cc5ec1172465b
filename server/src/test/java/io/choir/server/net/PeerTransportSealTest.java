package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
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
import io.choir.server.security.ClusterKeys;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * PeerTransportSealTest: real UDP on loopback with a cluster key. Sealed multicast and fragments are
 * delivered; a captured datagram sent again is a replay; a replica with another key, or none, reads
 * nothing and counts why.
 */
class PeerTransportSealTest {
  private static final long CLUSTER = 0x5ea1L;

  private record Got(int from, long view, MessageType type, MessageLite body) {}

  private final Map<Integer, PeerTransport> transports = new HashMap<>();
  private final Map<Integer, BlockingQueue<Got>> inboxes = new HashMap<>();
  private final Map<Integer, InetSocketAddress> peers = new HashMap<>();
  private InetSocketAddress group;

  private static ClusterKeys key(int id, long seed) {
    byte[] k = new byte[ClusterKeys.KEY_BYTES];
    new SplittableRandom(seed).nextBytes(k);
    Map<Integer, byte[]> m = new LinkedHashMap<>();
    m.put(id, k);
    return ClusterKeys.of(m);
  }

  /** Starts replicas 1..3, replica i with keys.get(i - 1) (null: no key). */
  private void start(ClusterKeys... keys) throws Exception {
    Set<Integer> taken = new HashSet<>();
    group = new InetSocketAddress("239.255.77.9", PeerTransportTest.freeUdpAndTcpPort(taken));
    for (int id = 1; id <= 3; id++) {
      peers.put(id, new InetSocketAddress("127.0.0.1", PeerTransportTest.freeUdpAndTcpPort(taken)));
    }
    for (int id = 1; id <= 3; id++) {
      BlockingQueue<Got> inbox = new LinkedBlockingQueue<>();
      inboxes.put(id, inbox);
      transports.put(id, new PeerTransport(
          new PeerTransport.Settings(id, CLUSTER, peers, group, "lo", 1, 1400, 1 << 20, 0, ""),
          keys[id - 1], 100 + id, (from, view, type, body) -> inbox.add(new Got(from, view, type, body)),
          new SimpleMeterRegistry()));
    }
  }

  @AfterEach
  void stop() {
    transports.values().forEach(PeerTransport::close);
  }

  private static Prepare bigPrepare(long op, int valueBytes) {
    byte[] value = new byte[valueBytes];
    new SplittableRandom(op).nextBytes(value);
    return Prepare.newBuilder().setFirstOp(op).addEntries(Entry.newBuilder().setOp(op).setView(1)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k")).setValue(ByteString.copyFrom(value))))
        .build();
  }

  private static void await(BooleanSupplier c, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5); // polling a condition with a deadline
    }
  }

  @Test
  void shouldDeliverSealedMulticastAndFragmentsAndDropACapturedCopyAsAReplay() throws Exception {
    ClusterKeys k = key(1, 7);
    start(k, k, k);
    // An IPv4 channel with IP_MULTICAST_IF on loopback (an IPv6 or default one would send to the group
    // through the default route: ENVIRONMENT.md), joined to the group on lo like a replica.
    NetworkInterface lo = NetworkInterface.getByName("lo");
    try (DatagramChannel capture = DatagramChannel.open(StandardProtocolFamily.INET)) {
      capture.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      capture.setOption(StandardSocketOptions.IP_MULTICAST_IF, lo);
      capture.bind(new InetSocketAddress(group.getPort()));
      capture.join(group.getAddress(), lo);
      Heartbeat hb = Heartbeat.newBuilder().setLastOp(42).setCommit(41).build();
      transports.get(1).send(0, 7, MessageType.HEARTBEAT, hb);
      Prepare p = bigPrepare(5, 20_000);
      transports.get(1).send(0, 7, MessageType.PREPARE, p);
      for (int id : new int[] {2, 3}) {
        assertEquals(new Got(1, 7, MessageType.HEARTBEAT, hb), inboxes.get(id).poll(5, TimeUnit.SECONDS));
        Got g = inboxes.get(id).poll(5, TimeUnit.SECONDS);
        assertNotNull(g, "the sealed fragments were reassembled at " + id);
        assertEquals(p, g.body());
      }
      ByteBuffer got = ByteBuffer.allocate(65_536);
      capture.receive(got); // blocking: the heartbeat was sent to the group before
      byte[] captured = Arrays.copyOf(got.array(), got.position());
      DatagramHeader h = DatagramHeader.decode(captured, captured.length);
      assertTrue(h.sealed(), "what travels is sealed");
      assertEquals(1, h.keyId());
      assertEquals(101, h.epoch());
      capture.send(ByteBuffer.wrap(captured), peers.get(2));
      capture.send(ByteBuffer.wrap(captured), group);
      await(() -> transports.get(2).droppedByReason().getOrDefault("replay", 0L) == 2, "two replays at 2");
      assertNull(inboxes.get(2).poll(200, TimeUnit.MILLISECONDS), "a replay is not delivered");
    }
  }

  @Test
  void shouldReadNothingFromAReplicaWithAnotherKeyOrNone() throws Exception {
    start(key(1, 7), key(1, 8), null);
    transports.get(1).send(0, 7, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(1).build());
    transports.get(3).send(0, 7, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(3).build());
    await(() -> transports.get(2).droppedByReason().getOrDefault("bad_seal", 0L) == 1, "bad_seal at 2");
    await(() -> transports.get(2).droppedByReason().getOrDefault("unsealed", 0L) == 1, "unsealed at 2");
    await(() -> transports.get(3).droppedByReason().getOrDefault("sealed_without_key", 0L) == 1,
        "sealed_without_key at 3");
    await(() -> transports.get(1).droppedByReason().getOrDefault("unsealed", 0L) == 1, "unsealed at 1");
    for (int id = 1; id <= 3; id++) {
      assertNull(inboxes.get(id).poll(100, TimeUnit.MILLISECONDS), "replica " + id + " read nothing");
    }
  }
}
