package io.choir.client.recipes;

import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.Watch;
import io.choir.client.WatchEvent;
import io.choir.client.WatchListener;
import io.choir.client.WatchOptions;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * KeyWaiter waits for a change of one key, woken by a watch on it (docs/watch.md): a waiting recipe
 * calls {@link #clear()}, looks at the key (a compare-and-set), and when it must wait calls {@link
 * #await} with the version it found. The first await opens the watch from the revision after that
 * version, so every later change of the key (the holder's delete, a new put) wakes the waiter, even one
 * that came before the watch was registered; the watch then runs until {@link #close()}. An event that
 * arrives between clear and await is not lost (a permit). The wait also ends after maxNanos: the poll
 * is the fallback when the watch cannot run (it ended with an error: then no new one is opened, so a
 * refusal cannot make the waiter spin).
 *
 * <p>One waiting thread per KeyWaiter; the watch's thread only signals.
 */
final class KeyWaiter implements AutoCloseable {
  private final ChoirClient client;
  private final String key;
  private final Semaphore changed = new Semaphore(0);
  private Watch watch;
  private volatile boolean watchFailed;

  KeyWaiter(ChoirClient client, String key) {
    this.client = client;
    this.key = key;
  }

  /** Forgets the changes heard so far: call it before looking at the key. */
  void clear() {
    changed.drainPermits();
  }

  /**
   * Waits until the key changes after version (seen by the last look), or maxNanos pass.
   *
   * @param version the key's version the last look found (0: unknown, then only the poll wakes)
   * @param maxNanos the longest wait (the poll fallback)
   * @return true when woken by a change, false when the time passed
   */
  boolean await(long version, long maxNanos) throws InterruptedException {
    if (watch == null && !watchFailed && version > 0) {
      watch = client.watch(WatchOptions.key(key).fromRevision(version + 1), new WatchListener() {
        @Override
        public void onEvent(WatchEvent event) {
          changed.release();
        }

        @Override
        public void onError(ChoirException error) {
          watchFailed = true; // poll from now on; the next look is at once
          changed.release();
        }
      });
    }
    return changed.tryAcquire(Math.max(1, maxNanos), TimeUnit.NANOSECONDS);
  }

  /** Whether the watch has ended with an error (the waiter then only polls). */
  boolean watchFailed() {
    return watchFailed;
  }

  @Override
  public void close() {
    if (watch != null) {
      watch.close();
    }
  }
}
