package io.choir.client;

/**
 * InvalidRequestException means the server refused the request as malformed (for example an empty
 * batch or a limit it does not accept). The request was not executed and retrying it unchanged can
 * never succeed; the message carries the server's explanation.
 */
public final class InvalidRequestException extends ChoirException {
  private static final long serialVersionUID = 1L;

  /**
   * InvalidRequestException with the server's explanation.
   *
   * @param message what went wrong
   */
  public InvalidRequestException(String message) {
    super(message);
  }
}
