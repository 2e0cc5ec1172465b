package io.choir.client;

import io.choir.proto.CompareAndSet;
import io.choir.proto.LeaseGrant;
import io.choir.proto.LeaseKeepAlive;
import io.choir.proto.LeaseList;
import io.choir.proto.LeaseRevoke;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * AsyncLeaseClient grants, keeps alive, revokes and lists leases, and writes keys attached to a lease
 * (docs/lease.md), from {@link AsyncChoirClient#leases()}: on the client's connections, ids and limits.
 * A key attached to a lease is deleted when the lease expires or is revoked, all its keys in one log
 * entry.
 *
 * <p>Grants, keep-alives, revokes and attached writes are writes: they run in the client's session and
 * are retried with the same request id, so each executes at most once. A request naming a lease that
 * does not exist (never granted, revoked or expired) completes with {@link LeaseNotFoundException}: not
 * executed. The other failures are those of every call (see {@link AsyncChoirClient}).
 */
public final class AsyncLeaseClient {
  /** The longest TTL a lease may have: one day. */
  public static final Duration MAX_TTL = Duration.ofDays(1);

  private final Dispatcher dispatcher;

  AsyncLeaseClient(Dispatcher dispatcher) {
    this.dispatcher = dispatcher;
  }

  /**
   * Grants a lease of ttl and keeps it alive automatically (every third of its TTL) until {@link
   * Lease#close()} or {@link Lease#revoke()}; {@link Lease#lost()} tells when it could not.
   *
   * @param ttl the time to live, 1 ms to {@link #MAX_TTL}; the cluster raises a shorter one to its minimum
   *     (twice its election timeout)
   * @return the lease
   * @throws IllegalArgumentException when ttl is out of range
   */
  public CompletableFuture<Lease> grant(Duration ttl) {
    return grantOnce(ttl).thenApply(status -> Lease.start(this, dispatcher.scheduler(), status));
  }

  /**
   * Grants a lease of ttl that this client does not keep alive (see {@link #keepAlive(long)}).
   *
   * @param ttl the time to live, 1 ms to {@link #MAX_TTL}
   * @return the new lease
   * @throws IllegalArgumentException when ttl is out of range
   */
  public CompletableFuture<LeaseStatus> grantOnce(Duration ttl) {
    if (ttl == null || ttl.toMillis() < 1 || ttl.compareTo(MAX_TTL) > 0) {
      throw new IllegalArgumentException("a lease TTL must be 1 ms to 1 day: " + ttl);
    }
    Request request = Request.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(ttl.toMillis())).build();
    return AsyncChoirClient.map(dispatcher.submit(request, false, null), r -> lease(r, 0));
  }

  /**
   * Keeps lease id alive once: its deadline becomes now plus its TTL.
   *
   * @param id the lease
   * @return the lease after the keep-alive
   */
  public CompletableFuture<LeaseStatus> keepAlive(long id) {
    Request request = Request.newBuilder().setLeaseKeepAlive(LeaseKeepAlive.newBuilder().setId(id(id))).build();
    return AsyncChoirClient.map(dispatcher.submit(request, false, null), r -> lease(r, id));
  }

  /**
   * Revokes lease id: it and every key attached to it are deleted, in one log entry.
   *
   * @param id the lease
   * @return the op number of the revocation
   */
  public CompletableFuture<Long> revoke(long id) {
    Request request = Request.newBuilder().setLeaseRevoke(LeaseRevoke.newBuilder().setId(id(id))).build();
    return AsyncChoirClient.map(dispatcher.submit(request, false, null), r -> write(r, id));
  }

  /**
   * Lists the live leases in id order, from the primary's applied state: up to limit (0: the server's
   * maximum) with ids at or above startId.
   *
   * @param startId the lowest id to list (0 or 1: from the first)
   * @param limit the most leases to return; 0 for the server's maximum
   * @return the leases
   */
  public CompletableFuture<List<LeaseStatus>> list(long startId, int limit) {
    Request request = Request.newBuilder()
        .setLeaseList(LeaseList.newBuilder().setStartId(startId).setLimit(limit)).build();
    return AsyncChoirClient.map(dispatcher.submit(request, false, null), r -> {
      if (r.getStatus() != Status.OK) {
        throw Responses.failure(r, -1);
      }
      List<LeaseStatus> out = new ArrayList<>(r.getLeasesCount());
      r.getLeasesList().forEach(info -> out.add(LeaseStatus.fromProto(info)));
      return List.copyOf(out);
    });
  }

  /**
   * Writes value to key, attached to lease (the key is deleted when the lease ends; a key has one
   * lease at most, and a put without one detaches it).
   *
   * @return the op number of the write
   */
  public CompletableFuture<Long> put(String key, String value, long lease) {
    Request request = Request.newBuilder().setPut(Put.newBuilder().setKey(Requests.key(Requests.utf8(key, "key")))
        .setValue(Requests.value(Requests.utf8(value, "value"), "value")).setLease(id(lease))).build();
    return AsyncChoirClient.map(dispatcher.submit(request, false, null), r -> write(r, lease));
  }

  /**
   * Creates key with value, attached to lease, only when the key is absent; otherwise completes with
   * {@link CasFailedException} carrying the current value and version (the base of a lock).
   *
   * @return the op number of the write: the key's version
   */
  public CompletableFuture<Long> putIfAbsent(String key, String value, long lease) {
    return cas(CompareAndSet.newBuilder().setKey(Requests.key(Requests.utf8(key, "key"))).setExpectAbsent(true)
        .setNewValue(Requests.value(Requests.utf8(value, "value"), "value")).setLease(id(lease)).build(), lease);
  }

  /**
   * Writes value to key, attached to lease, only when the key's version is expectedVersion (0: absent).
   *
   * @return the op number of the write
   */
  public CompletableFuture<Long> compareAndSetVersion(String key, long expectedVersion, String value, long lease) {
    return cas(CompareAndSet.newBuilder().setKey(Requests.key(Requests.utf8(key, "key")))
        .setExpectedVersion(expectedVersion).setNewValue(Requests.value(Requests.utf8(value, "value"), "value"))
        .setLease(id(lease)).build(), lease);
  }

  private CompletableFuture<Long> cas(CompareAndSet cas, long lease) {
    return AsyncChoirClient.map(dispatcher.submit(Requests.cas(cas), false, null), r -> write(r, lease));
  }

  private static long id(long id) {
    if (id == 0) {
      throw new IllegalArgumentException("a lease id is never 0");
    }
    return id;
  }

  private static LeaseStatus lease(Response r, long id) {
    if (r.getStatus() == Status.OK && r.hasLease()) {
      return LeaseStatus.fromProto(r.getLease());
    }
    throw failure(r, id);
  }

  private static long write(Response r, long id) {
    if (r.getStatus() == Status.OK) {
      return r.getVersion();
    }
    throw failure(r, id);
  }

  private static ChoirException failure(Response r, long id) {
    if (r.getStatus() == Status.NOT_FOUND) {
      return new LeaseNotFoundException("lease " + id + " not found: "
          + (r.getError().isEmpty() ? "never granted, revoked or expired" : r.getError()), id);
    }
    return Responses.failure(r, -1);
  }
}
