package io.choir.server.net.transfer;

import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseRecord;
import io.choir.proto.MembershipRecord;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.StateTransferChunk;
import io.choir.proto.StateTransferRequest;
import io.choir.server.statemachine.TransferRows;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * StateTransferReceiver is the receiving side of one state transfer (DESIGN.md "Loss, repair and
 * flow"), as a state machine without I/O, threads or clocks. Its driver (the Netty {@code
 * StateTransferClient}, or the simulator) sends {@link #request}, hands it every envelope that
 * arrives ({@link #onFrame}), tells it when the connection closed ({@link #onClosed}) or the fetch
 * timed out ({@link #onTimeout}), reads only while {@link #wantsRead} (that is the backpressure) and
 * closes the connection once {@link #wantsConnection} turns false.
 *
 * <p>Install: the receiver issues the storage steps through its {@link StorageLane}: {@link
 * InstallTarget#beginInstall} on the first chunk, {@link InstallTarget#installData} per chunk with
 * pairs, and after the last chunk one final step that reads back what storage now holds, checks its
 * {@link SnapshotDigest} against the source's, and only then calls {@link
 * InstallTarget#installSnapshot} (client rows, op, checksum, marker removal in one synced write).
 *
 * <p>Ordering assumption: the lane runs the Runnables it is given one at a time, in the order given,
 * on the one thread that writes storage, each exactly once (the replica's storage stage; a single
 * thread executor in tests; the simulator's storage actor). The install steps then interleave safely
 * with the stage's other writes, and {@link #result} completes ON that thread right after
 * installSnapshot, so a callback that posts Event.StateInstalled is ordered before any later storage
 * event. A step that fails in storage rethrows after failing the result, so the stage fails-stop as
 * with any storage error. After every step the lane thread calls onStepDone: the driver's cue to look
 * at {@link #wantsRead} and {@link #wantsConnection} again (on its own thread).
 *
 * <p>Validation: another protocol version or cluster id, a body that is not a chunk, op or checksum
 * changing between chunks, keys not strictly ascending (across chunks too), a client table above
 * maxClientTableBytes, or a last chunk without a digest fail the transfer. A snapshot at an op not
 * above the caller's applied number is refused before storage is touched (installing it would move
 * the replica back in time).
 *
 * <p>End-to-end check (issue 9, hole 2g): the final step recomputes the {@link SnapshotDigest} over
 * what this replica's storage holds after the last installData (read back through {@link
 * InstallTarget#readBack}), the client rows about to be installed, op and checksum. When it differs
 * from the digest of the last chunk, the transfer fails with installStarted = true and installSnapshot
 * is never called: the "installing" marker stays, so nothing is applied and the next fetch (whose
 * beginInstall wipes again) starts over.
 *
 * <p>Failure: any failure completes {@link #result} with {@link TransferFailedException}; steps not
 * yet run then do nothing. If the install had begun ({@link TransferFailedException#installStarted()})
 * storage holds the "installing" marker and a partial state, which the next fetch's beginInstall
 * resets (or KvStateMachine.load wipes after a restart): until then nothing may be applied. Once the
 * last chunk is in hand the connection is no longer needed, and once the final step has started the
 * outcome is its own (a timeout no longer interrupts a local write).
 *
 * <p>Memory: {@link #wantsRead} is false while maxQueuedChunks data steps wait for the storage thread,
 * so at most about that many chunks are held (plus whatever one read delivers), plus the client table
 * (at most maxClientTableBytes).
 *
 * <p>Threads: the driver calls {@link #request}, {@link #onFrame}, {@link #onClosed}, {@link
 * #onTimeout} and {@link #onError} from one thread at a time; the steps run on the lane's thread; the
 * phase, the step count and the result are safe to read from either.
 */
public final class StateTransferReceiver {
  /**
   * Limits are the receiver's bounds.
   *
   * @param maxClientTableBytes total serialized client rows accepted (they are installed in one write)
   * @param maxQueuedChunks data steps received but not yet written by the storage thread before
   *     reading pauses
   * @param readBackBytes key and value bytes read at a time when the final step reads back the data
   */
  public record Limits(long maxClientTableBytes, int maxQueuedChunks, int readBackBytes) {
    public Limits {
      if (maxClientTableBytes < 0) {
        throw new IllegalArgumentException(
            "maxClientTableBytes must not be negative: " + maxClientTableBytes);
      }
      if (maxQueuedChunks < 1) {
        throw new IllegalArgumentException("maxQueuedChunks must be at least 1: " + maxQueuedChunks);
      }
      if (readBackBytes < 1) {
        throw new IllegalArgumentException("readBackBytes must be positive: " + readBackBytes);
      }
    }

    /** Limits.defaults: 256 MiB of client rows, 4 queued chunks, reads back 4 MiB at a time. */
    public static Limits defaults() {
      return new Limits(256L << 20, 4, 4 << 20);
    }
  }

  /**
   * Installed is what a successful transfer installed: the snapshot's op, the checksum at it and its
   * membership row (epoch 0: the bootstrap membership; null: the source sent none, the row was kept),
   * which the core gets in Event.StateInstalled to enter that epoch.
   */
  public record Installed(long op, long checksum, MembershipRecord membership) {
    public Installed(long op, long checksum) {
      this(op, checksum, null);
    }
  }

  /** StorageLane runs install steps on the storage-writer thread, in order, each exactly once. */
  @FunctionalInterface
  public interface StorageLane {
    /** Queues step; may block briefly (a bounded queue); throws when the step cannot be queued. */
    void submit(Runnable step);
  }

  /** Phase of one transfer; moves only forward. */
  private enum Phase {
    /** Chunks are arriving. */
    RECEIVING,
    /** The last chunk is in hand; the connection is no longer needed; steps may still be queued. */
    RECEIVED,
    /** The final step runs on the storage thread; only its outcome decides. */
    FINISHING,
    DONE,
    FAILED
  }

  private final String source;
  private final long clusterIdHash;
  private final int selfId;
  private final long applied;
  private final Limits limits;
  private final InstallTarget target;
  private final StorageLane lane;
  private final Runnable onStepDone;

  private final CompletableFuture<Installed> result = new CompletableFuture<>();
  private final AtomicReference<Phase> phase = new AtomicReference<>(Phase.RECEIVING);
  private final AtomicInteger queued = new AtomicInteger();
  private volatile boolean installStarted;

  // Driver thread only.
  private boolean begun;
  private long op;
  private long checksum;
  private byte[] lastKey;
  private final List<ClientRecord> clients = new ArrayList<>();
  private final List<LeaseRecord> leases = new ArrayList<>();
  private long leaseBytes;
  private long clientBytes;
  private long chunks;
  private long pairs;

  /**
   * A receiver for one transfer.
   *
   * @param source names the source in messages (its address or id)
   * @param clusterIdHash this cluster's id, sent and checked on every chunk
   * @param selfId this replica's id (the source checks it is a member)
   * @param applied this replica's applied op: the snapshot must be above it
   * @param limits the receiver's bounds
   * @param target where the snapshot is installed (runs on the lane's thread)
   * @param lane runs the install steps on the storage thread
   * @param onStepDone called on the lane's thread after every step (the driver re-checks wantsRead)
   */
  public StateTransferReceiver(
      String source,
      long clusterIdHash,
      int selfId,
      long applied,
      Limits limits,
      InstallTarget target,
      StorageLane lane,
      Runnable onStepDone) {
    this.source = source;
    this.clusterIdHash = clusterIdHash;
    this.selfId = selfId;
    this.applied = applied;
    this.limits = limits;
    this.target = target;
    this.lane = lane;
    this.onStepDone = onStepDone;
  }

  /** The request envelope the driver sends first. */
  public PeerEnvelope request(long view) {
    return TransferCodec.envelope(clusterIdHash, view, selfId)
        .setStateTransferRequest(StateTransferRequest.newBuilder().setApplied(applied))
        .build();
  }

  /**
   * Completes with the installed op and checksum (on the storage thread), or exceptionally with
   * {@link TransferFailedException}.
   */
  public CompletableFuture<Installed> result() {
    return result;
  }

  /** True while the driver should read more from the connection. */
  public boolean wantsRead() {
    return phase.get() == Phase.RECEIVING && queued.get() < limits.maxQueuedChunks();
  }

  /** False once the connection is no longer needed (the last chunk is in hand, or failed). */
  public boolean wantsConnection() {
    return phase.get() == Phase.RECEIVING;
  }

  /** Data steps queued and not yet run. */
  public int queuedSteps() {
    return queued.get();
  }

  /** Chunks received so far. */
  public long chunks() {
    return chunks;
  }

  /** Data pairs received so far. */
  public long pairs() {
    return pairs;
  }

  /** Handles one envelope from the connection (driver thread). */
  public void onFrame(PeerEnvelope envelope) {
    if (phase.get() != Phase.RECEIVING) {
      return; // failed, or past the last chunk: nothing more is wanted
    }
    String problem = check(envelope);
    if (problem != null) {
      fail("invalid state transfer stream from " + source + ": " + problem, null);
      return;
    }
    StateTransferChunk chunk = envelope.getStateTransferChunk();
    chunks++;
    if (!begun) {
      op = chunk.getOp();
      checksum = chunk.getChecksum();
      if (op <= applied) {
        fail("source " + source + " is at op " + op + ", not above our applied " + applied, null);
        return;
      }
      begun = true;
      queue(
          () -> {
            installStarted = true; // before the phase check: a racing failure reports it
            if (live()) {
              target.beginInstall();
            }
          });
    }
    if (chunk.getKvsCount() > 0) {
      List<KeyValue> kvs = chunk.getKvsList();
      pairs += kvs.size();
      queue(
          () -> {
            if (live()) {
              target.installData(kvs);
            }
          });
    }
    for (ClientRecord record : chunk.getClientsList()) {
      clientBytes += record.getSerializedSize();
      if (clientBytes > limits.maxClientTableBytes()) {
        fail("client table exceeds maxClientTableBytes " + limits.maxClientTableBytes(), null);
        return;
      }
      clients.add(record);
    }
    for (LeaseRecord record : chunk.getLeasesList()) {
      String unfit = TransferRows.leaseRecordProblem(record);
      if (unfit != null) {
        fail("a chunk from " + source + " has " + unfit, null);
        return;
      }
      leaseBytes += record.getSerializedSize();
      if (leaseBytes > limits.maxClientTableBytes()) {
        fail("lease table exceeds maxClientTableBytes " + limits.maxClientTableBytes(), null);
        return;
      }
      leases.add(record);
    }
    if (chunk.getLast()) {
      byte[] expected = chunk.getDigest().toByteArray();
      if (expected.length != SnapshotDigest.BYTES) {
        fail(
            "the last chunk from " + source + " has "
                + (expected.length == 0 ? "no digest" : "a digest of " + expected.length + " bytes")
                + ": the snapshot cannot be verified",
            null);
        return;
      }
      MembershipRecord membership = chunk.hasMembership() ? chunk.getMembership() : null;
      String unfit = ReceivedMembership.problem(membership);
      if (unfit != null) {
        fail("the last chunk from " + source + " has " + unfit, null);
        return;
      }
      if (phase.compareAndSet(Phase.RECEIVING, Phase.RECEIVED)) {
        finish(expected, membership);
      }
    }
  }

  /** The connection closed or failed (driver thread): fatal before the last chunk. */
  public void onClosed() {
    if (phase.get() == Phase.RECEIVING) {
      fail("source " + source + " closed the connection before the last chunk", null);
    }
  }

  /** The driver's deadline for the whole fetch passed (driver thread). */
  public void onTimeout(String detail) {
    fail("timed out" + (detail == null || detail.isEmpty() ? "" : " " + detail), null);
  }

  /** The connection could not be made or failed with cause (driver thread). */
  public void onError(String why, Throwable cause) {
    fail(why, cause);
  }

  /** Returns what is wrong with a chunk envelope, or null (driver thread). */
  private String check(PeerEnvelope envelope) {
    String stamp = TransferCodec.stampProblem(envelope, clusterIdHash);
    if (stamp != null) {
      return stamp;
    }
    if (envelope.getBodyCase() != PeerEnvelope.BodyCase.STATE_TRANSFER_CHUNK) {
      return "not a state transfer chunk: " + envelope.getBodyCase();
    }
    StateTransferChunk chunk = envelope.getStateTransferChunk();
    if (begun && (chunk.getOp() != op || chunk.getChecksum() != checksum)) {
      return "chunk " + (chunks + 1) + " is at op " + chunk.getOp() + " with checksum "
          + Long.toHexString(chunk.getChecksum()) + ", the first at op " + op + " with checksum "
          + Long.toHexString(checksum);
    }
    for (KeyValue kv : chunk.getKvsList()) {
      byte[] key = kv.getKey().toByteArray();
      if (lastKey != null && Arrays.compareUnsigned(key, lastKey) <= 0) {
        return "keys are not strictly ascending";
      }
      lastKey = key;
    }
    return null;
  }

  /** Queues the final step: verify the digest, then installSnapshot (driver thread). */
  private void finish(byte[] expected, MembershipRecord membership) {
    List<ClientRecord> rows = List.copyOf(clients);
    List<LeaseRecord> leaseRows = List.copyOf(leases);
    long finalOp = op;
    long finalChecksum = checksum;
    submit(
        () -> {
          try {
            verifyAndInstall(expected, finalOp, finalChecksum, rows, leaseRows, membership);
          } finally {
            onStepDone.run();
          }
        });
  }

  /** The final step (storage thread): read back, compare digests, install only when they match. */
  private void verifyAndInstall(byte[] expected, long finalOp, long finalChecksum, List<ClientRecord> rows,
      List<LeaseRecord> leaseRows, MembershipRecord membership) {
    if (!phase.compareAndSet(Phase.RECEIVED, Phase.FINISHING)) {
      return; // failed meanwhile (timeout): leave the marker for the next fetch
    }
    try {
      SnapshotDigest digest = new SnapshotDigest(finalOp, finalChecksum);
      target.readBack(digest, limits.readBackBytes());
      long stored = digest.pairs();
      byte[] actual = digest.finish(rows, leaseRows);
      if (!SnapshotDigest.matches(expected, actual)) {
        // Not a storage failure to stop for: the marker stays, nothing is applied, and the next
        // fetch starts over from empty.
        phase.set(Phase.FAILED);
        result.completeExceptionally(
            new TransferFailedException(
                "the snapshot from " + source + " at op " + finalOp + " does not verify: its digest"
                    + " is " + SnapshotDigest.hex(expected) + ", the " + stored + " pairs stored"
                    + " here with " + rows.size() + " client rows give "
                    + SnapshotDigest.hex(actual) + "; nothing was installed",
                null,
                true));
        return;
      }
      if (!leaseRows.isEmpty()) {
        target.installSnapshot(finalOp, finalChecksum, rows, membership, leaseRows);
      } else if (membership == null) {
        target.installSnapshot(finalOp, finalChecksum, rows);
      } else {
        target.installSnapshot(finalOp, finalChecksum, rows, membership);
      }
    } catch (Throwable t) {
      phase.set(Phase.FAILED);
      result.completeExceptionally(
          new TransferFailedException("cannot install the state transfer", t, true));
      throw t;
    }
    phase.set(Phase.DONE);
    result.complete(new Installed(finalOp, finalChecksum, membership));
  }

  /** Queues a storage step counted against maxQueuedChunks (driver thread). */
  private void queue(Runnable step) {
    queued.incrementAndGet();
    submit(
        () -> {
          try {
            step.run();
          } catch (Throwable t) {
            fail("cannot write the state transfer to storage", t);
            throw t;
          } finally {
            queued.decrementAndGet();
            onStepDone.run();
          }
        });
  }

  private void submit(Runnable step) {
    try {
      lane.submit(step);
    } catch (RuntimeException e) {
      fail("cannot queue a state transfer step on the storage thread", e);
    }
  }

  /** True while storage steps should still run. */
  private boolean live() {
    Phase p = phase.get();
    return p == Phase.RECEIVING || p == Phase.RECEIVED;
  }

  /** Fails the transfer unless it finished or is finishing (any thread). */
  private void fail(String why, Throwable cause) {
    Phase p = phase.get();
    while (p == Phase.RECEIVING || p == Phase.RECEIVED) {
      if (phase.compareAndSet(p, Phase.FAILED)) {
        result.completeExceptionally(new TransferFailedException(why, cause, installStarted));
        return;
      }
      p = phase.get();
    }
  }
}
