package io.choir.client;

import io.choir.proto.KeyValue;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Responses turns a final {@link Response} into the result of one operation, or into the typed
 * exception its status stands for. Not-found is a result (an empty Optional, false), never an error.
 */
final class Responses {
  private Responses() {}

  static Optional<VersionedValue> get(Response r) {
    return switch (r.getStatus()) {
      case OK -> Optional.of(new VersionedValue(r.getValue().toByteArray(), r.getVersion()));
      case NOT_FOUND -> Optional.empty();
      default -> throw failure(r, -1);
    };
  }

  /** Put, compare-and-set and batch: the op number of the write. */
  static long write(Response r, boolean batch) {
    return switch (r.getStatus()) {
      case OK -> r.getVersion();
      // A server may answer a compare-and-set on an absent key with NOT_FOUND rather than CAS_FAILED.
      case NOT_FOUND -> throw new CasFailedException("the key is absent" + detail(r), null, 0, batch ? r.getFailedIndex() : -1);
      default -> throw failure(r, batch ? r.getFailedIndex() : -1);
    };
  }

  static long put(Response r) {
    if (r.getStatus() == Status.OK) {
      return r.getVersion();
    }
    throw failure(r, -1);
  }

  static boolean delete(Response r) {
    return switch (r.getStatus()) {
      case OK -> r.getExisted();
      case NOT_FOUND -> false;
      default -> throw failure(r, -1);
    };
  }

  static ScanResult scan(Response r) {
    if (r.getStatus() != Status.OK) {
      throw failure(r, -1);
    }
    List<KeyValueVersion> entries = new ArrayList<>(r.getKvsCount());
    for (KeyValue kv : r.getKvsList()) {
      entries.add(new KeyValueVersion(kv.getKey().toByteArray(), kv.getValue().toByteArray(), kv.getVersion()));
    }
    return new ScanResult(entries, r.getMore());
  }

  static ReplicaInfo status(Response r) {
    if (r.getStatus() != Status.OK || !r.hasReplicaStatus()) {
      throw failure(r, -1);
    }
    return ReplicaInfo.fromProto(r.getReplicaStatus());
  }

  /** ListMembers: the answering replica's membership. */
  static Membership members(Response r) {
    if (r.getStatus() != Status.OK) {
      throw failure(r, -1);
    }
    if (!r.hasMembership()) {
      throw new ChoirException("the replica answered the list of members without a membership (a server"
          + " without membership changes?)");
    }
    return Membership.fromProto(r.getMembership(), r.getOp());
  }

  /**
   * MemberChange: the membership after the change. A refusal of the change itself (INVALID, CAS_FAILED,
   * NOT_FOUND or a status this client does not know, such as a dedicated one of a newer server) is a
   * {@link MemberChangeRefusedException}: not executed. TOO_LARGE and PERMISSION_DENIED keep their own
   * exceptions, which promise the same.
   */
  static Membership memberChange(Response r, String what) {
    return switch (r.getStatus()) {
      case OK -> {
        if (!r.hasMembership()) {
          throw new ChoirException(what + " was executed, but the answer carried no membership: read it with"
              + " members()");
        }
        yield Membership.fromProto(r.getMembership(), r.getOp());
      }
      case TOO_LARGE, PERMISSION_DENIED -> throw failure(r, -1);
      default -> throw new MemberChangeRefusedException("the primary refused " + what + "; it was not executed"
          + (r.getError().isEmpty() ? " (status " + r.getStatus() + ")" : ": " + r.getError()), r.getError());
    };
  }

  /** The exception for a final non-OK status. */
  static ChoirException failure(Response r, int failedIndex) {
    return switch (r.getStatus()) {
      case CAS_FAILED -> new CasFailedException(
          (failedIndex >= 0 ? "batch operation " + failedIndex + ": " : "")
              + "compare-and-set expectation failed, current version " + r.getVersion() + detail(r),
          r.getVersion() != 0 ? r.getValue().toByteArray() : null,
          r.getVersion(),
          failedIndex);
      case TOO_LARGE -> new TooLargeException("the server refused the request as too large" + detail(r));
      case INVALID -> new InvalidRequestException("the server refused the request as invalid" + detail(r));
      case UNAVAILABLE -> new UnavailableException("the replica is unavailable" + detail(r));
      case BUSY -> new BusyException("the replica is busy" + detail(r));
      case NOT_PRIMARY -> new UnavailableException("the replica is not the primary" + detail(r));
      case PERMISSION_DENIED -> new PermissionDeniedException("the server denied the request: it was not executed"
          + detail(r), failedIndex);
      case SESSION_EXPIRED -> new SessionExpiredException("the session of this client expired; the outcome"
          + " is unknown" + detail(r), null);
      default -> new ChoirException("unexpected response status " + r.getStatus() + detail(r));
    };
  }

  /** The exception for a refusal from an endpoint that is asked directly (status requests). */
  static ChoirException refusal(Response r, Endpoint endpoint) {
    ChoirException e = failure(r, -1);
    if (e instanceof PermissionDeniedException) {
      return new PermissionDeniedException(endpoint + ": " + e.getMessage(), -1);
    }
    return e instanceof BusyException
        ? new BusyException(endpoint + ": " + e.getMessage())
        : new UnavailableException(endpoint + ": " + e.getMessage());
  }

  private static String detail(Response r) {
    return r.getError().isEmpty() ? "" : ": " + r.getError();
  }
}
