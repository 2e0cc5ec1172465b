package io.choir.client;

/**
 * ConnectRefusal is how a connect that failed for good reaches the {@link Failover}: the TLS handshake
 * failed or the replica refused the token (the connection carried no request). The call it was for ends
 * at once with {@link #failure()} instead of retrying until its timeout, since retrying cannot fix a
 * wrong CA, certificate or token.
 */
final class ConnectRefusal extends ChoirException {
  private static final long serialVersionUID = 1L;
  private final ChoirException failure;

  ConnectRefusal(ChoirException failure) {
    super(failure.getMessage(), failure);
    this.failure = failure;
  }

  /** What the call ends with: a {@link TlsException} or a {@link PermissionDeniedException}. */
  ChoirException failure() {
    return failure;
  }
}
