package io.choir.client;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * BlockingWaits is how {@link ChoirClient}'s blocking methods wait for the futures of the async client
 * they wrap: never on one of the client's I/O threads (the thread that would have to complete the very
 * future waited for), and never beyond the request timeout plus {@link Futures#SAFETY_MARGIN_MS}; and
 * how close() waits for the session's end and for the I/O threads to stop.
 */
final class BlockingWaits {
  private final NettyIo io;
  private final long requestTimeoutMs;

  BlockingWaits(NettyIo io, long requestTimeoutMs) {
    this.io = io;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  /** f's value, or its failure unwrapped (a typed ChoirException); IllegalStateException on an I/O thread. */
  <T> T await(CompletableFuture<T> f) {
    return await(f, requestTimeoutMs);
  }

  /** Like {@link #await(CompletableFuture)}, for a future that may take up to timeoutMs (several requests). */
  <T> T await(CompletableFuture<T> f, long timeoutMs) {
    if (!f.isDone() && io.inAnyEventLoop()) {
      // The answer would be read by this very thread: waiting here would always end in a timeout.
      throw new IllegalStateException("a blocking ChoirClient call was made on a Choir I/O thread (inside a"
          + " callback of an async call); use async() there instead");
    }
    return Futures.await(f, timeoutMs);
  }

  /**
   * Waits for done (the dispatcher's close: pending calls failed, the session ended) and then for the
   * I/O threads; returns at once when called on one of them.
   */
  void awaitClosed(CompletableFuture<Void> done) {
    if (io.inAnyEventLoop()) {
      return; // called from a callback: waiting here would wait for this very thread
    }
    try {
      done.get(Dispatcher.CLOSE_SESSION_BUDGET_MS + Futures.SAFETY_MARGIN_MS, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      // closeAsync never fails; a lost completion must not keep the caller from closing
      io.close();
    }
    io.awaitTermination(2_000);
  }
}
