package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import com.google.protobuf.UnknownFieldSet;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Put;
import io.choir.proto.StartView;
import io.choir.proto.TransportProbe;
import io.choir.server.security.DatagramCodec;
import io.choir.server.storage.MemoryStorage;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.BindException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * peer_transport unicast and auto on real sockets (loopback only, multicast on lo): in unicast mode a
 * send to all reaches every member by unicast datagrams (big bodies over the peer streams) and never
 * by multicast; in auto mode the transport chooses multicast for the peers that answer its probes and
 * unicast for those that do not (a peer that never joins, or one that loses every multicast datagram
 * by the test fault hook); bad probes are dropped and counted.
 */
class PeerTransportModesTest {
  private static final long CLUSTER = 0x5151L;
  private static final long WAIT_MS = 10_000;
  /** A short probe interval, so that the auto tests decide within a second. */
  private static final long PROBE_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(200);

  private record Got(int from, long view, MessageType type, MessageLite body) {}

  private final Map<Integer, PeerTransport> transports = new HashMap<>();
  private final Map<Integer, StateTransferServer> servers = new HashMap<>();
  private final Map<Integer, BlockingQueue<Got>> inboxes = new HashMap<>();
  private final Map<Integer, MeterRegistry> registries = new HashMap<>();
  private final Map<Integer, InetSocketAddress> peers = new HashMap<>();
  private InetSocketAddress group;

  /** Starts replicas 1..3 in the given modes (loss: test_multicast_loss_percent of each), retrying a lost port. */
  private void start(TransportMode[] modes, int[] loss) throws Exception {
    for (int attempt = 1; ; attempt++) {
      Set<Integer> taken = new HashSet<>();
      group = new InetSocketAddress("239.255.77.11", PeerTransportTest.freeUdpAndTcpPort(taken));
      for (int id = 1; id <= 3; id++) {
        peers.put(id, new InetSocketAddress("127.0.0.1", PeerTransportTest.freeUdpAndTcpPort(taken)));
      }
      try {
        for (int id = 1; id <= 3; id++) {
          startReplica(id, modes[id - 1], loss[id - 1]);
        }
        return;
      } catch (Exception bindFailed) {
        stop();
        if (attempt == 5 || !(bindFailed instanceof BindException
            || String.valueOf(bindFailed.getMessage()).contains("in use"))) {
          throw bindFailed;
        }
      }
    }
  }

  private void startReplica(int id, TransportMode mode, int lossPercent) throws Exception {
    BlockingQueue<Got> inbox = new LinkedBlockingQueue<>();
    inboxes.put(id, inbox);
    MeterRegistry metrics = new SimpleMeterRegistry();
    registries.put(id, metrics);
    PeerTransport t = new PeerTransport(
        new PeerTransport.Settings(id, CLUSTER, peers, group, "lo", 1, 1400, 1 << 20, lossPercent, "",
            PeerRouting.maxReassembledBytes(4 << 20), 4 << 20, PeerTransport.Settings.DEFAULT_STREAM_BUFFER_BYTES)
            .withMode(mode, PROBE_INTERVAL_NS),
        (from, view, type, body) -> inbox.add(new Got(from, view, type, body)), metrics);
    transports.put(id, t);
    servers.put(id, new StateTransferServer(peers.get(id), id, CLUSTER, peers.keySet(), () -> 0,
        new MemoryStorage(), StateTransferServer.Limits.defaults(), 1, t.streamSink()));
  }

  @AfterEach
  void stop() {
    servers.values().forEach(StateTransferServer::close);
    transports.values().forEach(PeerTransport::close);
    servers.clear();
    transports.clear();
  }

  private long counter(int id, String name) {
    return (long) registries.get(id).counter(name).count();
  }

  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5); // polling a condition with a deadline
    }
  }

  private static Prepare bigPrepare(long op, int valueBytes) {
    byte[] value = new byte[valueBytes];
    new Random(op).nextBytes(value);
    Entry big = Entry.newBuilder().setOp(op).setView(1).setPut(Put.newBuilder()
        .setKey(ByteString.copyFromUtf8("k" + op)).setValue(ByteString.copyFrom(value))).build();
    return Prepare.newBuilder().setFirstOp(op).addEntries(big).setCommit(op - 1).build();
  }

  /** The next message handed to id's core, waiting at most WAIT_MS. */
  private Got next(int id) throws InterruptedException {
    return inboxes.get(id).poll(WAIT_MS, TimeUnit.MILLISECONDS);
  }

  @Test
  void shouldSendToAllByUnicastDatagramsAndBigBodiesOverStreamsWithoutEverMulticastingInUnicastMode()
      throws Exception {
    TransportMode u = TransportMode.UNICAST;
    start(new TransportMode[] {u, u, u}, new int[] {0, 0, 0});
    Heartbeat hb = Heartbeat.newBuilder().setLastOp(4).setCommit(3).build();
    transports.get(1).send(0, 2, MessageType.HEARTBEAT, hb);
    for (int id : new int[] {2, 3}) {
      assertEquals(new Got(1, 2, MessageType.HEARTBEAT, hb), next(id), "replica " + id);
    }
    assertEquals(0, counter(1, "choir.datagrams.sent_multicast"));
    assertEquals(2, counter(1, "choir.datagrams.sent_unicast_fanout"));
    // A PREPARE too big for a datagram goes over each member's stream, not as fragments.
    Prepare big = bigPrepare(7, 20_000);
    transports.get(1).send(0, 2, MessageType.PREPARE, big);
    for (int id : new int[] {2, 3}) {
      Got g = next(id);
      assertNotNull(g, "replica " + id + " got the big PREPARE");
      assertEquals(big, g.body());
    }
    await(() -> transports.get(1).streamMessagesSent() == 2, "two stream messages");
    assertEquals(0, counter(1, "choir.datagrams.fragments_sent"));
    // So does any other big message to all.
    StartView sv = StartView.newBuilder().setLastOp(1).setCommit(1).setUnknownFields(UnknownFieldSet.newBuilder()
        .addField(999, UnknownFieldSet.Field.newBuilder().addLengthDelimited(ByteString.copyFrom(new byte[5000]))
            .build()).build()).build();
    transports.get(2).send(0, 2, MessageType.START_VIEW, sv);
    assertEquals(MessageType.START_VIEW, next(1).type());
    assertEquals(MessageType.START_VIEW, next(3).type());
    for (int id = 1; id <= 3; id++) {
      assertEquals(0, counter(id, "choir.datagrams.sent_multicast"), "replica " + id + " never multicasts");
      assertEquals(0, counter(id, "choir.transport.probes_sent"));
      assertEquals(TransportMode.UNICAST, transports.get(id).mode());
    }
  }

  @Test
  void shouldChooseMulticastInAutoModeWhenEveryPeerHearsTheGroupOnLoopback() throws Exception {
    TransportMode a = TransportMode.AUTO;
    start(new TransportMode[] {a, a, a}, new int[] {0, 0, 0});
    await(() -> transports.get(1).multicastPeers().equals(Set.of(2, 3)), "replica 1 reaches 2 and 3 by multicast");
    assertTrue(counter(1, "choir.transport.mode_changes") >= 2, "each peer's change is counted");
    assertTrue(counter(2, "choir.transport.probe_answers_sent") >= 1);
    long before = counter(1, "choir.datagrams.sent_multicast");
    Heartbeat hb = Heartbeat.newBuilder().setLastOp(1).build();
    transports.get(1).send(0, 1, MessageType.HEARTBEAT, hb);
    for (int id : new int[] {2, 3}) {
      assertEquals(new Got(1, 1, MessageType.HEARTBEAT, hb), next(id));
    }
    assertEquals(before + 1, counter(1, "choir.datagrams.sent_multicast"));
    assertEquals(0, counter(1, "choir.datagrams.sent_unicast_fanout"), "no peer needs a unicast copy");
    assertTrue(inboxes.get(2).isEmpty() && inboxes.get(3).isEmpty(), "probes never reach the core");
  }

  @Test
  void shouldFallBackToUnicastPerPeerInAutoModeForPeersThatDoNotHearTheGroup() throws Exception {
    // Replica 2 hears the group; 3 loses every multicast datagram (the test fault hook), so it never
    // hears 1's probes and never answers them.
    start(new TransportMode[] {TransportMode.AUTO, TransportMode.AUTO, TransportMode.AUTO}, new int[] {0, 0, 100});
    await(() -> transports.get(1).multicastPeers().equals(Set.of(2)), "replica 1 reaches only 2 by multicast");
    Heartbeat hb = Heartbeat.newBuilder().setLastOp(2).build();
    long multicastBefore = counter(1, "choir.datagrams.sent_multicast");
    transports.get(1).send(0, 1, MessageType.HEARTBEAT, hb);
    assertEquals(new Got(1, 1, MessageType.HEARTBEAT, hb), next(2));
    assertEquals(new Got(1, 1, MessageType.HEARTBEAT, hb), next(3), "3 gets it by unicast");
    assertEquals(multicastBefore + 1, counter(1, "choir.datagrams.sent_multicast"));
    assertEquals(1, counter(1, "choir.datagrams.sent_unicast_fanout"));
    // The choice is per direction: 3's own probes are heard by 1 and 2, which answer by unicast, so
    // 3 reaches both by multicast.
    await(() -> transports.get(3).multicastPeers().equals(Set.of(1, 2)), "3's multicast reaches 1 and 2");
  }

  @Test
  void shouldSendToAllByUnicastInAutoModeWhenNoPeerHearsTheGroup() throws Exception {
    // 2 never joins (unicast mode), 3 loses every multicast datagram: multicast reaches no one.
    start(new TransportMode[] {TransportMode.AUTO, TransportMode.UNICAST, TransportMode.AUTO},
        new int[] {0, 0, 100});
    await(() -> counter(1, "choir.transport.probes_sent") >= 14, "the start window and more probes");
    assertEquals(Set.of(), transports.get(1).multicastPeers());
    Heartbeat hb = Heartbeat.newBuilder().setLastOp(3).build();
    transports.get(1).send(0, 1, MessageType.HEARTBEAT, hb);
    assertEquals(new Got(1, 1, MessageType.HEARTBEAT, hb), next(2));
    assertEquals(new Got(1, 1, MessageType.HEARTBEAT, hb), next(3));
    assertEquals(0, counter(1, "choir.datagrams.sent_multicast"), "a cluster without multicast is pure unicast");
    assertEquals(2, counter(1, "choir.datagrams.sent_unicast_fanout"));
  }

  @Test
  void shouldDropAndCountBadProbes() throws Exception {
    TransportMode a = TransportMode.AUTO;
    start(new TransportMode[] {a, TransportMode.MULTICAST, TransportMode.MULTICAST}, new int[] {0, 0, 0});
    // Datagrams in replica 2's name, sealed as it would (no key: checksummed), sent to 1's unicast port.
    DatagramCodec forger = new DatagramCodec(2, CLUSTER, Set.of(1, 2, 3), null, 77);
    try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
      byte[] unknownNonce = TransportProbe.newBuilder().setNonce(12345).setAnswer(true).build().toByteArray();
      byte[] probeByUnicast = TransportProbe.newBuilder().setNonce(1).build().toByteArray();
      byte[] malformed = {(byte) 0xff, (byte) 0xff, (byte) 0xff};
      for (byte[] body : new byte[][] {unknownNonce, probeByUnicast, malformed}) {
        byte[] d = forger.encode(MessageType.TRANSPORT_PROBE.getNumber(), 0, body);
        s.send(new DatagramPacket(d, d.length, peers.get(1)));
      }
    }
    await(() -> counter(1, "choir.datagrams.dropped.probe_unknown_nonce") == 1, "the unknown nonce counted");
    await(() -> counter(1, "choir.datagrams.dropped.probe_not_multicast") == 1, "the unicast probe counted");
    await(() -> counter(1, "choir.datagrams.dropped.malformed") == 1, "the malformed probe counted");
    assertEquals(0, counter(1, "choir.transport.probe_answers_sent"), "a unicast probe is not answered");
    assertTrue(inboxes.get(1).isEmpty(), "no probe reaches the core");
    // A replica not in auto mode still answers probes (the asker decides), rate-limited per asker.
    await(() -> transports.get(1).multicastPeers().equals(Set.of(2, 3)), "multicast replicas answer probes");
  }
}
