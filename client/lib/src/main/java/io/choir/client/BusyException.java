package io.choir.client;

/**
 * BusyException means the request was refused for overload and not executed: either the replicas
 * answered BUSY until the request timeout ran out, or this client already had {@code maxInFlight}
 * requests outstanding and no slot freed in time. Back off and retry later, or send less at once.
 */
public final class BusyException extends ChoirException {
  private static final long serialVersionUID = 1L;

  /**
   * BusyException with a message that says which limit was hit.
   *
   * @param message what went wrong
   */
  public BusyException(String message) {
    super(message);
  }
}
