package io.choir.server.net.transfer;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseRecord;
import io.choir.proto.MembershipRecord;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.StateTransferChunk;
import io.choir.server.statemachine.TransferRows;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StorageSnapshot;
import java.util.List;
import java.util.Set;

/**
 * StateTransferSender is the source side of one state transfer (DESIGN.md "Loss, repair and flow"),
 * as a state machine without I/O, threads or clocks: given the request and a storage snapshot it
 * produces the chunk envelopes one at a time, when its driver asks ({@link #next}), and knows when it
 * is done. The driver (the Netty {@code StateTransferServer}, or the simulator) decides when to ask
 * (only while the connection has room: that is the backpressure), enforces the timeouts and the
 * connection limits, and closes the connection after the last chunk.
 *
 * <p>Stream: every chunk carries the snapshot's op (applied number) and checksum; first the data pairs
 * in key order (each chunk at most maxChunkPairs pairs and about maxChunkBytes of keys and values; a
 * single larger pair goes alone), then the client table rows (spread over chunks by the same byte
 * bound); the final chunk has last = true (it may carry nothing else), the {@link SnapshotDigest}
 * of everything this sender read, which the receiver checks before it installs, and the snapshot's
 * membership row when it is not the bootstrap one (DESIGN.md "Membership": the receiver enters its
 * epoch). When the snapshot's
 * op is not above the requester's applied number, the answer is one empty last chunk: the requester
 * refuses it (installing it would move it back), and nothing else is read.
 *
 * <p>Why a snapshot and not the live state: the replica keeps applying while it streams, and a
 * receiver that installed keys from different ops under one applied number would silently diverge.
 * The storage snapshot reads applied, checksum, data and clients as of one instant, and they were
 * written together in one WriteSet, so they agree. The client table is read with {@link
 * TransferRows#clientTable}, the one reader that knows its storage layout.
 *
 * <p>Memory: one chunk at a time plus the client table (read once, when the transfer opens). The
 * sender owns the snapshot: it closes it once the last chunk is produced, on {@link #close}, or when
 * {@link #open} fails. One thread at a time.
 */
public final class StateTransferSender implements AutoCloseable {
  private static final byte[] APPLIED = MetaKeys.bytes(MetaKeys.APPLIED);
  private static final byte[] CHECKSUM = MetaKeys.bytes(MetaKeys.CHECKSUM);
  private static final byte[] INSTALLING = MetaKeys.bytes(MetaKeys.INSTALLING);

  /**
   * Config is what a sender needs besides the snapshot.
   *
   * @param selfId this replica's id (the sender of every chunk)
   * @param clusterIdHash the cluster id a request must carry, stamped on every chunk
   * @param memberIds the replica ids allowed to ask
   * @param maxChunkBytes key and value bytes per chunk (a single larger pair goes alone)
   * @param maxChunkPairs pairs per chunk
   */
  public record Config(
      int selfId, long clusterIdHash, Set<Integer> memberIds, int maxChunkBytes, int maxChunkPairs) {
    public Config {
      memberIds = Set.copyOf(memberIds);
      if (maxChunkBytes < 1) {
        throw new IllegalArgumentException("maxChunkBytes must be positive: " + maxChunkBytes);
      }
      if (maxChunkPairs < 1) {
        throw new IllegalArgumentException("maxChunkPairs must be at least 1: " + maxChunkPairs);
      }
    }
  }

  /** Refused says why a transfer cannot be served from this snapshot; nothing was sent. */
  public static final class Refused extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public Refused(String message, Throwable cause) {
      super(message, cause);
    }
  }

  private final Config config;
  private final long requesterApplied;
  private StorageSnapshot snapshot;
  private final long op;
  private final long checksum;
  private final List<ClientRecord> clients;
  /** The snapshot's lease table (each lease with its keys), streamed after the client rows. */
  private final List<LeaseRecord> leases;
  /** The snapshot's membership row (epoch 0: the bootstrap membership), sent in the last chunk. */
  private final MembershipRecord membership;
  private final SnapshotDigest digest;
  /** Next data key to read; null once the data is exhausted. */
  private byte[] cursor;
  private int nextClient;
  private int nextLease;
  private boolean done;
  private long chunks;
  private long pairs;

  private StateTransferSender(Config config, long requesterApplied, StorageSnapshot snapshot) {
    this.config = config;
    this.requesterApplied = requesterApplied;
    this.snapshot = snapshot;
    if (snapshot.getMeta(INSTALLING) != null) {
      throw new Refused("this replica is installing a state transfer itself", null);
    }
    this.op = metaLong(snapshot, APPLIED);
    this.checksum = metaLong(snapshot, CHECKSUM);
    if (op <= requesterApplied) {
      // Not ahead of the requester: one empty last chunk tells it so, instead of the whole state.
      this.cursor = null;
      this.clients = List.of();
      this.leases = List.of();
      this.membership = null;
      this.digest = null;
    } else {
      this.cursor = new byte[0];
      this.clients = TransferRows.clientTable(snapshot);
      this.leases = TransferRows.leaseTable(snapshot);
      this.membership = TransferRows.membership(snapshot);
      this.digest = new SnapshotDigest(op, checksum);
    }
  }

  /**
   * Returns why request is refused before any state is read, or null when it is a valid state
   * transfer request from a member: another protocol version or cluster id, a sender that is not a
   * member, or a body that is not a state transfer request.
   */
  public static String refusal(Config config, PeerEnvelope request) {
    String stamp = TransferCodec.stampProblem(request, config.clusterIdHash());
    if (stamp != null) {
      return stamp;
    }
    if (!config.memberIds().contains(request.getSender())) {
      return "sender " + request.getSender() + " is not a member";
    }
    if (request.getBodyCase() != PeerEnvelope.BodyCase.STATE_TRANSFER_REQUEST) {
      return "not a state transfer request: " + request.getBodyCase();
    }
    return null;
  }

  /**
   * Opens a transfer of snapshot answering request (which {@link #refusal} accepted). Takes ownership
   * of snapshot, and closes it when this throws.
   *
   * @throws Refused when the snapshot is itself mid-install (this replica is catching up) or cannot
   *     be read
   */
  public static StateTransferSender open(
      Config config, PeerEnvelope request, StorageSnapshot snapshot) {
    String problem = refusal(config, request);
    if (problem != null) {
      snapshot.close();
      throw new Refused(problem, null);
    }
    try {
      return new StateTransferSender(
          config, request.getStateTransferRequest().getApplied(), snapshot);
    } catch (Refused e) {
      snapshot.close();
      throw e;
    } catch (RuntimeException e) {
      snapshot.close();
      throw new Refused("cannot read the snapshot: " + e.getMessage(), e);
    }
  }

  /** The snapshot's op (its applied number). */
  public long op() {
    return op;
  }

  /** The checksum at op. */
  public long checksum() {
    return checksum;
  }

  /** The requester's applied number. */
  public long requesterApplied() {
    return requesterApplied;
  }

  /** True once the last chunk was produced: nothing more to send, the snapshot is closed. */
  public boolean done() {
    return done;
  }

  /** Chunks produced so far. */
  public long chunks() {
    return chunks;
  }

  /** Data pairs produced so far. */
  public long pairs() {
    return pairs;
  }

  /** The next chunk in an envelope stamped with view (informational: the snapshot is committed). */
  public PeerEnvelope next(long view) {
    return TransferCodec.envelope(config.clusterIdHash(), view, config.selfId())
        .setStateTransferChunk(nextChunk())
        .build();
  }

  /**
   * Reads the next chunk: data pairs first, then client rows, then leases; last (with the digest) once both are
   * exhausted. Throws IllegalStateException when done, and the snapshot's StorageException when it
   * cannot be read (the driver then aborts the transfer).
   */
  public StateTransferChunk nextChunk() {
    if (done) {
      throw new IllegalStateException("the state transfer is complete: no chunk follows the last");
    }
    if (snapshot == null) {
      throw new IllegalStateException("the state transfer was closed before its last chunk");
    }
    StateTransferChunk.Builder chunk =
        StateTransferChunk.newBuilder().setOp(op).setChecksum(checksum);
    chunks++;
    if (cursor != null) {
      List<KeyValue> kvs =
          snapshot.scanData(cursor, config.maxChunkPairs(), config.maxChunkBytes());
      if (!kvs.isEmpty()) {
        cursor = Bytes.successor(kvs.get(kvs.size() - 1).getKey().toByteArray());
        digest.addAllData(kvs);
        pairs += kvs.size();
        return chunk.addAllKvs(kvs).build();
      }
      cursor = null; // data exhausted: this chunk carries client rows
    }
    long bytes = 0;
    while (nextClient < clients.size()) {
      ClientRecord record = clients.get(nextClient);
      int size = record.getSerializedSize();
      if (chunk.getClientsCount() > 0 && bytes + size > config.maxChunkBytes()) {
        break;
      }
      chunk.addClients(record);
      bytes += size;
      nextClient++;
    }
    while (nextClient == clients.size() && nextLease < leases.size()) {
      LeaseRecord record = leases.get(nextLease);
      int size = record.getSerializedSize();
      if ((chunk.getClientsCount() > 0 || chunk.getLeasesCount() > 0) && bytes + size > config.maxChunkBytes()) {
        break;
      }
      chunk.addLeases(record);
      bytes += size;
      nextLease++;
    }
    if (nextClient == clients.size() && nextLease == leases.size()) {
      chunk.setLast(true);
      if (digest != null) {
        chunk.setDigest(ByteString.copyFrom(digest.finish(clients, leases)));
        if (membership.getEpoch() != 0) {
          chunk.setMembership(membership); // absent: the bootstrap membership (the stream as before)
        }
      }
      done = true;
      close(); // every chunk is read; the snapshot is no longer needed while the last bytes drain
    }
    return chunk.build();
  }

  /** Releases the snapshot; idempotent. */
  @Override
  public void close() {
    StorageSnapshot s = snapshot;
    snapshot = null;
    if (s != null) {
      s.close();
    }
  }

  private static long metaLong(StorageSnapshot snapshot, byte[] key) {
    byte[] value = snapshot.getMeta(key);
    return value == null ? 0 : Bytes.bytesToLong(value);
  }
}
