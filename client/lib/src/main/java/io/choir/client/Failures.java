package io.choir.client;

import io.choir.proto.Response;
import io.choir.proto.Status;

/**
 * Failures builds the exceptions a call ends in, and with them the client's promise about the request
 * (the one rule: a call that may have executed never ends in an exception that says "not executed").
 * A call may have executed when an attempt was written and then lost (its connection closed, its
 * attempt timed out, the client closed) or refused with outcome_unknown: {@code outcomeUnknown}, or
 * {@code delivered} for the attempt under way.
 */
final class Failures {
  private Failures() {}

  /** The request timeout of a started call ran out. Caller holds the call's lock. */
  static ChoirException deadline(Call call) {
    String what = call.describe();
    long timeoutMs = call.budgetMs;
    if (call.outcomeUnknown || call.delivered) {
      return new ChoirTimeoutException(what + " got no answer within " + timeoutMs
          + " ms; the outcome is unknown" + (call.isWrite() ? ": the write may or may not have happened" : ""),
          call.lastError);
    }
    if (call.lastRefusal == Status.BUSY) {
      return new BusyException(what + " was refused as busy until the request timeout of " + timeoutMs
          + " ms ran out; it was not executed (" + call.lastError.getMessage() + ")");
    }
    return new UnavailableException(what + " could not be delivered to any replica within "
        + timeoutMs + " ms; it was not executed"
        + (call.lastError == null ? "" : " (last error: " + call.lastError.getMessage() + ")"),
        call.lastError);
  }

  /**
   * A call ended because a replica refused this client for good (TLS failed, the token or a plaintext
   * connection refused): this attempt did not execute, so notExecuted, unless an earlier attempt to
   * another replica was lost after it was written (it may have executed there): then the outcome is
   * unknown, with the refusal as the cause.
   */
  static ChoirException refusedForGood(Call call, ChoirException notExecuted) {
    boolean unknown;
    synchronized (call) {
      unknown = call.outcomeUnknown;
    }
    if (!unknown) {
      return notExecuted;
    }
    return new ChoirTimeoutException(call.describe() + " was refused by the replica it retried on ("
        + notExecuted.getMessage() + "), but an earlier attempt may have executed: the outcome is unknown"
        + (call.isWrite() ? ": the write may or may not have happened" : ""), notExecuted);
  }

  /**
   * A membership change refused after an earlier attempt of it may have executed: the outcome is
   * unknown, not "not executed". The primary checks a change against the current membership before it
   * looks for the change's own entry, so a retry of a change that is in flight or done is refused
   * ("change in progress", "already a member", another epoch) rather than answered with its saved
   * reply. Null for any other answer.
   */
  static ChoirException refusedAfterUncertainAttempt(Call call, Response response) {
    if (!call.base.hasMemberChange() || response.getStatus() == Status.OK) {
      return null;
    }
    boolean unknown;
    synchronized (call) {
      unknown = call.outcomeUnknown;
    }
    if (!unknown) {
      return null;
    }
    return new ChoirTimeoutException(call.describe() + " was refused when it was resent ("
        + (response.getError().isEmpty() ? response.getStatus().toString() : response.getError())
        + "), but an earlier attempt may have executed: the outcome is unknown: the change may or may not"
        + " have happened");
  }

  /** What a call still pending at close learns: unknown if it may have executed, else not executed. */
  static ChoirException closed(Call call) {
    boolean unknown;
    synchronized (call) {
      unknown = call.outcomeUnknown || call.delivered;
    }
    return unknown
        ? new ChoirTimeoutException(call.describe() + " was still in flight when the client was closed; the outcome"
            + " is unknown" + (call.isWrite() ? ": the write may or may not have happened" : ""))
        : new UnavailableException("client closed");
  }

  /** A write that may have executed, in a session that is gone (see Session). */
  static SessionExpiredException sessionExpired(Call call) {
    Throwable cause;
    synchronized (call) {
      cause = call.lastError;
    }
    return new SessionExpiredException(call.describe() + ": this client's session expired while the request was"
        + " in flight; it may or may not have executed: the outcome is unknown", cause);
  }

  static TooLargeException tooLarge(int bytes, int maxFrameBytes) {
    return new TooLargeException("the request frame has " + bytes + " bytes, more than maxFrameBytes "
        + maxFrameBytes + "; it was not sent");
  }
}
