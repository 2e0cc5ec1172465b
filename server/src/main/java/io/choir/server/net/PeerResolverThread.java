package io.choir.server.net;

import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerResolverThread runs a {@link PeerDirectory}'s resolutions on a thread of its own (a lookup may
 * block; the transport's event loops must not): every silence interval the peers heard nothing from
 * ({@link PeerDirectory#resolveSilent}), and at once a peer the transport suspects ({@link #suspect}:
 * a failed connect, a send to a peer without an address). The directory rate-limits both.
 */
final class PeerResolverThread implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PeerDirectory.class);

  private final PeerDirectory directory;
  private final ScheduledExecutorService thread = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "choir-peer-resolver");
    t.setDaemon(true);
    return t;
  });

  /** Starts checking directory's silent peers every silenceNs. */
  PeerResolverThread(PeerDirectory directory, long silenceNs) {
    this.directory = directory;
    long ms = Math.max(1, TimeUnit.NANOSECONDS.toMillis(silenceNs));
    thread.scheduleWithFixedDelay(this::resolveSilent, ms, ms, TimeUnit.MILLISECONDS);
  }

  /** Resolves peer's name again soon (rate-limited by the directory; any thread). */
  void suspect(int peer) {
    try {
      thread.execute(() -> directory.resolve(peer));
    } catch (RejectedExecutionException closed) {
      // shutting down
    }
  }

  private void resolveSilent() {
    try {
      directory.resolveSilent();
    } catch (RuntimeException e) {
      log.atWarn().setCause(e).log("re-resolving peers failed");
    }
  }

  @Override
  public void close() {
    thread.shutdownNow();
  }
}
