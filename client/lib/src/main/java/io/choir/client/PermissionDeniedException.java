package io.choir.client;

/**
 * PermissionDeniedException means the replica refused the request because this client's identity
 * (its TLS client certificate, its token, or none) lacks the permission it needs: read, or read-write,
 * on every key it touches, as the replicas' access file grants them; or the token was not recognised;
 * or the replica's client port requires TLS and this client connected without it. The replica checks
 * this before the request reaches the protocol core, so the request was NOT executed. Retrying it
 * unchanged cannot succeed: the identity or the access file must change.
 */
public final class PermissionDeniedException extends ChoirException {
  private static final long serialVersionUID = 1L;
  private final int failedIndex;

  /**
   * PermissionDeniedException with the replica's explanation.
   *
   * @param message what was denied and why
   * @param failedIndex the batch operation that was denied, or -1 when not a batch
   */
  public PermissionDeniedException(String message, int failedIndex) {
    super(message);
    this.failedIndex = failedIndex;
  }

  /**
   * The index of the first batch operation the identity may not perform (nothing of the batch was
   * executed), or -1 when the request was not a batch.
   *
   * @return the index, or -1
   */
  public int failedIndex() {
    return failedIndex;
  }
}
