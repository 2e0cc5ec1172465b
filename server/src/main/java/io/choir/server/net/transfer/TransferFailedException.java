package io.choir.server.net.transfer;

/**
 * TransferFailedException says why a state transfer failed and whether the receiver's storage was
 * touched.
 */
public final class TransferFailedException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final boolean installStarted;

  public TransferFailedException(String message, Throwable cause, boolean installStarted) {
    super(message, cause);
    this.installStarted = installStarted;
  }

  /**
   * True when beginInstall may have run: storage may hold the "installing" marker and a partial
   * state, so the replica must not apply anything until a later fetch succeeds (or a restart wipes).
   * A transfer refused by the end-to-end digest check is always such a failure: the marker is kept.
   */
  public boolean installStarted() {
    return installStarted;
  }
}
