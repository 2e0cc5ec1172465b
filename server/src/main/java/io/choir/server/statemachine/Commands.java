package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.choir.proto.Batch;
import io.choir.proto.BatchOp;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Entry;
import io.choir.proto.Put;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.storage.Versioned;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Commands executes the data commands of log entries (Put, Delete, CompareAndSet, Batch, Noop, and the
 * lease commands of {@link LeaseCommands}) against an {@link Overlay} and the {@link LeaseTable}: pure
 * functions of the entry and the data, so that every replica computes the same reply and the same
 * changes. The client table check comes before, in {@link KvStateMachine}.
 *
 * <p>Choices the contract leaves open, made here: CompareAndSet with expected_version 0 matches an
 * absent key (an absent key has version 0); expect_absent set to false is INVALID; an empty Batch is OK
 * and writes nothing; a batch is validated as a whole before any op runs, so an invalid batch is
 * INVALID whatever the data holds.
 */
final class Commands {
  private Commands() {}

  /** Executes entry's command against data; the reply carries the entry's op and request id. */
  static Response execute(Entry entry, Overlay data, LeaseTable leases) {
    long op = entry.getOp();
    switch (entry.getCommandCase()) {
      case PUT -> {
        Put put = entry.getPut();
        if (put.getKey().isEmpty()) {
          return invalid(entry, "empty key");
        }
        Response refused = LeaseCommands.attachProblem(entry, leases, put.getLease(), put.getKey());
        if (refused != null) {
          return refused;
        }
        byte[] key = put.getKey().toByteArray();
        data.put(key, put.getValue().toByteArray(), op);
        LeaseCommands.attached(leases, key, put.getLease());
        return reply(entry, Status.OK).setVersion(op).build();
      }
      case DELETE -> {
        if (entry.getDelete().getKey().isEmpty()) {
          return invalid(entry, "empty key");
        }
        byte[] key = entry.getDelete().getKey().toByteArray();
        boolean existed = data.delete(key);
        leases.detach(key);
        return reply(entry, Status.OK).setVersion(op).setExisted(existed).build();
      }
      case COMPARE_AND_SET -> {
        CompareAndSet cas = entry.getCompareAndSet();
        String problem = invalidReason(cas);
        if (problem != null) {
          return invalid(entry, problem);
        }
        Response refused = LeaseCommands.attachProblem(entry, leases, cas.getLease(), cas.getKey());
        if (refused != null) {
          return refused;
        }
        Response.Builder failed = compareAndSet(cas, data, op);
        if (failed != null) {
          return failed.setRequestId(entry.getRequestId()).setOp(op).build();
        }
        LeaseCommands.attached(leases, cas.getKey().toByteArray(), cas.getLease());
        return reply(entry, Status.OK).setVersion(op).build();
      }
      case BATCH -> {
        return executeBatch(entry, entry.getBatch(), data, leases);
      }
      case LEASE_GRANT -> {
        return LeaseCommands.grant(entry, leases);
      }
      case LEASE_KEEP_ALIVE -> {
        return LeaseCommands.keepAlive(entry, leases);
      }
      case LEASE_REVOKE -> {
        return LeaseCommands.revoke(entry, leases, data);
      }
      case LEASE_EXPIRE -> {
        return LeaseCommands.expire(entry, leases, data);
      }
      case NOOP -> {
        return reply(entry, Status.OK).build();
      }
      default -> {
        return invalid(entry, "entry has no command");
      }
    }
  }

  /**
   * Executes a batch all or nothing: its ops run in order on an overlay of data (later ops see the
   * earlier ones), and the overlay reaches data only when no op failed.
   */
  private static Response executeBatch(Entry entry, Batch batch, Overlay data, LeaseTable leases) {
    long op = entry.getOp();
    // Validate every op first, so an invalid batch is INVALID whatever the data holds.
    for (int i = 0; i < batch.getOpsCount(); i++) {
      String problem = invalidReason(batch.getOps(i));
      if (problem != null) {
        return reply(entry, Status.INVALID)
            .setFailedIndex(i)
            .setError("batch op " + i + ": " + problem)
            .build();
      }
    }
    Response leaseRefusal = LeaseCommands.batchProblem(entry, leases, batch.getOpsList());
    if (leaseRefusal != null) {
      return leaseRefusal;
    }
    Overlay overlay = new Overlay(data);
    // Each written key's lease (0: none), applied to the lease table only when the whole batch succeeds.
    List<Map.Entry<byte[], Long>> attachments = new ArrayList<>();
    for (int i = 0; i < batch.getOpsCount(); i++) {
      BatchOp batchOp = batch.getOps(i);
      switch (batchOp.getOpCase()) {
        case PUT -> {
          Put put = batchOp.getPut();
          overlay.put(put.getKey().toByteArray(), put.getValue().toByteArray(), op);
          attachments.add(Map.entry(put.getKey().toByteArray(), put.getLease()));
        }
        case DELETE -> {
          overlay.delete(batchOp.getDelete().getKey().toByteArray());
          attachments.add(Map.entry(batchOp.getDelete().getKey().toByteArray(), 0L));
        }
        case COMPARE_AND_SET -> {
          Response.Builder failed = compareAndSet(batchOp.getCompareAndSet(), overlay, op);
          if (failed != null) {
            return failed
                .setRequestId(entry.getRequestId())
                .setOp(op)
                .setFailedIndex(i)
                .setError("batch op " + i + ": " + failed.getError())
                .build();
          }
          attachments.add(Map.entry(batchOp.getCompareAndSet().getKey().toByteArray(),
              batchOp.getCompareAndSet().getLease()));
        }
        default -> throw new IllegalStateException("unvalidated batch op " + batchOp.getOpCase());
      }
    }
    overlay.mergeIntoParent();
    for (Map.Entry<byte[], Long> a : attachments) {
      LeaseCommands.attached(leases, a.getKey(), a.getValue());
    }
    return reply(entry, Status.OK).setVersion(op).build();
  }

  /**
   * Writes cas.new_value with version op when the expectation holds and returns null; otherwise
   * returns a CAS_FAILED reply (without request id and op) with the current value and version.
   */
  private static Response.Builder compareAndSet(CompareAndSet cas, Overlay data, long op) {
    byte[] key = cas.getKey().toByteArray();
    Versioned current = data.get(key);
    long currentVersion = current == null ? 0 : current.version();
    String mismatch =
        switch (cas.getExpectedCase()) {
          case EXPECTED_VALUE -> {
            if (current == null) {
              yield "key is absent";
            }
            yield Arrays.equals(current.value(), cas.getExpectedValue().toByteArray())
                ? null
                : "value differs from the expected value";
          }
          case EXPECTED_VERSION ->
              currentVersion == cas.getExpectedVersion()
                  ? null
                  : "version is " + currentVersion + ", expected " + cas.getExpectedVersion();
          case EXPECT_ABSENT -> current == null ? null : "key exists (version " + currentVersion + ")";
          default -> throw new IllegalStateException("unvalidated compare-and-set " + cas);
        };
    if (mismatch == null) {
      data.put(key, cas.getNewValue().toByteArray(), op);
      return null;
    }
    return Response.newBuilder()
        .setStatus(Status.CAS_FAILED)
        .setValue(
            current == null ? ByteString.EMPTY : UnsafeByteOperations.unsafeWrap(current.value()))
        .setVersion(currentVersion)
        .setError("compare-and-set failed: " + mismatch);
  }

  private static String invalidReason(CompareAndSet cas) {
    if (cas.getKey().isEmpty()) {
      return "empty key";
    }
    return switch (cas.getExpectedCase()) {
      case EXPECTED_NOT_SET -> "compare-and-set without an expectation";
      case EXPECT_ABSENT -> cas.getExpectAbsent() ? null : "expect_absent must be true when set";
      default -> null;
    };
  }

  private static String invalidReason(BatchOp batchOp) {
    return switch (batchOp.getOpCase()) {
      case PUT -> batchOp.getPut().getKey().isEmpty() ? "empty key" : null;
      case DELETE -> batchOp.getDelete().getKey().isEmpty() ? "empty key" : null;
      case COMPARE_AND_SET -> invalidReason(batchOp.getCompareAndSet());
      default -> "batch op has no operation";
    };
  }

  static Response.Builder reply(Entry entry, Status status) {
    return Response.newBuilder()
        .setRequestId(entry.getRequestId())
        .setStatus(status)
        .setOp(entry.getOp());
  }

  static Response invalid(Entry entry, String error) {
    return reply(entry, Status.INVALID).setError(error).build();
  }
}
