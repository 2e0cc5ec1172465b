package io.choir.server.security;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * PeerHandshake is the mutual proof, with the cluster key, that opens every peer TCP connection
 * (peer streams and state transfers) before any request or peer message is read. It is a pure state
 * machine: bytes in ({@link #receive}), bytes out ({@link #pollOutput}); the nonces are arguments, so
 * tests replay it exactly. Three messages, all of fixed size:
 *
 * <pre>
 *   HELLO     connector -> acceptor  magic(4) cluster_id_hash(8) from_id(4) to_id(4) key_id(1) nonce_c(32)
 *   CHALLENGE acceptor -> connector  nonce_a(32) mac_a(32)   mac_a = HMAC(K, "acceptor" | HELLO | nonce_a)
 *   PROOF     connector -> acceptor  mac_c(32)               mac_c = HMAC(K, "connector" | HELLO | nonce_a | mac_a)
 * </pre>
 *
 * K is the key's peer-stream sub-key ({@link ClusterKeys#derive} with {@link
 * ClusterKeys#PEER_STREAM_PURPOSE}), of the key id the connector names (its sending key; the acceptor
 * accepts every key of its file, so a rotation needs no downtime). Each side proves it holds K over a
 * transcript that contains the other's fresh nonce, so a recorded handshake cannot be replayed to
 * either side; the two labels differ, so one side's MAC can never be reflected as the other's. The
 * acceptor answers only a HELLO whose cluster, ids and key id are right (else it sends nothing and
 * the connection closes), and even then a stranger gets only a nonce and a MAC, nothing about the data.
 *
 * <p>Then both sides derive one key per direction from K and the transcript (RFC 5869's HKDF-expand
 * with K as the pseudo-random key: HMAC(K, label | HELLO | nonce_a | 0x01)), so every connection
 * seals its frames ({@link SealedRecords}) under keys no other connection uses.
 *
 * <p>Bound: a side never holds more than the next message it expects (at most {@link
 * #MAX_HANDSHAKE_BYTES} in all); it consumes only what it needs, and the caller hands any later bytes
 * to the record opener only once this handshake is {@link State#DONE}.
 *
 * <p>Not thread-safe: one connection's loop owns it.
 */
public final class PeerHandshake {
  /** "CHT1": Choir peer TCP, handshake version 1. */
  public static final int MAGIC = 0x43485431;
  public static final int NONCE_BYTES = 32;
  public static final int MAC_BYTES = 32;
  public static final int HELLO_BYTES = 4 + 8 + 4 + 4 + 1 + NONCE_BYTES;
  public static final int CHALLENGE_BYTES = NONCE_BYTES + MAC_BYTES;
  public static final int PROOF_BYTES = MAC_BYTES;
  /** The most bytes an acceptor reads from a connector that has not proven itself. */
  public static final int MAX_HANDSHAKE_BYTES = HELLO_BYTES + PROOF_BYTES;

  private static final byte[] ACCEPTOR_LABEL = label("choir peer tcp v1 acceptor");
  private static final byte[] CONNECTOR_LABEL = label("choir peer tcp v1 connector");
  private static final byte[] C2A_LABEL = label("choir peer tcp v1 key connector to acceptor");
  private static final byte[] A2C_LABEL = label("choir peer tcp v1 key acceptor to connector");

  /** Where the handshake stands. */
  public enum State {
    AWAIT_HELLO,
    AWAIT_CHALLENGE,
    AWAIT_PROOF,
    /** Both sides proven; {@link #sessionKeys()} is ready and later bytes are sealed records. */
    DONE,
    /** Refused ({@link #failure()} says why): close the connection, send nothing more. */
    FAILED
  }

  /** Why a handshake failed; {@link #reason()} is the counter suffix. */
  public enum Failure {
    /** Not a handshake of this version (a stranger, or a peer without the key sending frames). */
    BAD_HELLO("bad_hello"),
    /** A HELLO of another cluster. */
    FOREIGN_CLUSTER("foreign_cluster"),
    /** The claimed sender is not a member of this cluster, or is this replica itself. */
    UNKNOWN_MEMBER("unknown_member"),
    /** The HELLO is meant for another replica. */
    WRONG_TARGET("wrong_target"),
    /** The HELLO names a key id this replica's key file does not hold. */
    UNKNOWN_KEY("unknown_key"),
    /** The other side's MAC is wrong: it does not hold the key (or replayed an old handshake). */
    BAD_PROOF("bad_proof");

    private final String reason;

    Failure(String reason) {
      this.reason = reason;
    }

    public String reason() {
      return reason;
    }
  }

  /**
   * Members is what a side knows of its cluster.
   *
   * @param selfId this replica's id
   * @param clusterIdHash the cluster id's hash both sides must share
   * @param memberIds every replica id of the cluster (selfId included)
   */
  public record Members(int selfId, long clusterIdHash, Set<Integer> memberIds) {
    public Members {
      memberIds = Set.copyOf(memberIds);
      if (!memberIds.contains(selfId)) {
        throw new IllegalArgumentException("selfId " + selfId + " is not one of the members " + memberIds);
      }
    }

    /** True when id is another member (not this replica). */
    public boolean isPeer(int id) {
      return id != selfId && memberIds.contains(id);
    }
  }

  /**
   * SessionKeys are a finished handshake's two record keys, seen from this side.
   *
   * @param sealer seals what this side sends
   * @param opener opens what this side receives
   */
  public record SessionKeys(SealedRecords.Sealer sealer, SealedRecords.Opener opener) {}

  private final boolean connector;
  private final ClusterKeys keys;
  private final Members members;
  private final byte[] ownNonce;
  private State state;
  private Failure failure;
  /** The message being received: its bytes so far (at most the largest message). */
  private final byte[] pending = new byte[Math.max(HELLO_BYTES, CHALLENGE_BYTES)];
  private int pendingBytes;
  private byte[] output;
  private byte[] hello;
  private byte[] acceptorNonce;
  private byte[] acceptorMac;
  private byte[] subKey;
  private int peerId = -1;
  private int keyId = -1;
  private SessionKeys sessionKeys;

  private PeerHandshake(boolean connector, ClusterKeys keys, Members members, byte[] ownNonce) {
    if (ownNonce.length != NONCE_BYTES) {
      throw new IllegalArgumentException("a nonce is " + NONCE_BYTES + " bytes, not " + ownNonce.length);
    }
    this.connector = connector;
    this.keys = keys;
    this.members = members;
    this.ownNonce = ownNonce.clone();
  }

  /**
   * The connector's side of a connection to member toId, with its sending key; its HELLO is ready in
   * {@link #pollOutput}. nonce must be fresh random bytes (SecureRandom).
   */
  public static PeerHandshake connect(ClusterKeys keys, Members members, int toId, byte[] nonce) {
    if (!members.isPeer(toId)) {
      throw new IllegalArgumentException("cannot connect to " + toId + ": not another member of " + members);
    }
    PeerHandshake h = new PeerHandshake(true, keys, members, nonce);
    h.keyId = keys.sendingKeyId();
    h.subKey = keys.derive(h.keyId, ClusterKeys.PEER_STREAM_PURPOSE);
    h.peerId = toId;
    ByteBuffer b = ByteBuffer.allocate(HELLO_BYTES);
    b.putInt(MAGIC).putLong(members.clusterIdHash()).putInt(members.selfId()).putInt(toId)
        .put((byte) h.keyId).put(h.ownNonce);
    h.hello = b.array();
    h.output = h.hello.clone();
    h.state = State.AWAIT_CHALLENGE;
    return h;
  }

  /** The acceptor's side of a new connection; nonce must be fresh random bytes (SecureRandom). */
  public static PeerHandshake accept(ClusterKeys keys, Members members, byte[] nonce) {
    PeerHandshake h = new PeerHandshake(false, keys, members, nonce);
    h.state = State.AWAIT_HELLO;
    return h;
  }

  /**
   * Consumes from in the bytes of the message this side expects, no more (in's position moves past
   * them), and advances. Returns the state; in DONE or FAILED it consumes nothing.
   */
  public State receive(ByteBuffer in) {
    while (in.hasRemaining() && (state == State.AWAIT_HELLO || state == State.AWAIT_CHALLENGE
        || state == State.AWAIT_PROOF)) {
      int need = expected() - pendingBytes;
      int take = Math.min(need, in.remaining());
      if (state == State.AWAIT_HELLO && pendingBytes < 4) {
        take = Math.min(take, 4 - pendingBytes); // the magic first, alone
      }
      in.get(pending, pendingBytes, take);
      pendingBytes += take;
      if (state == State.AWAIT_HELLO && pendingBytes >= 4 && readInt(pending, 0) != MAGIC) {
        // Refused at the first 4 bytes: a stranger's stream says nothing more to us.
        return fail(Failure.BAD_HELLO);
      }
      if (pendingBytes < expected()) {
        continue; // more of this message is in `in`, or the next read brings it
      }
      pendingBytes = 0;
      switch (state) {
        case AWAIT_HELLO -> onHello();
        case AWAIT_CHALLENGE -> onChallenge();
        case AWAIT_PROOF -> onProof();
        default -> throw new IllegalStateException(state.name());
      }
    }
    return state;
  }

  private int expected() {
    return switch (state) {
      case AWAIT_HELLO -> HELLO_BYTES;
      case AWAIT_CHALLENGE -> CHALLENGE_BYTES;
      case AWAIT_PROOF -> PROOF_BYTES;
      default -> 0;
    };
  }

  private void onHello() {
    ByteBuffer b = ByteBuffer.wrap(pending, 0, HELLO_BYTES);
    b.getInt(); // magic, checked
    long cluster = b.getLong();
    int from = b.getInt();
    int to = b.getInt();
    int key = b.get() & 0xff;
    if (cluster != members.clusterIdHash()) {
      fail(Failure.FOREIGN_CLUSTER);
      return;
    }
    if (!members.isPeer(from)) {
      fail(Failure.UNKNOWN_MEMBER);
      return;
    }
    if (to != members.selfId()) {
      fail(Failure.WRONG_TARGET);
      return;
    }
    if (!keys.accepts(key)) {
      fail(Failure.UNKNOWN_KEY);
      return;
    }
    hello = Arrays.copyOf(pending, HELLO_BYTES);
    peerId = from;
    keyId = key;
    subKey = keys.derive(key, ClusterKeys.PEER_STREAM_PURPOSE);
    acceptorNonce = ownNonce;
    acceptorMac = mac(subKey, ACCEPTOR_LABEL, hello, acceptorNonce);
    output = concat(acceptorNonce, acceptorMac);
    state = State.AWAIT_PROOF;
  }

  private void onChallenge() {
    acceptorNonce = Arrays.copyOfRange(pending, 0, NONCE_BYTES);
    byte[] theirMac = Arrays.copyOfRange(pending, NONCE_BYTES, CHALLENGE_BYTES);
    byte[] expected = mac(subKey, ACCEPTOR_LABEL, hello, acceptorNonce);
    if (!MessageDigest.isEqual(expected, theirMac)) {
      fail(Failure.BAD_PROOF);
      return;
    }
    acceptorMac = theirMac;
    output = mac(subKey, CONNECTOR_LABEL, hello, acceptorNonce, acceptorMac);
    finish();
  }

  private void onProof() {
    byte[] theirMac = Arrays.copyOfRange(pending, 0, PROOF_BYTES);
    byte[] expected = mac(subKey, CONNECTOR_LABEL, hello, acceptorNonce, acceptorMac);
    if (!MessageDigest.isEqual(expected, theirMac)) {
      fail(Failure.BAD_PROOF);
      return;
    }
    finish();
  }

  private void finish() {
    byte[] c2a = mac(subKey, C2A_LABEL, hello, acceptorNonce, new byte[] {1});
    byte[] a2c = mac(subKey, A2C_LABEL, hello, acceptorNonce, new byte[] {1});
    sessionKeys = connector
        ? new SessionKeys(new SealedRecords.Sealer(c2a), new SealedRecords.Opener(a2c))
        : new SessionKeys(new SealedRecords.Sealer(a2c), new SealedRecords.Opener(c2a));
    Arrays.fill(c2a, (byte) 0);
    Arrays.fill(a2c, (byte) 0);
    state = State.DONE;
  }

  private State fail(Failure why) {
    failure = why;
    state = State.FAILED;
    output = null; // nothing more goes out
    return state;
  }

  /** The bytes to send now (once), or null. */
  public byte[] pollOutput() {
    byte[] out = output;
    output = null;
    return out;
  }

  public State state() {
    return state;
  }

  /** Why it failed, or null. */
  public Failure failure() {
    return failure;
  }

  /** The other side's replica id: the claimed one (acceptor, once the HELLO passed) or the target. */
  public int peerId() {
    return peerId;
  }

  /** The key id in use, or -1 before the HELLO. */
  public int keyId() {
    return keyId;
  }

  /** The record keys, once DONE; else null. */
  public SessionKeys sessionKeys() {
    return sessionKeys;
  }

  private static byte[] mac(byte[] key, byte[]... parts) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      for (byte[] p : parts) {
        mac.update(p);
      }
      return mac.doFinal();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
    }
  }

  /** A label and a 0 byte: no label is a prefix of another's encoding. */
  private static byte[] label(String s) {
    byte[] text = s.getBytes(StandardCharsets.US_ASCII);
    return Arrays.copyOf(text, text.length + 1);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static int readInt(byte[] b, int at) {
    return ((b[at] & 0xff) << 24) | ((b[at + 1] & 0xff) << 16) | ((b[at + 2] & 0xff) << 8) | (b[at + 3] & 0xff);
  }
}
