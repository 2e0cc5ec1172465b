package io.choir.server.statemachine;

import com.google.protobuf.UnsafeByteOperations;
import io.choir.proto.KeyValue;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Scan;
import io.choir.proto.Status;
import io.choir.server.storage.StateStore;
import io.choir.server.storage.Versioned;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * Reads answers Get and Scan requests from the data in storage (and LeaseList from the lease table),
 * never from a partial state: it reads under the {@link SnapshotInstall}'s sequence lock and answers
 * UNAVAILABLE while a state transfer is being installed or when one began during the read (see {@link
 * KvStateMachine#read} for what Response.op promises). Any thread.
 */
final class Reads {
  private final StateStore storage;
  /** The apply thread's recent values, asked before storage (see {@link RecentValues#readable}). */
  private final RecentValues recent;
  private final SnapshotInstall install;
  /** The applied op number, read after the sequence lock and BEFORE the data. */
  private final LongSupplier applied;
  private final LeaseTable leases;
  private final LongSupplier timeMs;

  Reads(StateStore storage, RecentValues recent, SnapshotInstall install, LongSupplier applied, LeaseTable leases,
      LongSupplier timeMs) {
    this.storage = storage;
    this.recent = recent;
    this.install = install;
    this.applied = applied;
    this.leases = leases;
    this.timeMs = timeMs;
  }

  /**
   * The answer to request from the applied state, a Scan holding at most maxScanLimit pairs and
   * maxScanBytes (but always a first pair); UNAVAILABLE while the state is being replaced.
   */
  Response read(Request request, int maxScanLimit, long maxScanBytes) {
    if (maxScanLimit < 1) {
      throw new IllegalArgumentException("maxScanLimit must be at least 1: " + maxScanLimit);
    }
    long epoch = install.epoch();
    if ((epoch & 1) == 0) {
      Response answer = answer(request, applied.getAsLong(), maxScanLimit, maxScanBytes);
      if (install.epoch() == epoch) {
        return answer;
      }
    }
    return Response.newBuilder()
        .setRequestId(request.getRequestId())
        .setStatus(Status.UNAVAILABLE)
        .setError("this replica is installing a state transfer")
        .build();
  }

  /**
   * The answer to a Get from memory alone (the recent values, else {@link StateStore#getIfInMemory}), as {@link #read}
   * would give it; null when answering needs the disk, a state transfer is being installed, or request
   * is not a Get with a key: {@link #read} then answers it. Never waits for I/O. Any thread.
   */
  Response readFromMemory(Request request) {
    if (request.getOpCase() != Request.OpCase.GET || request.getGet().getKey().isEmpty()) {
      return null;
    }
    long epoch = install.epoch();
    if ((epoch & 1) != 0) {
      return null;
    }
    long op = applied.getAsLong(); // before the data, as in read
    byte[] key = request.getGet().getKey().toByteArray();
    Versioned found = recent.readable(key);
    if (found == null) {
      found = storage.getIfInMemory(key);
    } else if (found == RecentValues.ABSENT) {
      found = null;
    }
    if (found == StateStore.NOT_IN_MEMORY || install.epoch() != epoch) {
      return null;
    }
    return getReply(Response.newBuilder().setRequestId(request.getRequestId()).setOp(op), found);
  }

  private static Response getReply(Response.Builder reply, Versioned found) {
    if (found == null) {
      return reply.setStatus(Status.NOT_FOUND).build();
    }
    return reply
        .setStatus(Status.OK)
        .setValue(UnsafeByteOperations.unsafeWrap(found.value()))
        .setVersion(found.version())
        .build();
  }

  /**
   * The answer to request (a Get or Scan) from storage's data, with Response.op = applied: the caller
   * reads applied BEFORE calling, so the data answered is at least as new as op.
   */
  private Response answer(Request request, long applied, int maxScanLimit, long maxScanBytes) {
    long op = applied;
    Response.Builder reply = Response.newBuilder().setRequestId(request.getRequestId()).setOp(op);
    switch (request.getOpCase()) {
      case GET -> {
        byte[] key = request.getGet().getKey().toByteArray();
        if (key.length == 0) {
          return reply.setStatus(Status.INVALID).setError("empty key").build();
        }
        Versioned found = recent.readable(key);
        return getReply(reply, found == null ? storage.get(key) : found == RecentValues.ABSENT ? null : found);
      }
      case SCAN -> {
        Scan scan = request.getScan();
        int limit =
            scan.getLimit() == 0
                ? maxScanLimit
                : (int) Math.min(Integer.toUnsignedLong(scan.getLimit()), maxScanLimit);
        // One more than the limit tells whether the range goes on; so does the pair that crossed the
        // byte bound (storage returns it), which the reply leaves out unless it is the only one.
        int fetch = limit == Integer.MAX_VALUE ? limit : limit + 1;
        List<KeyValue> kvs = storage.scan(
            scan.getStartKey().toByteArray(), scan.getEndKey().toByteArray(), fetch, maxScanBytes);
        int taken = 0;
        long bytes = 0;
        while (taken < kvs.size() && taken < limit) {
          long size = StateStore.pairBytes(kvs.get(taken));
          if (taken > 0 && bytes + size > maxScanBytes) {
            break;
          }
          bytes += size;
          taken++;
        }
        boolean more = kvs.size() > taken;
        if (!more && taken < limit && bytes >= maxScanBytes) {
          // Storage stopped at the byte bound right after the last pair taken: look one key further.
          byte[] last = kvs.get(taken - 1).getKey().toByteArray();
          byte[] next = Arrays.copyOf(last, last.length + 1); // the smallest key after last
          more = !storage.scan(next, scan.getEndKey().toByteArray(), 1).isEmpty();
        }
        return reply
            .setStatus(Status.OK)
            .addAllKvs(more ? kvs.subList(0, taken) : kvs)
            .setMore(more)
            .build();
      }
      case LEASE_LIST -> {
        int limit = request.getLeaseList().getLimit() == 0 ? maxScanLimit
            : (int) Math.min(Integer.toUnsignedLong(request.getLeaseList().getLimit()), maxScanLimit);
        List<LeaseTable.Lease> found = leases.list(request.getLeaseList().getStartId(), limit);
        long now = timeMs.getAsLong();
        for (int i = 0; i < Math.min(limit, found.size()); i++) {
          reply.addLeases(found.get(i).info(now));
        }
        return reply.setStatus(Status.OK).setMore(found.size() > limit).build();
      }
      default -> {
        return reply
            .setStatus(Status.INVALID)
            .setError("not a read request: " + request.getOpCase())
            .build();
      }
    }
  }
}
