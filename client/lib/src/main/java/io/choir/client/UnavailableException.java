package io.choir.client;

/**
 * UnavailableException means no replica could execute the request within the request timeout: every
 * endpoint was unreachable, or answered that it has no quorum, or the client was closed. The request
 * was never executed (it never reached a replica, or every replica that saw it refused it), so retrying
 * later is safe.
 */
public final class UnavailableException extends ChoirException {
  private static final long serialVersionUID = 1L;

  /**
   * UnavailableException with a message that says which endpoints failed and how.
   *
   * @param message what went wrong
   */
  public UnavailableException(String message) {
    super(message);
  }

  /**
   * UnavailableException with a message and the last underlying error (a refused connection).
   *
   * @param message what went wrong
   * @param cause the last underlying error, or null
   */
  public UnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
