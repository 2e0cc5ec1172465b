package io.choir.client;

/**
 * ChoirTimeoutException means the outcome of the request is unknown: the call ended (its request
 * timeout ran out, or the client was closed while it was in flight) after the request may have reached
 * a replica, so a write may or may not have happened. Read the key back to find out. (Retries inside
 * one call reuse the request id and are exactly-once; a new call after this exception is a new request
 * and is not deduplicated against this one.)
 *
 * <p>Its one subclass, {@link SessionExpiredException}, is the same promise for a request whose session
 * expired in flight. Every other failure of the client is certain: UnavailableException and
 * BusyException mean "not executed".
 */
public sealed class ChoirTimeoutException extends ChoirException permits SessionExpiredException {
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
