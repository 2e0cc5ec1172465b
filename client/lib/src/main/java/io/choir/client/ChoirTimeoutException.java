package io.choir.client;

/**
 * ChoirTimeoutException means the request timeout ran out after the request may have reached a
 * replica, so the outcome is unknown: a write may or may not have happened. Read the key back to find
 * out. (Retries inside one call reuse the request id and are exactly-once; a new call after this
 * exception is a new request and is not deduplicated against this one.)
 */
public final class ChoirTimeoutException extends ChoirException {
  private static final long serialVersionUID = 1L;

  /**
   * ChoirTimeoutException with a message that says how long the client waited.
   *
   * @param message what went wrong, including that the outcome is unknown
   */
  public ChoirTimeoutException(String message) {
    super(message);
  }

  /**
   * ChoirTimeoutException with a message and the last underlying error (a lost connection).
   *
   * @param message what went wrong, including that the outcome is unknown
   * @param cause the last underlying error, or null
   */
  public ChoirTimeoutException(String message, Throwable cause) {
    super(message, cause);
  }
}
