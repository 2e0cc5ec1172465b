package io.choir.client;

/**
 * LeaseNotFoundException means the lease a request named does not exist (it was never granted, was
 * revoked, or expired): a keep-alive or revoke of it, or a put attached to it, was refused and not
 * executed. A lease once gone never comes back: grant a new one.
 */
public final class LeaseNotFoundException extends ChoirException {
  private static final long serialVersionUID = 1L;

  private final long leaseId;

  /**
   * LeaseNotFoundException for lease leaseId.
   *
   * @param message what the server said
   * @param leaseId the lease that was not found
   */
  public LeaseNotFoundException(String message, long leaseId) {
    super(message);
    this.leaseId = leaseId;
  }

  /**
   * The lease that was not found.
   *
   * @return its id
   */
  public long leaseId() {
    return leaseId;
  }
}
