package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.google.protobuf.MessageLite;
import com.sun.management.OperatingSystemMXBean;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.net.transfer.StateTransferReceiver;
import io.choir.server.security.ClusterKeys;
import io.choir.server.security.PeerHandshake;
import io.choir.server.security.SealedRecords;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.DataInputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * What proving and sealing the peer TCP port costs, on loopback: the time from connect to the first
 * peer message delivered, with and without the handshake, and the throughput of a large state
 * transfer, sealed and in the clear. Prints the figures (no timing is asserted: the machine is shared).
 * About a minute, so only on demand: {@code -Dchoir.peertcp.cost=true -Dtest=PeerTcpCostTest}.
 */
@EnabledIfSystemProperty(named = "choir.peertcp.cost", matches = "true")
class PeerTcpCostTest {
  static final long CLUSTER = 0xC057L;
  static final ClusterKeys KEY = ClusterKeys.generate(1, new SecureRandom());
  static final int CONNECTIONS = Integer.getInteger("choir.peertcp.connections", 300);
  static final int TRANSFER_MIB = Integer.getInteger("choir.peertcp.transfer_mib", 32);
  static final int WARMUP_ROUNDS = Integer.getInteger("choir.peertcp.warmup_rounds", 3);

  private final List<AutoCloseable> closeables = new ArrayList<>();
  private final ExecutorService storageThread = Executors.newSingleThreadExecutor();

  @AfterEach
  void stop() throws Exception {
    for (int i = closeables.size() - 1; i >= 0; i--) {
      closeables.get(i).close();
    }
    storageThread.shutdownNow();
  }

  private record Got(int from, MessageType type, MessageLite body) {}

  private static Map<Integer, InetSocketAddress> members(int port2) {
    Map<Integer, InetSocketAddress> m = new HashMap<>();
    m.put(1, new InetSocketAddress("127.0.0.1", 1));
    m.put(2, new InetSocketAddress("127.0.0.1", port2));
    m.put(3, new InetSocketAddress("127.0.0.1", 3));
    return m;
  }

  private static byte[] heartbeatFrame(long lastOp) {
    byte[] body = PeerEnvelope.newBuilder().setProtocolVersion(DatagramHeader.PROTOCOL_VERSION)
        .setClusterId(CLUSTER).setSender(1).setView(1).setHeartbeat(Heartbeat.newBuilder().setLastOp(lastOp))
        .build().toByteArray();
    return ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).array();
  }

  /** A stream sink that hands every envelope to inbox (as PeerTransport does, without its checks). */
  private static PeerStreamSink sink(BlockingQueue<Got> inbox) {
    return new PeerStreamSink() {
      @Override
      public int maxFrameBytes() {
        return 1 << 20;
      }

      @Override
      public Verdict onEnvelope(PeerEnvelope e) {
        inbox.add(new Got(e.getSender(), MessageType.HEARTBEAT, e.getHeartbeat()));
        return Verdict.DELIVERED;
      }

      @Override
      public void dropped(String reason) {}
    };
  }

  private static double[] percentiles(long[] ns) {
    long[] s = ns.clone();
    Arrays.sort(s);
    return new double[] {s[s.length / 2] / 1e3, s[(int) (s.length * 0.99)] / 1e3};
  }

  @Test
  void shouldMeasureConnectToFirstMessageWithAndWithoutTheHandshake() throws Exception {
    long[] keyed = connectTimes(true);
    long[] plain = connectTimes(false);
    double[] k = percentiles(keyed);
    double[] p = percentiles(plain);
    System.out.printf("peer TCP connect to first message delivered, %d connections on loopback:%n"
        + "  proven and sealed: p50 %.0f us, p99 %.0f us%n  in the clear:      p50 %.0f us, p99 %.0f us%n",
        CONNECTIONS, k[0], k[1], p[0], p[1]);
    // The handshake alone, both sides in one thread (HMACs, key derivation, nonces).
    SecureRandom r = new SecureRandom();
    PeerHandshake.Members m1 = new PeerHandshake.Members(1, CLUSTER, Set.of(1, 2, 3));
    PeerHandshake.Members m2 = new PeerHandshake.Members(2, CLUSTER, Set.of(1, 2, 3));
    int n = 5_000;
    long start = 0;
    for (int i = 0; i < 2 * n; i++) {
      if (i == n) {
        start = System.nanoTime(); // the first half warms up
      }
      byte[] n1 = new byte[32];
      byte[] n2 = new byte[32];
      r.nextBytes(n1);
      r.nextBytes(n2);
      PeerHandshake c = PeerHandshake.connect(KEY, m1, 2, n1);
      PeerHandshake a = PeerHandshake.accept(KEY, m2, n2);
      a.receive(ByteBuffer.wrap(c.pollOutput()));
      c.receive(ByteBuffer.wrap(a.pollOutput()));
      a.receive(ByteBuffer.wrap(c.pollOutput()));
      assertEquals(PeerHandshake.State.DONE, a.state());
    }
    System.out.printf("  handshake CPU, both sides: %.1f us%n", (System.nanoTime() - start) / 1e3 / n);
  }

  private long[] connectTimes(boolean withKey) throws Exception {
    BlockingQueue<Got> inbox = new LinkedBlockingQueue<>();
    PeerTcpAuth auth = withKey
        ? new PeerTcpAuth(2, CLUSTER, members(0), KEY, 2_000, 16, new SimpleMeterRegistry())
        : PeerTcpAuth.unchecked(2, CLUSTER, Set.of(1, 2, 3));
    StateTransferServer server = new StateTransferServer(new InetSocketAddress("127.0.0.1", 0), 2, CLUSTER,
        Set.of(1, 2, 3), () -> 1, new MemoryStorage(), StateTransferServer.Limits.defaults(), 1, sink(inbox), auth);
    closeables.add(server);
    InetSocketAddress to = server.localAddress();
    PeerHandshake.Members self = new PeerHandshake.Members(1, CLUSTER, Set.of(1, 2, 3));
    SecureRandom random = new SecureRandom();
    int warmup = CONNECTIONS / 2;
    long[] times = new long[CONNECTIONS];
    for (int i = 0; i < warmup + CONNECTIONS; i++) {
      long t0 = System.nanoTime();
      try (Socket s = new Socket(to.getAddress(), to.getPort())) {
        s.setTcpNoDelay(true);
        OutputStream out = s.getOutputStream();
        byte[] frame = heartbeatFrame(i);
        if (withKey) {
          byte[] nonce = new byte[PeerHandshake.NONCE_BYTES];
          random.nextBytes(nonce);
          PeerHandshake h = PeerHandshake.connect(KEY, self, 2, nonce);
          out.write(h.pollOutput());
          byte[] challenge = new byte[PeerHandshake.CHALLENGE_BYTES];
          new DataInputStream(s.getInputStream()).readFully(challenge);
          h.receive(ByteBuffer.wrap(challenge));
          byte[] proof = h.pollOutput();
          ByteBuffer sealed = ByteBuffer.allocate(proof.length + SealedRecords.LENGTH_BYTES + frame.length
              + SealedRecords.TAG_BYTES);
          sealed.put(proof);
          h.sessionKeys().sealer().seal(ByteBuffer.wrap(frame), sealed);
          out.write(sealed.array());
        } else {
          out.write(frame);
        }
        Got got = inbox.poll(10, TimeUnit.SECONDS);
        assertNotNull(got, "delivered");
        if (i >= warmup) {
          times[i - warmup] = System.nanoTime() - t0;
        }
      }
    }
    return times;
  }

  @Test
  void shouldMeasureALargeStateTransferSealedAndInTheClear() throws Exception {
    MemoryStorage sourceStorage = new MemoryStorage();
    KvStateMachine source = new KvStateMachine(sourceStorage, 16, 4);
    source.load();
    int keys = TRANSFER_MIB * 1024; // values of 1 KiB
    var entries = PeerTcpAttackTest.data(keys);
    for (int from = 0; from < entries.size(); from += 4096) {
      source.apply(entries.subList(from, Math.min(entries.size(), from + 4096)), false);
    }
    StateTransferServer keyedServer = server(sourceStorage, true);
    StateTransferServer plainServer = server(sourceStorage, false);
    List<Double> keyed = new ArrayList<>();
    List<Double> plain = new ArrayList<>();
    double keyedCpu = 0;
    double plainCpu = 0;
    for (int round = 0; round < WARMUP_ROUNDS + 3; round++) {
      long cpu0 = processCpuNs();
      double k = fetchMiBps(keyedServer, true, source);
      long cpu1 = processCpuNs();
      double p = fetchMiBps(plainServer, false, source);
      long cpu2 = processCpuNs();
      if (round >= WARMUP_ROUNDS) { // the JIT compiles AES-GCM's intrinsics only after a while
        keyed.add(k);
        plain.add(p);
        keyedCpu += (cpu1 - cpu0) / 1e9 / 3;
        plainCpu += (cpu2 - cpu1) / 1e9 / 3;
      }
    }
    // CPU seconds per transfer (both ends, the whole process) hardly depend on how busy the shared
    // machine is; the wall-clock rates above do.
    System.out.printf("  process CPU per transfer: proven and sealed %.2f s, in the clear %.2f s%n", keyedCpu,
        plainCpu);
    keyed.sort(null);
    plain.sort(null);
    System.out.printf("state transfer of %d MiB of values (%d keys), MiB/s over 3 rounds after %d warm-up rounds (min / median / max):%n"
        + "  proven and sealed: %.0f / %.0f / %.0f%n  in the clear:      %.0f / %.0f / %.0f%n",
        TRANSFER_MIB, keys, WARMUP_ROUNDS, keyed.get(0), keyed.get(1), keyed.get(2), plain.get(0), plain.get(1), plain.get(2));
  }

  @Test
  void shouldMeasureSealingAndOpeningRecordsOnOneCore() throws Exception {
    SealedRecords.warmUp(PeerTcpAuth.WARM_UP_RECORDS);
    PeerHandshake.Members m1 = new PeerHandshake.Members(1, CLUSTER, Set.of(1, 2));
    PeerHandshake.Members m2 = new PeerHandshake.Members(2, CLUSTER, Set.of(1, 2));
    byte[] n1 = new byte[32];
    byte[] n2 = new byte[32];
    new SecureRandom().nextBytes(n1);
    new SecureRandom().nextBytes(n2);
    PeerHandshake c = PeerHandshake.connect(KEY, m1, 2, n1);
    PeerHandshake a = PeerHandshake.accept(KEY, m2, n2);
    a.receive(ByteBuffer.wrap(c.pollOutput()));
    c.receive(ByteBuffer.wrap(a.pollOutput()));
    a.receive(ByteBuffer.wrap(c.pollOutput()));
    int size = SealedRecords.MAX_PLAINTEXT_BYTES;
    byte[] plain = new byte[size];
    byte[] sealed = new byte[SealedRecords.LENGTH_BYTES + size + SealedRecords.TAG_BYTES];
    byte[] back = new byte[size];
    long bytes = 0;
    long t0 = System.nanoTime();
    while (bytes < (512L << 20)) {
      c.sessionKeys().sealer().seal(plain, 0, size, sealed, 0);
      a.sessionKeys().opener().open(size + SealedRecords.TAG_BYTES, sealed, SealedRecords.LENGTH_BYTES, back, 0);
      bytes += size;
    }
    double s = (System.nanoTime() - t0) / 1e9;
    System.out.printf("sealed and opened 512 MiB in %d-byte records on one thread: %.0f MiB/s%n", size,
        512 / s);
  }

  private static long processCpuNs() {
    return ((OperatingSystemMXBean) ManagementFactory
        .getOperatingSystemMXBean()).getProcessCpuTime();
  }

  private StateTransferServer server(MemoryStorage storage, boolean withKey) throws Exception {
    PeerTcpAuth auth = withKey
        ? new PeerTcpAuth(2, CLUSTER, members(0), KEY, 2_000, 16, new SimpleMeterRegistry())
        : PeerTcpAuth.unchecked(2, CLUSTER, Set.of(1, 2, 3));
    StateTransferServer s = new StateTransferServer(new InetSocketAddress("127.0.0.1", 0), 2, CLUSTER,
        Set.of(1, 2, 3), () -> 1, storage, StateTransferServer.Limits.defaults(), 1, null, auth);
    closeables.add(s);
    return s;
  }

  private double fetchMiBps(StateTransferServer server, boolean withKey, KvStateMachine source) throws Exception {
    Map<Integer, InetSocketAddress> m = members(server.localAddress().getPort());
    StateTransferClient client = withKey
        ? new StateTransferClient(StateTransferClient.Limits.defaults(),
            new PeerTcpAuth(3, CLUSTER, m, KEY, 2_000, 16, new SimpleMeterRegistry()))
        : new StateTransferClient(StateTransferClient.Limits.defaults());
    try (client) {
      MemoryStorage targetStorage = new MemoryStorage();
      KvStateMachine target = new KvStateMachine(targetStorage, 16, 4);
      target.load();
      long t0 = System.nanoTime();
      StateTransferReceiver.Installed done = client.fetch(server.localAddress(), CLUSTER, 3, 1, 0,
          storageThread::execute, target, targetStorage, Duration.ofMinutes(2)).get(2, TimeUnit.MINUTES);
      double seconds = (System.nanoTime() - t0) / 1e9;
      assertEquals(source.applied(), done.op());
      return TRANSFER_MIB / seconds;
    }
  }
}
