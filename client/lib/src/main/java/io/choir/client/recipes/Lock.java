package io.choir.client.recipes;

import io.choir.client.CasFailedException;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.Lease;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Lock is a mutual-exclusion lock on one key (docs/lease.md "Recipes"), built on a lease and a
 * compare-and-set: the holder creates the key, attached to its lease, only when the key is absent. The
 * key lives as long as the lease: when the holder dies or is cut off, the lease expires and the key is
 * deleted with it, so the next contender gets the lock. A waiting {@link #acquire} watches the key from
 * the revision after the holder's write, so the holder's release (the key's delete) wakes it at once;
 * it also looks again every {@code poll}, a fallback for a watch that cannot run.
 *
 * <p>Fencing: holding a lock proves nothing to a resource on its own, because a holder that pauses
 * longer than its TTL (a GC, a stopped VM) loses the lease without noticing at once, and another
 * process gets the lock. {@link Held#fencingToken()} is the version of the lock key (the op number of
 * the write that created it): every acquisition gets a higher token than every earlier one. The
 * guarded resource records the highest token it has seen and refuses a request with a lower one, so a
 * paused former holder cannot corrupt what the lock guards (Kleppmann, "How to do distributed locking").
 *
 * <p>Thread safe; one Lock may be acquired by several threads, each getting its own {@link Held} in
 * turn.
 */
public final class Lock {
  private final ChoirClient client;
  private final String key;
  private final String owner;
  private final Duration ttl;
  private final Duration poll;

  /**
   * A lock on key.
   *
   * @param client the client whose session and connections the lock uses
   * @param key the lock's key
   * @param owner the value the holder writes (who holds it: a host name, a process id)
   * @param ttl how long the lock outlives a holder that stops keeping its lease alive
   * @param poll how often a waiting acquire looks again without being woken by its watch (a fallback:
   *     a release wakes it at once, so this may be long)
   */
  public Lock(ChoirClient client, String key, String owner, Duration ttl, Duration poll) {
    if (poll.isNegative() || poll.isZero()) {
      throw new IllegalArgumentException("poll must be positive: " + poll);
    }
    this.client = client;
    this.key = key;
    this.owner = owner;
    this.ttl = ttl;
    this.poll = poll;
  }

  /**
   * One attempt: the lock if it is free now.
   *
   * @return the held lock, or empty when another holds it
   */
  public Optional<Held> tryAcquire() {
    Lease lease = client.leases().grant(ttl);
    try {
      Optional<Held> held = attempt(lease);
      if (held.isEmpty()) {
        lease.close();
      }
      return held;
    } catch (ChoirException e) {
      lease.close();
      throw e;
    }
  }

  /**
   * Waits until the lock is free and takes it, or until timeout passes.
   *
   * @param timeout the longest wait
   * @return the held lock
   * @throws ChoirTimeoutException when the lock was not free within timeout
   * @throws InterruptedException when the waiting thread is interrupted
   */
  public Held acquire(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    Lease lease = client.leases().grant(ttl);
    try (KeyWaiter waiter = new KeyWaiter(client, key)) {
      while (true) {
        waiter.clear(); // a change from now on wakes the wait below
        long version;
        try {
          return new Held(key, lease, client.leases().putIfAbsent(key, owner, lease.id()));
        } catch (CasFailedException e) {
          version = e.currentVersion(); // the holder's key: a change after it is the release
        }
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new ChoirTimeoutException("lock " + key + " was not free within " + timeout.toMillis() + " ms");
        }
        waiter.await(version, Math.min(poll.toNanos(), left));
      }
    } catch (ChoirException | InterruptedException e) {
      lease.close();
      throw e;
    }
  }

  private Optional<Held> attempt(Lease lease) {
    try {
      long version = client.leases().putIfAbsent(key, owner, lease.id());
      return Optional.of(new Held(key, lease, version));
    } catch (CasFailedException e) {
      return Optional.empty();
    }
  }

  /**
   * The name of the current holder (the value of the lock key), or empty when the lock is free.
   *
   * @return the holder
   */
  public Optional<String> holder() {
    return client.get(key).map(v -> v.valueAsString());
  }

  /** Held is one holding of the lock; close it to release the lock (the lease is revoked, the key deleted). */
  public static final class Held implements AutoCloseable {
    private final String key;
    private final Lease lease;
    private final long fencingToken;

    Held(String key, Lease lease, long fencingToken) {
      this.key = key;
      this.lease = lease;
      this.fencingToken = fencingToken;
    }

    /**
     * The fencing token: the lock key's version, higher than every earlier holding's. Send it with
     * every request to the guarded resource, which refuses tokens below the highest it has seen.
     *
     * @return the token
     */
    public long fencingToken() {
      return fencingToken;
    }

    /**
     * The lease the lock key is attached to.
     *
     * @return the lease
     */
    public Lease lease() {
      return lease;
    }

    /**
     * Completes when the lock is lost without being released (the lease expired or could not be kept
     * alive): stop using the resource.
     *
     * @return the future of the loss, with the reason
     */
    public CompletableFuture<ChoirException> lost() {
      return lease.lost();
    }

    /**
     * True while this client keeps the lease alive (a lost lease, or one not acknowledged within its TTL,
     * is no longer held).
     *
     * @return whether the lock is still held, as far as this client knows
     */
    public boolean isHeld() {
      return lease.isHeld();
    }

    /** Releases the lock: revokes the lease, which deletes the lock key. */
    @Override
    public void close() {
      lease.close();
    }

    @Override
    public String toString() {
      return "lock " + key + " held with token " + fencingToken + " (" + lease + ")";
    }
  }
}
