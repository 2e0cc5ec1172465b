package io.choir.client.recipes;

import io.choir.client.ChoirClient;
import io.choir.client.ChoirTimeoutException;
import java.time.Duration;
import java.util.Optional;

/**
 * LeaderElection elects one leader among candidates that campaign on the same key (docs/lease.md
 * "Recipes"): a {@link Lock} whose value is the candidate's name, so that everyone can read who leads.
 * The leader stays leader while its lease is kept alive; when it dies or is cut off the lease expires,
 * the key goes, and a waiting candidate, woken by its watch on the key, takes over. {@link Leadership#term()} is the fencing token of
 * the leadership: higher for every later leader, so the resources the leader drives can refuse a
 * deposed one.
 */
public final class LeaderElection {
  private final ChoirClient client;
  private final String key;
  private final Lock lock;

  /**
   * An election on key.
   *
   * @param client the client the candidate uses
   * @param key the election's key
   * @param candidate this candidate's name, what {@link #leader()} shows while it leads
   * @param ttl how long a leader that stops keeping its lease alive stays leader
   * @param poll how often a waiting candidate looks again without being woken by its watch on the key
   *     (a fallback: a resignation or the leader's expiry wakes it at once)
   */
  public LeaderElection(ChoirClient client, String key, String candidate, Duration ttl, Duration poll) {
    this.client = client;
    this.key = key;
    this.lock = new Lock(client, key, candidate, ttl, poll);
  }

  /**
   * Waits to become the leader, at most timeout.
   *
   * @param timeout the longest wait
   * @return the leadership; close it to resign
   * @throws ChoirTimeoutException when another candidate led for all of timeout
   * @throws InterruptedException when the waiting thread is interrupted
   */
  public Leadership campaign(Duration timeout) throws InterruptedException {
    return new Leadership(lock.acquire(timeout));
  }

  /**
   * The current leader's name, or empty when there is none (a linearizable read).
   *
   * @return the leader
   */
  public Optional<String> leader() {
    return client.get(key).map(v -> v.valueAsString());
  }

  /** Leadership is one term of this candidate as leader; close it to resign. */
  public static final class Leadership implements AutoCloseable {
    private final Lock.Held held;

    Leadership(Lock.Held held) {
      this.held = held;
    }

    /**
     * The term: the fencing token of this leadership (see {@link Lock.Held#fencingToken()}).
     *
     * @return the term
     */
    public long term() {
      return held.fencingToken();
    }

    /**
     * True while this candidate keeps its lease alive.
     *
     * @return whether it still leads, as far as it knows
     */
    public boolean isLeader() {
      return held.isHeld();
    }

    /**
     * The lock under the leadership (its lease and lost future).
     *
     * @return the held lock
     */
    public Lock.Held lock() {
      return held;
    }

    /** Resigns: the lease is revoked and the key deleted, so another candidate can lead. */
    @Override
    public void close() {
      held.close();
    }
  }
}
