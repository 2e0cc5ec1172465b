package io.choir.client;

/**
 * TlsException means a TLS connection to a replica could not be set up: the replica's certificate is
 * not signed by the trusted CA or does not name the host connected to, the replica refused this
 * client's certificate (none sent, or one from another CA), or one side speaks TLS and the other does
 * not. No request was sent on such a connection, so the request was NOT executed. The call ends at
 * once rather than retrying until its timeout: retrying cannot fix a configuration.
 */
public final class TlsException extends ChoirException {
  private static final long serialVersionUID = 1L;

  /**
   * TlsException with what failed and the TLS engine's error.
   *
   * @param message what failed, naming the replica
   * @param cause the TLS engine's error
   */
  public TlsException(String message, Throwable cause) {
    super(message, cause);
  }
}
