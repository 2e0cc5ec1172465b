package io.choir.client;

/**
 * ChoirException is the root of every error the Choir client raises, so a caller can catch all of
 * them in one place. It is unchecked because most failures (a lost quorum, an overloaded cluster) are
 * not something the immediate caller can fix; the subclasses say which case it is and whether retrying
 * later makes sense.
 */
public class ChoirException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /**
   * ChoirException with a message that says what went wrong.
   *
   * @param message what went wrong
   */
  public ChoirException(String message) {
    super(message);
  }

  /**
   * ChoirException with a message and the underlying cause (a socket error, an interrupt).
   *
   * @param message what went wrong
   * @param cause the underlying cause, or null
   */
  public ChoirException(String message, Throwable cause) {
    super(message, cause);
  }
}
