package io.choir.client;

/**
 * TooLargeException means a key, a value, a batch or the whole request frame exceeds a configured
 * limit (the client's {@code maxFrameBytes} or the server's max_key_bytes, max_value_bytes,
 * max_frame_bytes). The request was not executed and retrying it unchanged can never succeed.
 */
public final class TooLargeException extends ChoirException {
  private static final long serialVersionUID = 1L;

  /**
   * TooLargeException with a message that says which limit and by how much.
   *
   * @param message what went wrong
   */
  public TooLargeException(String message) {
    super(message);
  }
}
