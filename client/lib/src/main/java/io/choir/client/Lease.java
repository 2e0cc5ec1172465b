package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Lease is a lease this client keeps alive (docs/lease.md), from {@link AsyncLeaseClient#grant}: a
 * keep-alive every third of its TTL, retried (every tenth of the TTL) while one fails, until {@link
 * #close()}. When the lease is lost, {@link #lost()} completes with the reason: the cluster no longer
 * knows it ({@link LeaseNotFoundException}: it expired or was revoked, and its keys are gone), or no
 * keep-alive was acknowledged within its TTL (a ChoirException: it may have expired; treat it as lost).
 * Keep-alives then stop; grant a new lease to go on.
 *
 * <p>Timing: the TTL counts from the last keep-alive the cluster applied; this client counts it, more
 * cautiously, from when it sent the last acknowledged one. Thread safe.
 */
public final class Lease implements AutoCloseable {
  private final AsyncLeaseClient client;
  private final ClientScheduler scheduler;
  private final long id;
  private final long ttlMs;
  private final CompletableFuture<ChoirException> lost = new CompletableFuture<>();
  private volatile boolean closed;
  /** This client's cautious deadline: when the last acknowledged keep-alive was sent, plus the TTL. */
  private volatile long aliveUntilNs;
  private ClientScheduler.Timer timer;

  private Lease(AsyncLeaseClient client, ClientScheduler scheduler, long id, long ttlMs, long aliveUntilNs) {
    this.client = client;
    this.scheduler = scheduler;
    this.id = id;
    this.ttlMs = ttlMs;
    this.aliveUntilNs = aliveUntilNs;
  }

  static Lease start(AsyncLeaseClient client, ClientScheduler scheduler, LeaseStatus granted) {
    long now = scheduler.nanoTime();
    Lease lease = new Lease(client, scheduler, granted.id(), granted.ttlMs(),
        now + TimeUnit.MILLISECONDS.toNanos(granted.remainingMs()));
    lease.scheduleKeepAlive(granted.ttlMs() / 3);
    return lease;
  }

  /**
   * The lease's id, which writes attach keys to.
   *
   * @return the id
   */
  public long id() {
    return id;
  }

  /**
   * The lease's time to live, as the cluster granted it.
   *
   * @return the TTL
   */
  public Duration ttl() {
    return Duration.ofMillis(ttlMs);
  }

  /**
   * Completes, with the reason, when the lease is lost (see the class comment); never after {@link
   * #close()} or {@link #revoke()}.
   *
   * @return the future of the loss
   */
  public CompletableFuture<ChoirException> lost() {
    return lost;
  }

  /**
   * True while this client keeps the lease alive and has not seen it lost.
   *
   * @return whether the lease is held
   */
  public boolean isHeld() {
    return !closed && !lost.isDone() && scheduler.nanoTime() < aliveUntilNs;
  }

  /**
   * Stops keeping the lease alive and revokes it: its keys are deleted.
   *
   * @return the op number of the revocation
   */
  public CompletableFuture<Long> revoke() {
    stop();
    return client.revoke(id);
  }

  /**
   * Stops keeping the lease alive and revokes it without waiting (a failed revocation leaves the lease
   * to expire after its TTL).
   */
  @Override
  public void close() {
    if (!closed) {
      revoke().exceptionally(e -> null);
    }
  }

  private synchronized void stop() {
    closed = true;
    if (timer != null) {
      timer.cancel();
    }
  }

  private synchronized void scheduleKeepAlive(long delayMs) {
    if (closed || lost.isDone()) {
      return;
    }
    try {
      timer = scheduler.schedule(this::keepAlive, TimeUnit.MILLISECONDS.toNanos(Math.max(1, delayMs)));
    } catch (RejectedExecutionException e) {
      lose(new ChoirException("lease " + id + ": the client was closed, so the lease is no longer kept alive", e));
    }
  }

  private void keepAlive() {
    if (closed || lost.isDone()) {
      return;
    }
    long sentNs = scheduler.nanoTime();
    client.keepAlive(id).whenComplete((status, error) -> {
      if (closed) {
        return;
      }
      if (error == null) {
        aliveUntilNs = sentNs + TimeUnit.MILLISECONDS.toNanos(ttlMs);
        scheduleKeepAlive(ttlMs / 3);
      } else if (error instanceof LeaseNotFoundException notFound) {
        lose(notFound);
      } else if (scheduler.nanoTime() >= aliveUntilNs) {
        lose(new ChoirException("lease " + id + ": no keep-alive was acknowledged within its TTL of " + ttlMs
            + " ms; it may have expired: " + error.getMessage(), error));
      } else {
        scheduleKeepAlive(Math.min(ttlMs / 10, TimeUnit.NANOSECONDS.toMillis(aliveUntilNs - scheduler.nanoTime())));
      }
    });
  }

  private void lose(ChoirException why) {
    stop();
    lost.complete(why);
  }

  @Override
  public String toString() {
    return "lease " + id + " (TTL " + ttlMs + " ms" + (closed ? ", closed" : lost.isDone() ? ", lost" : "") + ")";
  }
}
