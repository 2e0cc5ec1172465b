package io.choir.server.core;

import com.google.protobuf.ByteString;
import io.choir.proto.BatchOp;
import io.choir.proto.CompareAndSet;
import io.choir.proto.MemberChange;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;

/**
 * RequestValidator refuses requests the core must not execute, before they reach the log: no
 * operation, empty or oversized keys, oversized values, empty or oversized batches, a compare-and-set
 * without an expectation, a lease TTL out of range or a lease request without an id. Each refusal is
 * a reply with INVALID or TOO_LARGE and a message that says
 * which limit and by how much, so a client (and its user) can tell what to fix.
 */
final class RequestValidator {
  private final CoreConfig config;

  RequestValidator(CoreConfig config) {
    this.config = config;
  }

  /** Returns null when request may proceed, else the refusal to send. */
  Response check(Request request) {
    if (request.getClientId() != 0 && request.getRequestId() == 0) {
      return refuse(request, Status.INVALID, "request_id must be positive when client_id is set");
    }
    if (request.getFirstIncomplete() > request.getRequestId()) {
      return refuse(request, Status.INVALID, "first_incomplete " + request.getFirstIncomplete()
          + " is above the request's own id " + request.getRequestId());
    }
    return switch (request.getOpCase()) {
      case GET -> key(request, request.getGet().getKey(), "get");
      case PUT -> put(request, request.getPut().getKey(), request.getPut().getValue(), "put");
      case DELETE -> key(request, request.getDelete().getKey(), "delete");
      case COMPARE_AND_SET -> cas(request, request.getCompareAndSet(), "compare_and_set");
      case SCAN -> scan(request);
      case BATCH -> batch(request);
      case STATUS -> null;
      case REGISTER_SESSION, CLOSE_SESSION -> request.getClientId() == 0
          ? refuse(request, Status.INVALID, "a session needs a non-zero client_id") : null;
      case MEMBER_CHANGE -> memberChange(request);
      case LIST_MEMBERS, LEASE_LIST -> null;
      case LEASE_GRANT -> leaseGrant(request);
      case LEASE_KEEP_ALIVE -> request.getLeaseKeepAlive().getId() == 0
          ? refuse(request, Status.INVALID, "lease keep-alive: no lease id") : null;
      case LEASE_REVOKE -> request.getLeaseRevoke().getId() == 0
          ? refuse(request, Status.INVALID, "lease revoke: no lease id") : null;
      // Served by the network edge's watch hub; one that reaches the core came from no such edge.
      case WATCH, CANCEL_WATCH -> refuse(request, Status.INVALID, "watches are not served here");
      case OP_NOT_SET -> refuse(request, Status.INVALID, "request has no operation (or an unknown one)");
    };
  }

  private Response key(Request request, ByteString key, String what) {
    if (key.isEmpty()) {
      return refuse(request, Status.INVALID, what + ": the key is empty");
    }
    if (key.size() > config.maxKeyBytes) {
      return refuse(request, Status.TOO_LARGE, what + ": the key has " + key.size()
          + " bytes, more than max_key_bytes " + config.maxKeyBytes);
    }
    return null;
  }

  private Response put(Request request, ByteString key, ByteString value, String what) {
    Response r = key(request, key, what);
    if (r != null) {
      return r;
    }
    if (value.size() > config.maxValueBytes) {
      return refuse(request, Status.TOO_LARGE, what + ": the value has " + value.size()
          + " bytes, more than max_value_bytes " + config.maxValueBytes);
    }
    return null;
  }

  private Response cas(Request request, CompareAndSet cas, String what) {
    Response r = put(request, cas.getKey(), cas.getNewValue(), what);
    if (r != null) {
      return r;
    }
    switch (cas.getExpectedCase()) {
      case EXPECTED_VALUE:
        if (cas.getExpectedValue().size() > config.maxValueBytes) {
          return refuse(request, Status.TOO_LARGE, what + ": the expected value has "
              + cas.getExpectedValue().size() + " bytes, more than max_value_bytes "
              + config.maxValueBytes);
        }
        return null;
      case EXPECTED_VERSION:
        return null;
      case EXPECT_ABSENT:
        return cas.getExpectAbsent() ? null
            : refuse(request, Status.INVALID, what + ": expect_absent must be true when set");
      default:
        return refuse(request, Status.INVALID,
            what + ": no expectation (expected_value, expected_version or expect_absent)");
    }
  }

  /** The longest lease TTL (one day); the state machine refuses the same at apply (docs/lease.md). */
  static final long MAX_LEASE_TTL_MS = 86_400_000L;

  /** A TTL of 0, negative (as a uint64: above a day) or above a day is refused. */
  private Response leaseGrant(Request request) {
    long ttl = request.getLeaseGrant().getTtlMs();
    return ttl < 1 || ttl > MAX_LEASE_TTL_MS
        ? refuse(request, Status.INVALID, "lease grant: TTL " + Long.toUnsignedString(ttl)
            + " ms is out of range: 1 to " + MAX_LEASE_TTL_MS + " (one day)")
        : null;
  }

  /** The longest address (host:port) a membership change may carry. */
  static final int MAX_ADDRESS_CHARS = 255;

  /** The form of a membership change (what it asks of the membership is the primary's to check). */
  private Response memberChange(Request request) {
    MemberChange c = request.getMemberChange();
    if (c.getId() <= 0) {
      return refuse(request, Status.INVALID, "member change: id " + c.getId() + " out of range");
    }
    if (c.getClientAddress().length() > MAX_ADDRESS_CHARS || c.getPeerAddress().length() > MAX_ADDRESS_CHARS) {
      return refuse(request, Status.INVALID, "member change: an address longer than " + MAX_ADDRESS_CHARS);
    }
    return switch (c.getKind()) {
      case ADD_LEARNER -> c.getClientAddress().isEmpty() || c.getPeerAddress().isEmpty()
          ? refuse(request, Status.INVALID, "add: the new member needs a client and a peer address") : null;
      case PROMOTE, REMOVE -> null;
      case REPLACE -> c.getReplacedId() <= 0 || c.getReplacedId() == c.getId()
          ? refuse(request, Status.INVALID, "replace: replaced_id must name another member") : null;
      case KIND_UNKNOWN, UNRECOGNIZED -> refuse(request, Status.INVALID, "member change without a kind");
    };
  }

  private Response scan(Request request) {
    var scan = request.getScan();
    if (scan.getStartKey().size() > config.maxKeyBytes || scan.getEndKey().size() > config.maxKeyBytes) {
      return refuse(request, Status.TOO_LARGE, "scan: a bound is longer than max_key_bytes "
          + config.maxKeyBytes);
    }
    if (!scan.getEndKey().isEmpty()
        && ByteString.unsignedLexicographicalComparator().compare(scan.getStartKey(), scan.getEndKey()) > 0) {
      return refuse(request, Status.INVALID, "scan: start key is after end key");
    }
    return null;
  }

  private Response batch(Request request) {
    var ops = request.getBatch().getOpsList();
    if (ops.isEmpty()) {
      return refuse(request, Status.INVALID, "batch: no operations");
    }
    if (ops.size() > config.maxBatchOps) {
      return refuse(request, Status.TOO_LARGE, "batch: " + ops.size()
          + " operations, more than max_batch_ops " + config.maxBatchOps);
    }
    for (int i = 0; i < ops.size(); i++) {
      BatchOp op = ops.get(i);
      String what = "batch op " + i;
      Response r = switch (op.getOpCase()) {
        case PUT -> put(request, op.getPut().getKey(), op.getPut().getValue(), what);
        case DELETE -> key(request, op.getDelete().getKey(), what);
        case COMPARE_AND_SET -> cas(request, op.getCompareAndSet(), what);
        case OP_NOT_SET -> refuse(request, Status.INVALID, what + ": no operation (or an unknown one)");
      };
      if (r != null) {
        return r;
      }
    }
    return null;
  }

  static Response refuse(Request request, Status status, String error) {
    return Response.newBuilder()
        .setRequestId(request.getRequestId())
        .setStatus(status)
        .setError(error)
        .build();
  }
}
