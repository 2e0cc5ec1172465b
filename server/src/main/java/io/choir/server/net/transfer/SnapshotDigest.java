package io.choir.server.net.transfer;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseRecord;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * SnapshotDigest is the end-to-end check of a state transfer (issue 9, hole 2g): a SHA-256 over the
 * whole state a snapshot holds. The source computes it over what it read from its storage snapshot
 * and sends it in the last chunk ({@code StateTransferChunk.digest}); the receiver computes it again
 * over what its own storage holds after the last chunk was written, and installs nothing when the two
 * differ. So a value changed, a pair lost or a checksum altered anywhere between the source's storage
 * and the receiver's (the stream, a bug in either side, a storage that dropped a write) is caught
 * before the replica takes the state for the source's.
 *
 * <p>Encoding hashed, in this order (all numbers big-endian; lengths make every field self-delimiting
 * and the tag bytes separate the sections, so two different states can never hash the same bytes, a
 * concatenation of keys or values included):
 *
 * <pre>
 *   "choir-snapshot-digest-v1"                 24 bytes of US-ASCII (domain separation)
 *   op                                         u64
 *   checksum                                   u64
 *   for every data pair, in unsigned key order:
 *     0x01, key length u32, key, value length u32, value, version u64
 *   0x02, number of data pairs                 u64
 *   for every client record, in unsigned client id order:
 *     0x03, length u32, the record's deterministic protobuf serialization
 *   0x04, number of client records             u64
 * </pre>
 *
 * <p>Data pairs must be added in strictly ascending unsigned key order (the order both sides read
 * them in); {@link #addData} throws otherwise, so a caller cannot hash a different order by mistake.
 * Client records are sorted by {@link #finish} itself, so the digest does not depend on how the client
 * table is laid out in storage.
 *
 * <p>Not thread-safe; one instance per computation.
 */
public final class SnapshotDigest {
  /** Length of a digest: SHA-256. */
  public static final int BYTES = 32;

  private static final byte[] DOMAIN =
      "choir-snapshot-digest-v1".getBytes(StandardCharsets.US_ASCII);
  private static final byte DATA = 0x01;
  private static final byte END_DATA = 0x02;
  private static final byte CLIENT = 0x03;
  private static final byte END_CLIENTS = 0x04;
  private static final byte LEASE = 0x05;
  private static final byte END_LEASES = 0x06;

  private final MessageDigest sha256;
  private final byte[] scratch = new byte[8];
  private byte[] lastKey;
  private long pairs;
  private boolean finished;

  /** Starts a digest of the snapshot taken at op with checksum. */
  public SnapshotDigest(long op, long checksum) {
    try {
      sha256 = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      // Every Java platform must provide SHA-256 (MessageDigest's Javadoc).
      throw new IllegalStateException("SHA-256 is not available", e);
    }
    sha256.update(DOMAIN);
    putLong(op);
    putLong(checksum);
  }

  /** Adds the next data pair; keys must strictly ascend (unsigned). */
  public SnapshotDigest addData(KeyValue kv) {
    return addData(kv.getKey(), kv.getValue(), kv.getVersion());
  }

  /** Adds the next data pair; keys must strictly ascend (unsigned). */
  public SnapshotDigest addData(ByteString key, ByteString value, long version) {
    ensureOpen();
    byte[] k = key.toByteArray();
    if (lastKey != null && Arrays.compareUnsigned(k, lastKey) <= 0) {
      throw new IllegalArgumentException("data pairs must be added in strictly ascending key order");
    }
    lastKey = k;
    sha256.update(DATA);
    putInt(k.length);
    sha256.update(k);
    putInt(value.size());
    // Piece by piece, without copying (a value may be 1 MiB or more).
    for (ByteBuffer piece : value.asReadOnlyByteBufferList()) {
      sha256.update(piece);
    }
    putLong(version);
    pairs++;
    return this;
  }

  /** Adds every pair of kvs in order. */
  public SnapshotDigest addAllData(List<KeyValue> kvs) {
    for (KeyValue kv : kvs) {
      addData(kv);
    }
    return this;
  }

  /** Ends the data, adds the client table (sorted here by client id) and returns the digest. */
  public byte[] finish(List<ClientRecord> clients) {
    return finish(clients, List.of());
  }

  /**
   * Ends the data, adds the client table (sorted by client id) and, when there are any, the leases
   * (sorted by id; none gives the digest of {@link #finish(List)}), and returns the digest.
   */
  public byte[] finish(List<ClientRecord> clients, List<LeaseRecord> leases) {
    ensureOpen();
    finished = true;
    sha256.update(END_DATA);
    putLong(pairs);
    List<ClientRecord> sorted = new ArrayList<>(clients);
    sorted.sort(Comparator.comparing(ClientRecord::getClientId, Long::compareUnsigned));
    for (ClientRecord record : sorted) {
      byte[] bytes = deterministic(record);
      sha256.update(CLIENT);
      putInt(bytes.length);
      sha256.update(bytes);
    }
    sha256.update(END_CLIENTS);
    putLong(sorted.size());
    if (!leases.isEmpty()) {
      List<LeaseRecord> byId = new ArrayList<>(leases);
      byId.sort(Comparator.comparing(LeaseRecord::getId, Long::compareUnsigned));
      for (LeaseRecord record : byId) {
        byte[] bytes = record.toByteArray(); // no maps: the serialization is deterministic
        sha256.update(LEASE);
        putInt(bytes.length);
        sha256.update(bytes);
      }
      sha256.update(END_LEASES);
      putLong(byId.size());
    }
    return sha256.digest();
  }

  /** The number of data pairs added so far. */
  public long pairs() {
    return pairs;
  }

  /** Compares two digests in constant time; a missing (empty) or wrongly sized one never matches. */
  public static boolean matches(byte[] expected, byte[] actual) {
    return expected != null
        && actual != null
        && expected.length == BYTES
        && actual.length == BYTES
        && MessageDigest.isEqual(expected, actual);
  }

  /** Hex of a digest, for logs. */
  public static String hex(byte[] digest) {
    StringBuilder out = new StringBuilder(digest.length * 2);
    for (byte b : digest) {
      out.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
    }
    return out.toString();
  }

  /**
   * The record's bytes with deterministic serialization (map entries sorted by key), so the same
   * record hashes the same on both sides whatever order a map was built in.
   */
  private static byte[] deterministic(ClientRecord record) {
    byte[] out = new byte[record.getSerializedSize()];
    CodedOutputStream stream = CodedOutputStream.newInstance(out);
    stream.useDeterministicSerialization();
    try {
      record.writeTo(stream);
      stream.checkNoSpaceLeft();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot serialize a client record", e);
    }
    return out;
  }

  private void ensureOpen() {
    if (finished) {
      throw new IllegalStateException("the digest is already finished");
    }
  }

  private void putLong(long value) {
    for (int i = 7; i >= 0; i--) {
      scratch[i] = (byte) value;
      value >>>= 8;
    }
    sha256.update(scratch, 0, 8);
  }

  private void putInt(int value) {
    for (int i = 3; i >= 0; i--) {
      scratch[i] = (byte) value;
      value >>>= 8;
    }
    sha256.update(scratch, 0, 4);
  }
}
