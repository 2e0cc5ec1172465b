package io.choir.client;

/**
 * ReplicaStatusResult is the answer of one endpoint to a status request: either its
 * {@link ReplicaInfo} or the error that kept it from answering. Status is asked of every endpoint
 * directly, and a dead replica is exactly what an operator wants to see, so it is reported here
 * rather than thrown.
 *
 * @param endpoint the endpoint asked, as host:port
 * @param info what the replica reported, or null when it did not answer
 * @param error why the replica did not answer, or null when it did
 */
public record ReplicaStatusResult(String endpoint, ReplicaInfo info, ChoirException error) {
  /**
   * Whether the replica answered.
   *
   * @return true when {@link #info()} is set
   */
  public boolean isOk() {
    return info != null;
  }
}
