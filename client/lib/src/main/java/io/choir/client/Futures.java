package io.choir.client;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Futures turns async outcomes into what the blocking API throws: the typed ChoirException itself, not
 * a CompletionException or ExecutionException around it, so callers can catch it by type.
 */
final class Futures {
  /**
   * Extra wait beyond the request timeout before a blocking call gives up on its future: the
   * dispatcher's own deadline always fires first, this only guards against a lost completion.
   */
  static final long SAFETY_MARGIN_MS = 5_000;

  private Futures() {}

  static Throwable unwrap(Throwable t) {
    while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  static ChoirException toChoirException(Throwable t) {
    Throwable cause = unwrap(t);
    return cause instanceof ChoirException ce ? ce : new ChoirException(cause.toString(), cause);
  }

  /** Waits for f and returns its value, or throws its failure unwrapped. */
  static <T> T await(CompletableFuture<T> f, long requestTimeoutMs) {
    try {
      return f.get(requestTimeoutMs + SAFETY_MARGIN_MS, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ChoirException("interrupted while waiting for a Choir request; the outcome is unknown", e);
    } catch (TimeoutException e) {
      throw new ChoirTimeoutException("no completion within " + (requestTimeoutMs + SAFETY_MARGIN_MS)
          + " ms; the outcome is unknown: a write may or may not have happened", e);
    } catch (ExecutionException e) {
      Throwable cause = unwrap(e);
      if (cause instanceof RuntimeException re) {
        throw re;
      }
      if (cause instanceof Error err) {
        throw err;
      }
      throw new ChoirException(cause.toString(), cause);
    }
  }
}
