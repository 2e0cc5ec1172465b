package io.choir.client;

/**
 * SessionExpiredException means this client's session on the replicas expired (or was lost) while the
 * request was in flight, after an earlier attempt of it may already have reached a replica: it may or
 * may not have executed, and the outcome is unknown. (The replicas keep the replies that make retries
 * exactly-once inside the session; with the session gone, a retry cannot be told apart from a new
 * request, so the client does not resend it.) Read the key back to find out.
 *
 * <p>It is a {@link ChoirTimeoutException}, the client's "outcome unknown" exception, so code that
 * treats a timeout as "unknown" treats this the same way. A write that expired before any attempt of
 * it could have executed does not raise this: the client registers a new session and resends it by
 * itself. Sessions expire after the replicas' session_timeout_ms without a write from this client.
 */
public final class SessionExpiredException extends ChoirTimeoutException {
  private static final long serialVersionUID = 1L;

  /**
   * SessionExpiredException with a message that says which request it was.
   *
   * @param message what went wrong, including that the outcome is unknown
   * @param cause the refusal or error that preceded it, or null
   */
  public SessionExpiredException(String message, Throwable cause) {
    super(message, cause);
  }
}
