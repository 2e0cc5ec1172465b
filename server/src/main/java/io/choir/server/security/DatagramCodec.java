package io.choir.server.security;

import io.choir.proto.wire.DatagramHeader;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * DatagramCodec turns a peer message into the bytes of one datagram and a received datagram into a
 * verdict: its header and body, or the reason it is dropped. Pure (no sockets, no clock): the
 * transport sends and receives, this decides (STYLE.md habit 6).
 *
 * <p>Integrity, always: every datagram carries a CRC32C over header and body ({@link DatagramHeader}),
 * checked before anything but the magic and version is read ("bad_checksum").
 *
 * <p>Authenticity, with a cluster key: every datagram is sealed with AES-GCM ({@link DatagramSealer})
 * under the first key of the key file, the key id in the header; the nonce is the sender id (u16),
 * the sender's epoch (u32, one more at every start and persisted, synced, before the first send: see
 * {@link DatagramEpochs}) and a counter (u48) of this codec, so no nonce repeats for a key as long as
 * epochs do not (they only grow) and replica ids are distinct. Any key of the file opens. A receiver
 * keeps a {@link ReplayWindow} per member (bounded: members only) and drops an unsealed datagram
 * ("unsealed"), an unknown key id ("unknown_key"), a replay or a datagram of an older epoch of its
 * sender ("replay"), one more than {@link ReplayWindow#WINDOW_BITS} counters below the newest of its
 * sender ("below_window": a replay, or a real datagram so late that NACK repairs it), and a tag that
 * does not match ("bad_seal"). Without a key a sealed datagram is
 * dropped ("sealed_without_key"): the two sides are configured differently, and nothing of it can
 * be read anyway.
 *
 * <p>The other reasons: "bad_magic" (too short or not a Choir datagram), "bad_version", "bad_flags" (an
 * unknown flag bit, a reserved byte not 0, or a key id on an unsealed datagram), "foreign_cluster",
 * "unknown_sender" (not a member). A datagram of this replica itself (its own multicast, looped back)
 * is {@link Own}, not a drop.
 *
 * <p>Thread-safe: {@link #encode} may be called from any thread (the counter is taken under a lock
 * together with the seal, so counters go out in order), {@link #decode} from one receiving thread at a
 * time (it holds the replay windows).
 */
public final class DatagramCodec {
  /** Largest bytes a datagram adds to its body: the header and, sealed, the GCM tag. */
  public static final int MAX_OVERHEAD_BYTES = DatagramHeader.SIZE + DatagramSealer.TAG_BYTES;

  /** What became of a received datagram. */
  public sealed interface Verdict permits Accepted, Dropped, Own {}

  /** A datagram to hand on: its header and its (opened) body. */
  public record Accepted(DatagramHeader header, byte[] body) implements Verdict {}

  /** A datagram to drop and count under reason; sender is the header's sender, or -1 when unread. */
  public record Dropped(String reason, int sender) implements Verdict {}

  /** This replica's own datagram (its multicast looped back): neither delivered nor a drop. */
  public record Own() implements Verdict {}

  /** Every reason {@link #decode} drops a datagram for (the transport registers their counters). */
  public static final Set<String> REASONS = Set.of("bad_magic", "bad_version", "bad_checksum", "bad_flags",
      "foreign_cluster", "unknown_sender", "unsealed", "unknown_key", "replay", "below_window", "bad_seal",
      "sealed_without_key");

  private static final Own OWN = new Own();

  private final int selfId;
  private final long clusterId;
  private Set<Integer> members;
  private final DatagramSealer sealer; // null: no key
  private final long epoch;
  private final Map<Integer, ReplayWindow> windows = new HashMap<>();
  private final Object sendLock = new Object();
  private long nextCounter;

  /**
   * A codec of replica selfId of cluster clusterId (its hash) whose members are members (self
   * included); keys null means no key (checksums only); epoch is this start's epoch (1..2^32-1).
   */
  public DatagramCodec(int selfId, long clusterId, Set<Integer> members, ClusterKeys keys, long epoch) {
    if (epoch < 1 || epoch > DatagramHeader.MAX_EPOCH) {
      throw new IllegalArgumentException("epoch must be 1.." + DatagramHeader.MAX_EPOCH + ", got " + epoch);
    }
    for (int m : members) {
      if (m < 1 || m > 0xffff) {
        throw new IllegalArgumentException("a replica id is a nonce's u16: " + m);
      }
    }
    this.selfId = selfId;
    this.clusterId = clusterId;
    this.members = Set.copyOf(members);
    this.sealer = keys == null ? null : new DatagramSealer(keys);
    this.epoch = epoch;
    if (sealer != null) {
      for (int m : this.members) {
        if (m != selfId) {
          windows.put(m, new ReplayWindow());
        }
      }
    }
  }

  /**
   * Replaces the members (a membership change; self included): a new member gets a fresh replay
   * window, a removed one loses its window and is an unknown sender from now on.
   */
  public synchronized void updateMembers(Set<Integer> newMembers) {
    for (int m : newMembers) {
      if (m < 1 || m > 0xffff) {
        throw new IllegalArgumentException("a replica id is a nonce's u16: " + m);
      }
    }
    members = Set.copyOf(newMembers);
    if (sealer != null) {
      windows.keySet().retainAll(members);
      for (int m : members) {
        if (m != selfId) {
          windows.computeIfAbsent(m, k -> new ReplayWindow());
        }
      }
    }
  }

  /** True when datagrams are sealed (a key is set). */
  public boolean sealing() {
    return sealer != null;
  }

  /** This start's epoch. */
  public long epoch() {
    return epoch;
  }

  /** The counter the next datagram gets. */
  public long nextCounter() {
    synchronized (sendLock) {
      return nextCounter;
    }
  }

  /**
   * The datagram of a message of type (MessageType number) in view with body: header, body (sealed
   * when a key is set) and checksum. Throws IllegalStateException when this epoch's counters are used
   * up (2^48 datagrams: the replica must restart, which takes a new epoch, rather than repeat a nonce).
   */
  public byte[] encode(int type, long view, byte[] body) {
    synchronized (sendLock) {
      if (nextCounter > DatagramHeader.MAX_COUNTER) {
        throw new IllegalStateException("datagram counter exhausted in epoch " + epoch + ": restart the replica");
      }
      long counter = nextCounter++;
      boolean seal = sealer != null;
      DatagramHeader h = new DatagramHeader(DatagramHeader.PROTOCOL_VERSION, type,
          seal ? DatagramHeader.FLAG_SEALED : 0, clusterId, view, selfId, epoch, counter,
          seal ? sealer.sendingKeyId() : 0);
      byte[] out = new byte[DatagramHeader.SIZE + body.length + (seal ? DatagramSealer.TAG_BYTES : 0)];
      h.encode(out);
      if (seal) {
        sealer.seal(nonce(out, selfId), out, body);
      } else {
        System.arraycopy(body, 0, out, DatagramHeader.SIZE, body.length);
      }
      DatagramHeader.writeChecksum(out, out.length);
      return out;
    }
  }

  /** Checks datagram[0..length) and opens it; see the class comment for the order and the reasons. */
  public synchronized Verdict decode(byte[] datagram, int length) {
    DatagramHeader h = DatagramHeader.decode(datagram, length);
    if (h == null) {
      return new Dropped("bad_magic", -1);
    }
    if (h.protocolVersion() != DatagramHeader.PROTOCOL_VERSION) {
      return new Dropped("bad_version", -1);
    }
    if (!DatagramHeader.checksumMatches(datagram, length)) {
      return new Dropped("bad_checksum", -1);
    }
    int sender = h.sender();
    if ((h.flags() & ~DatagramHeader.FLAG_SEALED) != 0 || DatagramHeader.reserved(datagram) != 0
        || (!h.sealed() && h.keyId() != 0)) {
      return new Dropped("bad_flags", sender);
    }
    if (h.clusterId() != clusterId) {
      return new Dropped("foreign_cluster", sender);
    }
    if (sender == selfId) {
      return OWN;
    }
    if (!members.contains(sender)) {
      return new Dropped("unknown_sender", sender);
    }
    if (sealer == null) {
      if (h.sealed()) {
        return new Dropped("sealed_without_key", sender);
      }
      byte[] body = new byte[length - DatagramHeader.SIZE];
      System.arraycopy(datagram, DatagramHeader.SIZE, body, 0, body.length);
      return new Accepted(h, body);
    }
    if (!h.sealed()) {
      return new Dropped("unsealed", sender);
    }
    if (!sealer.accepts(h.keyId())) {
      return new Dropped("unknown_key", sender);
    }
    ReplayWindow window = windows.get(sender);
    ReplayWindow.Check check = window.check(h.epoch(), h.counter());
    if (check == ReplayWindow.Check.BELOW_WINDOW) {
      return new Dropped("below_window", sender);
    }
    if (check != ReplayWindow.Check.FRESH) {
      return new Dropped("replay", sender);
    }
    byte[] body = sealer.open(h.keyId(), nonce(datagram, sender), datagram, length);
    if (body == null) {
      return new Dropped("bad_seal", sender);
    }
    window.accept(h.epoch(), h.counter());
    return new Accepted(h, body);
  }

  /** The nonce of a datagram of sender: sender (u16), then the header's epoch and counter (10 bytes). */
  private static byte[] nonce(byte[] datagram, int sender) {
    byte[] n = new byte[DatagramSealer.NONCE_BYTES];
    n[0] = (byte) (sender >>> 8);
    n[1] = (byte) sender;
    System.arraycopy(datagram, DatagramHeader.EPOCH_OFFSET, n, 2, 10);
    return n;
  }
}
