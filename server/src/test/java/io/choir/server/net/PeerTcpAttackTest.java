package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.Prepare;
import io.choir.proto.Put;
import io.choir.proto.RegisterSession;
import io.choir.proto.StateTransferRequest;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.net.transfer.StateTransferReceiver;
import io.choir.server.net.transfer.TransferFailedException;
import io.choir.server.security.ClusterKeys;
import io.choir.server.security.PeerHandshake;
import io.choir.server.security.SealedRecords;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Attacks on the peer TCP port of real listeners (StateTransferServer and PeerTransport on 127.0.0.1,
 * wired as ReplicaServer wires them, with a cluster key): a stranger, with no key or a wrong one, asks
 * for a state transfer or opens a peer stream; it gets no data, no peer message is delivered, and
 * the counters say why. Issue 10's "any host could fetch the whole data set by asking a peer port for
 * a state transfer" is {@link #shouldGiveAStrangerWithoutTheKeyNothingWhenItAsksForAStateTransfer},
 * and {@link #shouldServeTheWholeDataSetToTheSameRequestWhereNothingIsChecked} shows the attack works
 * where nothing is checked (as on the code before).
 */
class PeerTcpAttackTest {
  static final long CLUSTER = 0x7C9L;
  static final long WAIT_MS = 10_000;
  /** Short, so the timeout tests are quick; the default is 2 s. */
  static final long HANDSHAKE_TIMEOUT_MS = 300;
  static final int MAX_PENDING = 4;
  static final int KEYS_IN_SOURCE = 2_000;

  static final ClusterKeys KEY = ClusterKeys.generate(1, new SecureRandom());
  static final ClusterKeys WRONG_KEY = ClusterKeys.generate(1, new SecureRandom());

  private record Got(int from, long view, MessageType type, MessageLite body) {}

  private final Map<Integer, PeerTransport> transports = new HashMap<>();
  private final Map<Integer, StateTransferServer> servers = new HashMap<>();
  private final Map<Integer, PeerTcpAuth> auths = new HashMap<>();
  private final Map<Integer, BlockingQueue<Got>> inboxes = new HashMap<>();
  private final Map<Integer, InetSocketAddress> peers = new HashMap<>();
  private final List<AutoCloseable> extra = new ArrayList<>();
  private ExecutorService storageThread;
  private MemoryStorage sourceStorage;
  private KvStateMachine source;

  @BeforeEach
  void start() throws Exception {
    storageThread = Executors.newSingleThreadExecutor(r -> new Thread(r, "test-storage"));
    sourceStorage = new MemoryStorage();
    source = new KvStateMachine(sourceStorage, 16, 4);
    source.load();
    source.apply(data(KEYS_IN_SOURCE), false);
    for (int attempt = 1; ; attempt++) {
      Set<Integer> taken = new HashSet<>();
      InetSocketAddress group = new InetSocketAddress("239.255.77.10", PeerTransportTest.freeUdpAndTcpPort(taken));
      for (int id = 1; id <= 3; id++) {
        peers.put(id, new InetSocketAddress("127.0.0.1", PeerTransportTest.freeUdpAndTcpPort(taken)));
      }
      try {
        for (int id = 1; id <= 3; id++) {
          startReplica(id, group);
        }
        return;
      } catch (Exception bindFailed) {
        stop();
        if (attempt == 5) {
          throw bindFailed;
        }
      }
    }
  }

  private void startReplica(int id, InetSocketAddress group) throws Exception {
    BlockingQueue<Got> inbox = new LinkedBlockingQueue<>();
    inboxes.put(id, inbox);
    PeerTcpAuth auth = new PeerTcpAuth(id, CLUSTER, peers, KEY, HANDSHAKE_TIMEOUT_MS, MAX_PENDING,
        new SimpleMeterRegistry());
    auths.put(id, auth);
    PeerTransport t = new PeerTransport(
        new PeerTransport.Settings(id, CLUSTER, peers, group, "lo", 1, 1400, 1 << 20, 0, "",
            PeerRouting.maxReassembledBytes(4 << 20), 8 << 20, PeerTransport.Settings.DEFAULT_STREAM_BUFFER_BYTES),
        null, 1, auth, (from, view, type, body) -> inbox.add(new Got(from, view, type, body)),
        new SimpleMeterRegistry());
    transports.put(id, t);
    servers.put(id, new StateTransferServer(peers.get(id), id, CLUSTER, peers.keySet(), () -> 1,
        id == 2 ? sourceStorage : new MemoryStorage(), StateTransferServer.Limits.defaults(), 1, t.streamSink(),
        auth));
  }

  @AfterEach
  void stop() throws Exception {
    servers.values().forEach(StateTransferServer::close);
    transports.values().forEach(PeerTransport::close);
    for (AutoCloseable c : extra) {
      c.close();
    }
    servers.clear();
    transports.clear();
    if (storageThread != null) {
      storageThread.shutdownNow();
    }
  }

  /** KEYS_IN_SOURCE puts of 1 KiB, by one registered client session. */
  static List<Entry> data(int keys) {
    List<Entry> out = new ArrayList<>();
    out.add(Entry.newBuilder().setOp(1).setView(1).setClientId(1001).setRequestId(1).setFirstIncomplete(1)
        .setRegisterSession(RegisterSession.getDefaultInstance()).build());
    Random r = new Random(5);
    for (int i = 0; i < keys; i++) {
      long op = i + 2;
      byte[] value = new byte[1024];
      r.nextBytes(value);
      out.add(Entry.newBuilder().setOp(op).setView(1).setClientId(1).setRequestId(op).setFirstIncomplete(op)
          .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(String.format("secret-%06d", i)))
              .setValue(ByteString.copyFrom(value))).build());
    }
    return out;
  }

  private static PeerEnvelope.Builder envelope(int sender) {
    return PeerEnvelope.newBuilder().setProtocolVersion(DatagramHeader.PROTOCOL_VERSION).setClusterId(CLUSTER)
        .setSender(sender).setView(1);
  }

  private static byte[] stateTransferRequest(int sender) {
    return frame(envelope(sender).setStateTransferRequest(StateTransferRequest.newBuilder().setApplied(0)).build());
  }

  private static byte[] heartbeat(int sender, long lastOp) {
    return frame(envelope(sender).setHeartbeat(Heartbeat.newBuilder().setLastOp(lastOp)).build());
  }

  /** A length-prefixed envelope frame, as the peer port reads them. */
  private static byte[] frame(PeerEnvelope e) {
    byte[] body = e.toByteArray();
    return ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).array();
  }

  /** Reads what arrives until the other end closes or WAIT_MS pass; all of it. */
  private static byte[] readUntilClosed(Socket s) throws IOException {
    s.setSoTimeout((int) WAIT_MS);
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    InputStream in = s.getInputStream();
    byte[] buf = new byte[65536];
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        got.write(buf, 0, n);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the peer port kept the connection open for " + WAIT_MS + " ms");
    } catch (IOException reset) {
      // closed by a reset: what came before is all there is
    }
    return got.toByteArray();
  }

  /** Counts the key-value pairs in a stream of plain chunk frames (what a stranger would get). */
  private static int pairsIn(byte[] stream) throws IOException {
    DataInputStream in = new DataInputStream(new ByteArrayInputStream(stream));
    int pairs = 0;
    while (in.available() > 0) {
      byte[] body = new byte[in.readInt()];
      in.readFully(body);
      for (var kv : PeerEnvelope.parseFrom(body).getStateTransferChunk().getKvsList()) {
        pairs += kv.getKey().toStringUtf8().startsWith("secret-") ? 1 : 0;
      }
    }
    return pairs;
  }

  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5); // polling a condition with a deadline, not waiting for it to happen
    }
  }

  private long refused(int replica, String reason) {
    return auths.get(replica).counters().getOrDefault("peer_tcp.refused." + reason, 0L);
  }

  /**
   * A blocking member (or impostor) of the cluster, replica `self`, that runs the handshake with keys
   * over a plain socket and then seals frames; everything it writes is recorded, for replays.
   */
  private static final class Member implements AutoCloseable {
    final Socket socket;
    final DataInputStream in;
    final OutputStream out;
    final ByteArrayOutputStream sent = new ByteArrayOutputStream();
    PeerHandshake.SessionKeys session;

    Member(InetSocketAddress to) throws IOException {
      socket = new Socket(to.getAddress(), to.getPort());
      socket.setSoTimeout((int) WAIT_MS);
      in = new DataInputStream(socket.getInputStream());
      out = socket.getOutputStream();
    }

    /** Runs the handshake as replica self to toId with keys; returns the challenge it got. */
    byte[] prove(ClusterKeys keys, int self, int toId) throws IOException {
      PeerHandshake h = PeerHandshake.connect(keys, new PeerHandshake.Members(self, CLUSTER, Set.of(1, 2, 3)),
          toId, nonce());
      write(h.pollOutput());
      byte[] challenge = new byte[PeerHandshake.CHALLENGE_BYTES];
      in.readFully(challenge);
      h.receive(ByteBuffer.wrap(challenge));
      byte[] proof = h.pollOutput();
      if (proof != null) {
        write(proof);
      }
      session = h.sessionKeys();
      return challenge;
    }

    void write(byte[] bytes) throws IOException {
      sent.write(bytes);
      out.write(bytes);
      out.flush();
    }

    /** The record sealing plain (one record). */
    byte[] seal(byte[] plain) {
      ByteBuffer b = ByteBuffer.allocate(SealedRecords.LENGTH_BYTES + plain.length + SealedRecords.TAG_BYTES);
      session.sealer().seal(ByteBuffer.wrap(plain), b);
      return b.array();
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }

  private static byte[] nonce() {
    byte[] n = new byte[PeerHandshake.NONCE_BYTES];
    new SecureRandom().nextBytes(n);
    return n;
  }

  // ---- state transfer ------------------------------------------------------------------------

  @Test
  void shouldGiveAStrangerWithoutTheKeyNothingWhenItAsksForAStateTransfer() throws Exception {
    byte[] got;
    try (Socket stranger = new Socket(peers.get(2).getAddress(), peers.get(2).getPort())) {
      // A well-formed request, naming a member as sender: all that was needed before.
      stranger.getOutputStream().write(stateTransferRequest(3));
      got = readUntilClosed(stranger);
    }
    assertEquals(0, got.length, "the stranger received nothing");
    assertEquals(0, servers.get(2).transfersServed());
    assertEquals(0, servers.get(2).chunksWritten());
    assertEquals(Map.of("peer_tcp.refused.bad_hello", 1L), auths.get(2).counters());
  }

  @Test
  void shouldServeTheWholeDataSetToTheSameRequestWhereNothingIsChecked() throws Exception {
    // Control: the same attack on a listener that checks nothing (PeerTcpAuth.unchecked, which is
    // what every peer port was before issue 10) gets every key. The test above catches it.
    StateTransferServer open = new StateTransferServer(new InetSocketAddress("127.0.0.1", 0), 2, CLUSTER,
        peers.keySet(), () -> 1, sourceStorage, StateTransferServer.Limits.defaults(), 1);
    extra.add(open);
    byte[] got;
    try (Socket stranger = new Socket("127.0.0.1", open.localAddress().getPort())) {
      stranger.getOutputStream().write(stateTransferRequest(3));
      got = readUntilClosed(stranger);
    }
    assertEquals(KEYS_IN_SOURCE, pairsIn(got), "the whole data set, to anyone");
    System.out.println("unchecked peer port: a stranger's state transfer request got " + got.length
        + " bytes, " + KEYS_IN_SOURCE + " key-value pairs");
  }

  @Test
  void shouldFailTheFetchOfAStrangerWithAWrongKeyAndServeNothing() throws Exception {
    PeerTcpAuth wrong = new PeerTcpAuth(3, CLUSTER, peers, WRONG_KEY, HANDSHAKE_TIMEOUT_MS, MAX_PENDING,
        new SimpleMeterRegistry());
    StateTransferClient client = new StateTransferClient(StateTransferClient.Limits.defaults(), wrong);
    extra.add(client);
    MemoryStorage targetStorage = new MemoryStorage();
    KvStateMachine target = new KvStateMachine(targetStorage, 16, 4);
    target.load();

    CompletableFuture<StateTransferReceiver.Installed> fetch = client.fetch(peers.get(2), CLUSTER, 3, 1, 0,
        storageThread::execute, target, targetStorage, Duration.ofSeconds(10));
    ExecutionException e = assertThrows(ExecutionException.class, () -> fetch.get(WAIT_MS, TimeUnit.MILLISECONDS));
    TransferFailedException failed = assertInstanceOf(TransferFailedException.class, e.getCause());
    PeerTcpRefusedException why = assertInstanceOf(PeerTcpRefusedException.class, failed.getCause());
    assertEquals("bad_proof", why.reason(), "the client saw the source does not hold its key");
    assertEquals(Map.of("peer_tcp.connect_failed.bad_proof", 1L), wrong.counters());
    await(() -> refused(2, "closed_in_handshake") == 1, "the source to count the aborted handshake");
    assertEquals(0, servers.get(2).chunksWritten());
    assertEquals(0, target.applied());
  }

  @Test
  void shouldGiveAStrangerWithAWrongKeyOnlyTheChallengeHoweverItGoesOn() throws Exception {
    byte[] got;
    try (Member stranger = new Member(peers.get(2))) {
      PeerHandshake h = PeerHandshake.connect(WRONG_KEY, new PeerHandshake.Members(3, CLUSTER, Set.of(1, 2, 3)), 2,
          nonce());
      stranger.write(h.pollOutput());
      // It cannot prove anything: a guessed proof, then the request sealed under its own key.
      byte[] guess = new byte[PeerHandshake.PROOF_BYTES];
      new SecureRandom().nextBytes(guess);
      stranger.write(guess);
      stranger.write(stateTransferRequest(3));
      got = readUntilClosed(stranger.socket);
    }
    // A nonce and a MAC at most, nothing about the data (the close may reset the connection before
    // the stranger reads even those, since it sent bytes that were never read).
    assertTrue(got.length <= PeerHandshake.CHALLENGE_BYTES, got.length + " bytes");
    assertEquals(Map.of("peer_tcp.refused.bad_proof", 1L), auths.get(2).counters());
    assertEquals(0, servers.get(2).chunksWritten());
  }

  @Test
  void shouldInstallTheWholeStateForAMemberThatProvesTheKey() throws Exception {
    StateTransferClient client = new StateTransferClient(StateTransferClient.Limits.defaults(), auths.get(3));
    extra.add(client);
    MemoryStorage targetStorage = new MemoryStorage();
    KvStateMachine target = new KvStateMachine(targetStorage, 16, 4);
    target.load();
    StateTransferReceiver.Installed installed = client.fetch(peers.get(2), CLUSTER, 3, 1, 0,
        storageThread::execute, target, targetStorage, Duration.ofSeconds(30)).get(WAIT_MS, TimeUnit.MILLISECONDS);
    assertEquals(source.applied(), installed.op());
    assertEquals(source.appliedState(), target.appliedState());
    assertEquals(KEYS_IN_SOURCE, targetStorage.scan(new byte[0], new byte[0], Integer.MAX_VALUE).size());
    assertEquals(1, servers.get(2).transfersServed());
    assertEquals(Map.of("peer_tcp.connected", 1L), auths.get(3).counters());
    await(() -> auths.get(2).counters().getOrDefault("peer_tcp.accepted", 0L) == 1, "the source to count it");
  }

  // ---- peer streams --------------------------------------------------------------------------

  @Test
  void shouldDeliverNothingFromAStrangerWithoutTheKeyThatOpensAPeerStream() throws Exception {
    try (Socket stranger = new Socket(peers.get(2).getAddress(), peers.get(2).getPort())) {
      stranger.getOutputStream().write(heartbeat(1, 5)); // as replica 1, in the clear
      stranger.getOutputStream().write(heartbeat(1, 6));
      assertEquals(0, readUntilClosed(stranger).length);
    }
    assertNull(inboxes.get(2).poll(200, TimeUnit.MILLISECONDS), "no peer message reached the core");
    assertEquals(0, transports.get(2).streamMessagesReceived());
    assertEquals(0, servers.get(2).peerStreamsAccepted());
    assertEquals(Map.of("peer_tcp.refused.bad_hello", 1L), auths.get(2).counters());
  }

  @Test
  void shouldDeliverNothingFromAStrangerWithAWrongKeyThatOpensAPeerStream() throws Exception {
    try (Member stranger = new Member(peers.get(2))) {
      byte[] challenge = stranger.prove(WRONG_KEY, 1, 2); // its side finds the MAC wrong: no proof
      assertEquals(PeerHandshake.CHALLENGE_BYTES, challenge.length);
      assertNull(stranger.session);
      byte[] guess = new byte[PeerHandshake.PROOF_BYTES];
      stranger.write(guess);
      stranger.write(heartbeat(1, 5));
      assertEquals(0, readUntilClosed(stranger.socket).length);
    }
    assertNull(inboxes.get(2).poll(200, TimeUnit.MILLISECONDS));
    assertEquals(0, transports.get(2).streamMessagesReceived());
    assertEquals(Map.of("peer_tcp.refused.bad_proof", 1L), auths.get(2).counters());
  }

  @Test
  void shouldRefuseAReplayOfAMembersWholeConnection() throws Exception {
    byte[] recording;
    try (Member member = new Member(peers.get(2))) {
      member.prove(KEY, 1, 2);
      member.write(member.seal(heartbeat(1, 5)));
      Got got = inboxes.get(2).poll(WAIT_MS, TimeUnit.MILLISECONDS);
      assertNotNull(got, "the member's heartbeat arrives");
      assertEquals(5, ((Heartbeat) got.body()).getLastOp());
      recording = member.sent.toByteArray();
    }
    try (Socket replay = new Socket(peers.get(2).getAddress(), peers.get(2).getPort())) {
      replay.getOutputStream().write(recording);
      byte[] got = readUntilClosed(replay);
      assertTrue(got.length <= PeerHandshake.CHALLENGE_BYTES, "at most a new challenge: " + got.length);
    }
    assertNull(inboxes.get(2).poll(200, TimeUnit.MILLISECONDS), "the replayed heartbeat is not delivered again");
    assertEquals(1, refused(2, "bad_proof"));
  }

  @Test
  void shouldCloseAProvenStreamWhoseRecordIsTamperedReorderedOrReplayed() throws Exception {
    // Tampered: one bit of the ciphertext.
    try (Member member = new Member(peers.get(2))) {
      member.prove(KEY, 1, 2);
      byte[] record = member.seal(heartbeat(1, 7));
      record[10] ^= 1;
      member.write(record);
      assertEquals(0, readUntilClosed(member.socket).length);
    }
    // Reordered: the second record first.
    try (Member member = new Member(peers.get(2))) {
      member.prove(KEY, 1, 2);
      byte[] first = member.seal(heartbeat(1, 8));
      byte[] second = member.seal(heartbeat(1, 9));
      member.write(second);
      member.write(first);
      assertEquals(0, readUntilClosed(member.socket).length);
    }
    // Replayed: the first record twice (the first copy is delivered, the copy closes the stream).
    try (Member member = new Member(peers.get(2))) {
      member.prove(KEY, 1, 2);
      byte[] first = member.seal(heartbeat(1, 10));
      member.write(first);
      member.write(first);
      assertEquals(0, readUntilClosed(member.socket).length);
    }
    Got got = inboxes.get(2).poll(WAIT_MS, TimeUnit.MILLISECONDS);
    assertEquals(10, ((Heartbeat) got.body()).getLastOp(), "only the replayed record's first copy arrived");
    assertNull(inboxes.get(2).poll(200, TimeUnit.MILLISECONDS));
    assertEquals(3, refused(2, "bad_frame"));
  }

  @Test
  void shouldRefuseAMemberThatProvesOneIdAndSpeaksAsAnother() throws Exception {
    try (Member member = new Member(peers.get(2))) {
      member.prove(KEY, 1, 2);
      member.write(member.seal(heartbeat(3, 5)));
      assertEquals(0, readUntilClosed(member.socket).length);
    }
    assertNull(inboxes.get(2).poll(200, TimeUnit.MILLISECONDS));
    assertEquals(1, refused(2, "sender_mismatch"));
  }

  @Test
  void shouldCloseAConnectionThatDoesNotProveItselfInTimeEvenOneByteAtATime() throws Exception {
    long started = System.nanoTime();
    try (Socket idle = new Socket(peers.get(2).getAddress(), peers.get(2).getPort());
        Socket slow = new Socket(peers.get(2).getAddress(), peers.get(2).getPort())) {
      byte[] hello = PeerHandshake.connect(KEY, new PeerHandshake.Members(1, CLUSTER, Set.of(1, 2, 3)), 2, nonce())
          .pollOutput();
      Thread dribble = new Thread(() -> {
        try {
          for (byte b : hello) {
            slow.getOutputStream().write(b);
            Thread.sleep(HANDSHAKE_TIMEOUT_MS / 10); // slower than the handshake may take, on purpose
          }
        } catch (IOException | InterruptedException closed) {
          // closed by the timeout, as expected
        }
      });
      dribble.start();
      assertEquals(0, readUntilClosed(idle).length);
      assertEquals(0, readUntilClosed(slow).length);
      dribble.join(WAIT_MS);
    }
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    assertTrue(ms >= HANDSHAKE_TIMEOUT_MS && ms < WAIT_MS, "closed after " + ms + " ms");
    assertEquals(2, refused(2, "timeout"));
    assertEquals(0, auths.get(2).pendingHandshakes());
  }

  @Test
  void shouldBoundTheConnectionsInTheirHandshakeInAllAndPerSourceAddress() throws Exception {
    List<Socket> idle = new ArrayList<>();
    try {
      // One source address takes half the slots, then no more...
      for (int i = 0; i < MAX_PENDING / 2; i++) {
        idle.add(new Socket(peers.get(2).getAddress(), peers.get(2).getPort()));
      }
      await(() -> auths.get(2).pendingHandshakes() == MAX_PENDING / 2, "half the slots to fill");
      try (Socket oneMore = new Socket(peers.get(2).getAddress(), peers.get(2).getPort())) {
        assertEquals(0, readUntilClosed(oneMore).length);
      }
      assertEquals(1, refused(2, "too_many_from_address"));
      // ...while other addresses get the rest, up to the bound in all.
      for (int i = MAX_PENDING / 2; i < MAX_PENDING; i++) {
        Socket s = new Socket();
        s.bind(new InetSocketAddress(InetAddress.getByName("127.0.0." + (20 + i)), 0));
        s.connect(peers.get(2));
        idle.add(s);
      }
      await(() -> auths.get(2).pendingHandshakes() == MAX_PENDING, "the slots to fill");
      try (Socket oneMore = new Socket()) {
        oneMore.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.60"), 0));
        oneMore.connect(peers.get(2));
        assertEquals(0, readUntilClosed(oneMore).length);
      }
      assertEquals(1, refused(2, "too_many_handshakes"));
    } finally {
      for (Socket s : idle) {
        s.close();
      }
    }
    await(() -> auths.get(2).pendingHandshakes() == 0, "the slots to free");
    // A member gets in again.
    transports.get(1).send(2, 1, MessageType.PREPARE, bigPrepare(3, 100_000));
    assertEquals(MessageType.PREPARE, inboxes.get(2).poll(WAIT_MS, TimeUnit.MILLISECONDS).type());
  }

  @Test
  void shouldCarryBigUnicastsBetweenMembersOverProvenSealedStreams() throws Exception {
    Prepare p = bigPrepare(9, 2 << 20);
    transports.get(1).send(2, 3, MessageType.PREPARE, p);
    Got g = inboxes.get(2).poll(WAIT_MS, TimeUnit.MILLISECONDS);
    assertEquals(new Got(1, 3, MessageType.PREPARE, p), g);
    transports.get(3).send(2, 3, MessageType.PREPARE, bigPrepare(10, 100_000));
    assertEquals(3, inboxes.get(2).poll(WAIT_MS, TimeUnit.MILLISECONDS).from());
    await(() -> auths.get(2).counters().getOrDefault("peer_tcp.accepted", 0L) == 2, "two proven streams");
    assertEquals(Map.of("peer_tcp.connected", 1L), auths.get(1).counters());
    await(() -> servers.get(2).peerStreamsAccepted() == 2, "two streams accepted"); // counted after delivery
  }

  @Test
  void shouldDeliverNothingFromAReplicaWithoutTheKey() throws Exception {
    // A misconfigured member (no cluster_key_file) sends in the clear: refused, never a fallback.
    Set<Integer> taken = new HashSet<>();
    taken.addAll(peers.values().stream().map(InetSocketAddress::getPort).toList());
    Map<Integer, InetSocketAddress> keyless = new HashMap<>(peers);
    // Replica 1's own transport holds its UDP port: this stand-in for it takes another.
    keyless.put(1, new InetSocketAddress("127.0.0.1", PeerTransportTest.freeUdpAndTcpPort(taken)));
    InetSocketAddress group = new InetSocketAddress("239.255.77.11", PeerTransportTest.freeUdpAndTcpPort(taken));
    PeerTransport plain = new PeerTransport(
        new PeerTransport.Settings(1, CLUSTER, keyless, group, "lo", 1, 1400, 1 << 20, 0, "",
            PeerRouting.maxReassembledBytes(4 << 20), 8 << 20, PeerTransport.Settings.DEFAULT_STREAM_BUFFER_BYTES),
        null, 1, new PeerTcpAuth(1, CLUSTER, keyless, null, HANDSHAKE_TIMEOUT_MS, MAX_PENDING,
            new SimpleMeterRegistry()),
        (from, view, type, body) -> true, new SimpleMeterRegistry());
    extra.add(plain);
    plain.send(2, 1, MessageType.PREPARE, bigPrepare(4, 100_000));
    await(() -> refused(2, "bad_hello") == 1, "the keyless stream to be refused");
    assertNull(inboxes.get(2).poll(200, TimeUnit.MILLISECONDS));
  }

  private static Prepare bigPrepare(long op, int valueBytes) {
    byte[] value = new byte[valueBytes];
    new Random(op).nextBytes(value);
    Entry big = Entry.newBuilder().setOp(op).setView(1).setPut(Put.newBuilder()
        .setKey(ByteString.copyFromUtf8("k" + op)).setValue(ByteString.copyFrom(value))).build();
    return Prepare.newBuilder().setFirstOp(op).addEntries(big).setCommit(op - 1).build();
  }

  // ---- without a key -------------------------------------------------------------------------

  @Test
  void shouldAcceptOnlyMemberHostsWithoutAKey() throws Exception {
    PeerTcpAuth addressOnly = new PeerTcpAuth(2, CLUSTER, peers, null, HANDSHAKE_TIMEOUT_MS, MAX_PENDING,
        new SimpleMeterRegistry());
    StateTransferServer server = new StateTransferServer(new InetSocketAddress("127.0.0.1", 0), 2, CLUSTER,
        peers.keySet(), () -> 1, sourceStorage, StateTransferServer.Limits.defaults(), 1, null, addressOnly);
    extra.add(server);
    byte[] got;
    try (Socket stranger = new Socket()) {
      stranger.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.9"), 0)); // not a member host
      stranger.connect(server.localAddress());
      stranger.getOutputStream().write(stateTransferRequest(3));
      got = readUntilClosed(stranger);
    }
    assertEquals(0, got.length);
    assertEquals(Map.of("peer_tcp.refused.unknown_address", 1L), addressOnly.counters());
    // From a member host (127.0.0.1: on loopback that is any local user, as documented), in the clear.
    MemoryStorage targetStorage = new MemoryStorage();
    KvStateMachine target = new KvStateMachine(targetStorage, 16, 4);
    target.load();
    Map<Integer, InetSocketAddress> withServer = new HashMap<>(peers);
    withServer.put(2, server.localAddress());
    PeerTcpAuth member2 = new PeerTcpAuth(3, CLUSTER, withServer, null, HANDSHAKE_TIMEOUT_MS, MAX_PENDING,
        new SimpleMeterRegistry());
    StateTransferClient client2 = new StateTransferClient(StateTransferClient.Limits.defaults(), member2);
    extra.add(client2);
    client2.fetch(server.localAddress(), CLUSTER, 3, 1, 0, storageThread::execute, target, targetStorage,
        Duration.ofSeconds(30)).get(WAIT_MS, TimeUnit.MILLISECONDS);
    assertEquals(source.appliedState(), target.appliedState());
  }
}
