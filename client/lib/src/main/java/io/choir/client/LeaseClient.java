package io.choir.client;

import java.time.Duration;
import java.util.List;

/**
 * LeaseClient is the blocking twin of {@link AsyncLeaseClient}, from {@link ChoirClient#leases()}: each
 * call waits for its answer (at most the request timeout) and throws the typed exception of a failure.
 */
public final class LeaseClient {
  private final AsyncLeaseClient async;
  private final BlockingWaits waits;

  LeaseClient(AsyncLeaseClient async, BlockingWaits waits) {
    this.async = async;
    this.waits = waits;
  }

  /**
   * Grants a lease of ttl, kept alive automatically (see {@link AsyncLeaseClient#grant}).
   *
   * @param ttl the time to live, 1 ms to one day (raised to the cluster's minimum)
   * @return the lease; close it to revoke it
   */
  public Lease grant(Duration ttl) {
    return waits.await(async.grant(ttl));
  }

  /**
   * Grants a lease that this client does not keep alive.
   *
   * @param ttl the time to live, 1 ms to one day (raised to the cluster's minimum)
   * @return the new lease
   */
  public LeaseStatus grantOnce(Duration ttl) {
    return waits.await(async.grantOnce(ttl));
  }

  /**
   * Keeps lease id alive once.
   *
   * @param id the lease
   * @return the lease after the keep-alive
   * @throws LeaseNotFoundException when the lease does not exist (not executed)
   */
  public LeaseStatus keepAlive(long id) {
    return waits.await(async.keepAlive(id));
  }

  /**
   * Revokes lease id and deletes its keys.
   *
   * @param id the lease
   * @return the op number of the revocation
   * @throws LeaseNotFoundException when the lease does not exist (not executed)
   */
  public long revoke(long id) {
    return waits.await(async.revoke(id));
  }

  /**
   * Lists the live leases in id order (see {@link AsyncLeaseClient#list}).
   *
   * @param startId the lowest id to list
   * @param limit the most to return; 0 for the server's maximum
   * @return the leases
   */
  public List<LeaseStatus> list(long startId, int limit) {
    return waits.await(async.list(startId, limit));
  }

  /**
   * Writes value to key, attached to lease.
   *
   * @return the op number of the write
   * @throws LeaseNotFoundException when the lease does not exist (not executed)
   */
  public long put(String key, String value, long lease) {
    return waits.await(async.put(key, value, lease));
  }

  /**
   * Creates key attached to lease only when it is absent.
   *
   * @return the op number of the write
   * @throws CasFailedException when the key exists (not executed)
   * @throws LeaseNotFoundException when the lease does not exist (not executed)
   */
  public long putIfAbsent(String key, String value, long lease) {
    return waits.await(async.putIfAbsent(key, value, lease));
  }

  /**
   * Writes key attached to lease only when its version is expectedVersion.
   *
   * @return the op number of the write
   * @throws CasFailedException when the version differs (not executed)
   * @throws LeaseNotFoundException when the lease does not exist (not executed)
   */
  public long compareAndSetVersion(String key, long expectedVersion, String value, long lease) {
    return waits.await(async.compareAndSetVersion(key, expectedVersion, value, lease));
  }
}
