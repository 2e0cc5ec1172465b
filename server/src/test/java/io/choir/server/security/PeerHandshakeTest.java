package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.security.PeerHandshake.Failure;
import io.choir.server.security.PeerHandshake.Members;
import io.choir.server.security.PeerHandshake.State;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The peer TCP handshake, stepped by hand: both sides, and every way a stranger may try it. */
class PeerHandshakeTest {
  static final long CLUSTER = 0xC0FFEE11L;
  static final Set<Integer> IDS = Set.of(1, 2, 3);
  static final Members M1 = new Members(1, CLUSTER, IDS);
  static final Members M2 = new Members(2, CLUSTER, IDS);

  private final Random random = new Random(7);

  private static ClusterKeys key(int id, long seed) {
    byte[] k = new byte[ClusterKeys.KEY_BYTES];
    new Random(seed).nextBytes(k);
    return ClusterKeys.of(Map.of(id, k));
  }

  static final ClusterKeys KEY = key(1, 1);
  static final ClusterKeys WRONG_KEY = key(1, 2);

  private byte[] nonce() {
    byte[] n = new byte[PeerHandshake.NONCE_BYTES];
    random.nextBytes(n);
    return n;
  }

  /** Feeds bytes to h; returns how many it consumed. */
  private static int feed(PeerHandshake h, byte[] bytes) {
    ByteBuffer in = ByteBuffer.wrap(bytes);
    h.receive(in);
    return in.position();
  }

  /** Runs a connector from 1 to 2 against an acceptor at 2 to the end (either side done or failed). */
  private void run(PeerHandshake c, PeerHandshake a) {
    for (int round = 0; round < 10; round++) {
      byte[] out = c.pollOutput();
      if (out != null) {
        feed(a, out);
      }
      byte[] back = a.pollOutput();
      if (back != null) {
        feed(c, back);
      }
      if (out == null && back == null) {
        return;
      }
    }
  }

  @Test
  void shouldProveBothSidesAndGiveThemMatchingKeysPerDirection() throws Exception {
    PeerHandshake c = PeerHandshake.connect(KEY, M1, 2, nonce());
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());

    run(c, a);

    assertEquals(State.DONE, c.state());
    assertEquals(State.DONE, a.state());
    assertEquals(1, a.peerId());
    assertEquals(2, c.peerId());
    assertEquals(1, a.keyId());
    assertRecordsFlow(c.sessionKeys(), a.sessionKeys());
    assertRecordsFlow(a.sessionKeys(), c.sessionKeys());
  }

  private static void assertRecordsFlow(PeerHandshake.SessionKeys from, PeerHandshake.SessionKeys to)
      throws Exception {
    byte[] plain = "a frame".getBytes();
    ByteBuffer sealed = ByteBuffer.allocate(SealedRecords.LENGTH_BYTES + plain.length + SealedRecords.TAG_BYTES);
    from.sealer().seal(ByteBuffer.wrap(plain), sealed);
    sealed.flip();
    int header = sealed.getInt();
    ByteBuffer opened = ByteBuffer.allocate(plain.length);
    to.opener().open(header, sealed, opened);
    assertArrayEquals(plain, opened.array());
  }

  @Test
  void shouldRefuseAConnectorWithAWrongKeyAtItsProof() {
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
    PeerHandshake stranger = PeerHandshake.connect(WRONG_KEY, M1, 2, nonce());
    byte[] hello = stranger.pollOutput();
    feed(a, hello);
    byte[] challenge = a.pollOutput();
    assertEquals(PeerHandshake.CHALLENGE_BYTES, challenge.length, "all a stranger gets: a nonce and a MAC");

    // The stranger's side sees the acceptor's MAC is not of its key, and says nothing more...
    feed(stranger, challenge);
    assertEquals(State.FAILED, stranger.state());
    assertEquals(Failure.BAD_PROOF, stranger.failure());
    assertNull(stranger.pollOutput());
    // ...and any proof it could forge instead is refused.
    byte[] forged = new byte[PeerHandshake.PROOF_BYTES];
    random.nextBytes(forged);
    feed(a, forged);
    assertEquals(State.FAILED, a.state());
    assertEquals(Failure.BAD_PROOF, a.failure());
    assertNull(a.sessionKeys());
    assertNull(a.pollOutput());
  }

  @Test
  void shouldRefuseAnAcceptorWithAWrongKeyAtItsChallenge() {
    PeerHandshake c = PeerHandshake.connect(KEY, M1, 2, nonce());
    PeerHandshake impostor = PeerHandshake.accept(WRONG_KEY, M2, nonce());
    run(c, impostor);
    assertEquals(State.FAILED, c.state());
    assertEquals(Failure.BAD_PROOF, c.failure());
    assertEquals(State.AWAIT_PROOF, impostor.state(), "the connector never proves itself to an impostor");
  }

  @Test
  void shouldRefuseAHelloOfAnotherClusterANonMemberItselfAnotherTargetOrAnUnknownKeyWithoutAnswering() {
    Map<Failure, PeerHandshake> connectors = new LinkedHashMap<>();
    connectors.put(Failure.FOREIGN_CLUSTER, PeerHandshake.connect(KEY, new Members(1, CLUSTER + 1, IDS), 2, nonce()));
    connectors.put(Failure.UNKNOWN_MEMBER, PeerHandshake.connect(KEY, new Members(77, CLUSTER, Set.of(2, 77)), 2,
        nonce()));
    connectors.put(Failure.WRONG_TARGET, PeerHandshake.connect(KEY, M1, 3, nonce()));
    connectors.put(Failure.UNKNOWN_KEY, PeerHandshake.connect(key(9, 1), M1, 2, nonce()));
    for (var e : connectors.entrySet()) {
      PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
      feed(a, e.getValue().pollOutput());
      assertEquals(State.FAILED, a.state(), e.getKey().name());
      assertEquals(e.getKey(), a.failure());
      assertNull(a.pollOutput(), "nothing is said to a refused hello: " + e.getKey());
    }
    // A hello claiming to come from the acceptor itself (2 to 2).
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
    byte[] fromItself = PeerHandshake.connect(KEY, M1, 2, nonce()).pollOutput();
    ByteBuffer.wrap(fromItself).putInt(12, 2); // from (after magic and cluster id hash)
    feed(a, fromItself);
    assertEquals(Failure.UNKNOWN_MEMBER, a.failure());
    assertNull(a.pollOutput());
  }

  @Test
  void shouldRefuseAStrangerSpoofingAMembersIdAtItsProof() {
    // The hello is public information: anyone can claim to be replica 1.
    PeerHandshake honest = PeerHandshake.connect(KEY, M1, 2, nonce());
    byte[] spoofedHello = honest.pollOutput();
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
    feed(a, spoofedHello);
    assertEquals(State.AWAIT_PROOF, a.state());
    byte[] challenge = a.pollOutput();
    // Without the key the best the stranger has is the acceptor's own MAC, reflected: refused.
    feed(a, Arrays.copyOfRange(challenge, PeerHandshake.NONCE_BYTES, PeerHandshake.CHALLENGE_BYTES));
    assertEquals(Failure.BAD_PROOF, a.failure());
  }

  @Test
  void shouldRefuseAReplayedConnectorHandshakeAndAReplayedChallenge() {
    PeerHandshake c = PeerHandshake.connect(KEY, M1, 2, nonce());
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
    byte[] hello = c.pollOutput();
    feed(a, hello);
    byte[] challenge = a.pollOutput();
    feed(c, challenge);
    byte[] proof = c.pollOutput();
    feed(a, proof);
    assertEquals(State.DONE, a.state());

    // A recording of the member's side, replayed on a new connection: the acceptor's new nonce
    // makes the old proof worthless.
    PeerHandshake again = PeerHandshake.accept(KEY, M2, nonce());
    feed(again, hello);
    assertEquals(State.AWAIT_PROOF, again.state());
    feed(again, proof);
    assertEquals(Failure.BAD_PROOF, again.failure());

    // A recorded challenge replayed to a member's new connection: its new nonce makes it worthless.
    PeerHandshake c2 = PeerHandshake.connect(KEY, M1, 2, nonce());
    c2.pollOutput();
    feed(c2, challenge);
    assertEquals(Failure.BAD_PROOF, c2.failure());
  }

  @Test
  void shouldFailTheHandshakeWhateverSingleByteIsAlteredInTransit() {
    long seed = System.nanoTime();
    System.out.println("PeerHandshakeTest seed " + seed);
    Random r = new Random(seed);
    int total = PeerHandshake.HELLO_BYTES + PeerHandshake.CHALLENGE_BYTES + PeerHandshake.PROOF_BYTES;
    for (int at = 0; at < total; at++) {
      PeerHandshake c = PeerHandshake.connect(KEY, M1, 2, nonce());
      PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
      byte flip = (byte) (1 + r.nextInt(255));
      byte[] hello = c.pollOutput();
      if (at < PeerHandshake.HELLO_BYTES) {
        hello[at] ^= flip;
      }
      feed(a, hello);
      byte[] challenge = a.pollOutput();
      if (challenge != null) {
        int i = at - PeerHandshake.HELLO_BYTES;
        if (i >= 0 && i < PeerHandshake.CHALLENGE_BYTES) {
          challenge[i] ^= flip;
        }
        feed(c, challenge);
        byte[] proof = c.pollOutput();
        if (proof != null) {
          int j = at - PeerHandshake.HELLO_BYTES - PeerHandshake.CHALLENGE_BYTES;
          if (j >= 0) {
            proof[j] ^= flip;
          }
          feed(a, proof);
        }
      }
      assertFalse(c.state() == State.DONE && a.state() == State.DONE, "byte " + at + " altered, seed " + seed);
      assertTrue(a.state() != State.DONE, "the acceptor never admits an altered handshake: byte " + at);
    }
  }

  @Test
  void shouldWaitOnTruncatedInputAndConsumeOnlyWhatEachMessageNeeds() {
    PeerHandshake c = PeerHandshake.connect(KEY, M1, 2, nonce());
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
    byte[] hello = c.pollOutput();
    for (int i = 0; i < hello.length - 1; i++) {
      feed(a, new byte[] {hello[i]});
      assertEquals(State.AWAIT_HELLO, a.state());
      assertNull(a.pollOutput());
    }
    feed(a, new byte[] {hello[hello.length - 1]});
    byte[] challenge = a.pollOutput();
    assertNotNull(challenge);
    feed(c, Arrays.copyOf(challenge, 63));
    assertEquals(State.AWAIT_CHALLENGE, c.state());
    feed(c, new byte[] {challenge[63]});
    byte[] proof = c.pollOutput();
    // The proof and the first sealed record in one buffer: the acceptor takes the proof only.
    byte[] proofAndMore = Arrays.copyOf(proof, proof.length + 100);
    assertEquals(PeerHandshake.PROOF_BYTES, feed(a, proofAndMore));
    assertEquals(State.DONE, a.state());
    assertEquals(0, feed(a, new byte[10]), "done: later bytes are the records'");
  }

  @Test
  void shouldRefuseOversizedPreAuthenticationInputHavingReadAtMostTheHandshake() {
    byte[] garbage = new byte[1 << 20];
    new Random(3).nextBytes(garbage);
    garbage[0] = 0; // not the magic
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
    assertEquals(4, feed(a, garbage), "refused at the magic");
    assertEquals(Failure.BAD_HELLO, a.failure());

    // A well-formed hello, then a megabyte instead of a proof: at most the handshake is read.
    PeerHandshake b = PeerHandshake.accept(KEY, M2, nonce());
    byte[] hello = PeerHandshake.connect(KEY, M1, 2, nonce()).pollOutput();
    byte[] flood = Arrays.copyOf(hello, hello.length + garbage.length);
    System.arraycopy(garbage, 0, flood, hello.length, garbage.length);
    int consumed = feed(b, flood);
    assertEquals(PeerHandshake.MAX_HANDSHAKE_BYTES, consumed);
    assertEquals(Failure.BAD_PROOF, b.failure());
  }

  @Test
  void shouldRefuseAPlainPeerEnvelopeFrameFromAPeerWithoutTheKey() {
    // What a replica without cluster_key_file sends first: a 4-byte frame length, then an envelope.
    byte[] frame = ByteBuffer.allocate(60).putInt(56).put((byte) 8).put((byte) 1).array();
    PeerHandshake a = PeerHandshake.accept(KEY, M2, nonce());
    feed(a, frame);
    assertEquals(Failure.BAD_HELLO, a.failure());
  }

  @Test
  void shouldAcceptTheNewKeyDuringARotationAndRefuseItWhereItIsNotInstalled() {
    byte[] k1 = new byte[32];
    byte[] k2 = new byte[32];
    random.nextBytes(k1);
    random.nextBytes(k2);
    Map<Integer, byte[]> newFirst = new LinkedHashMap<>();
    newFirst.put(2, k2);
    newFirst.put(1, k1);
    Map<Integer, byte[]> oldFirst = new LinkedHashMap<>();
    oldFirst.put(1, k1);
    oldFirst.put(2, k2);
    PeerHandshake c = PeerHandshake.connect(ClusterKeys.of(newFirst), M1, 2, nonce());
    PeerHandshake a = PeerHandshake.accept(ClusterKeys.of(oldFirst), M2, nonce());
    run(c, a);
    assertEquals(State.DONE, a.state());
    assertEquals(2, a.keyId());

    PeerHandshake c2 = PeerHandshake.connect(ClusterKeys.of(newFirst), M1, 2, nonce());
    PeerHandshake notYet = PeerHandshake.accept(ClusterKeys.of(Map.of(1, k1)), M2, nonce());
    run(c2, notYet);
    assertEquals(Failure.UNKNOWN_KEY, notYet.failure());
  }

  @Test
  void shouldRefuseToConnectToItselfOrANonMember() {
    assertThrows(IllegalArgumentException.class, () -> PeerHandshake.connect(KEY, M1, 1, nonce()));
    assertThrows(IllegalArgumentException.class, () -> PeerHandshake.connect(KEY, M1, 9, nonce()));
    assertThrows(IllegalArgumentException.class, () -> PeerHandshake.accept(KEY, M1, new byte[5]));
  }
}
