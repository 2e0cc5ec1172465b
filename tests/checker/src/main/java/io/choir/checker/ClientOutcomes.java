package io.choir.checker;

import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.InvalidRequestException;
import io.choir.client.LeaseNotFoundException;
import io.choir.client.MemberChangeRefusedException;
import io.choir.client.PermissionDeniedException;
import io.choir.client.TlsException;
import io.choir.client.TooLargeException;
import io.choir.client.UnavailableException;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * ClientOutcomes says what an exception of the Choir client promises about the request it ended, and so
 * how a history must record the operation: {@link Outcome#FAIL} only when the client's documentation
 * promises the request did not take effect, {@link Outcome#INFO} (outcome unknown) for everything else.
 * A harness and a simulator that record through this one mapping turn a false promise of the client into
 * a violation the checker finds: a write recorded as fail whose value is read later cannot be linearized.
 *
 * <p>The mapping is an allow-list of exact classes, never {@code instanceof} and never a default of fail:
 * an exception type added to the client later (a session that expired, an outcome-unknown refusal) and a
 * subclass of an allow-listed one are recorded as info until someone reads its documentation and adds it
 * here. A wrong info costs the checker some search; a wrong fail hides a lost or duplicated write.
 *
 * <p>Allowed, with the client's documented promise (client/lib, io.choir.client):
 *
 * <ul>
 *   <li>{@link UnavailableException}: "the request was never executed (it never reached a replica, or
 *       every replica that saw it refused it)";
 *   <li>{@link BusyException}: "refused for overload and not executed";
 *   <li>{@link TooLargeException}: over a size limit, "the request was not executed";
 *   <li>{@link InvalidRequestException}: refused as malformed, "the request was not executed";
 *   <li>{@link PermissionDeniedException}: refused by the access check before the core, "NOT executed";
 *   <li>{@link TlsException}: no TLS connection, "no request was sent ... NOT executed";
 *   <li>{@link CasFailedException}: a definite answer: the compare-and-set found another state and
 *       "nothing was written".
 * </ul>
 *
 * Everything else is info: {@code ChoirTimeoutException} ("the outcome is unknown"), a plain
 * {@code ChoirException} (an unexpected status, an interrupt), any runtime error of the harness itself.
 * A {@link CompletionException} or {@link ExecutionException} (the asynchronous client's wrappers) is
 * judged by its cause.
 */
public final class ClientOutcomes {
  /**
   * NOT_EXECUTED maps each allow-listed exception class to the reason a history records with its fail.
   * Exact classes: {@link #outcome} looks up {@code e.getClass()}.
   */
  static final Map<Class<? extends Throwable>, String> NOT_EXECUTED = Map.of(
      UnavailableException.class, "not executed: unavailable",
      BusyException.class, "not executed: busy",
      TooLargeException.class, "not executed: too large",
      InvalidRequestException.class, "not executed: invalid request",
      PermissionDeniedException.class, "not executed: permission denied",
      TlsException.class, "not executed: TLS failed",
      MemberChangeRefusedException.class, "not executed: membership change refused",
      LeaseNotFoundException.class, "not executed: lease not found",
      CasFailedException.class, "cas-failed: nothing written");

  private ClientOutcomes() {}

  /**
   * outcome is how an operation that ended with {@code error} must be recorded: FAIL when the client
   * promised that it did not take effect, else INFO.
   */
  public static Outcome outcome(Throwable error) {
    return NOT_EXECUTED.containsKey(unwrap(error).getClass()) ? Outcome.FAIL : Outcome.INFO;
  }

  /** notExecuted tells whether {@code error} promises that the request did not take effect. */
  public static boolean notExecuted(Throwable error) {
    return outcome(error) == Outcome.FAIL;
  }

  /**
   * describe is the error text a history keeps with the completion: the promise (or "outcome unknown"),
   * the exception's class and its message.
   */
  public static String describe(Throwable error) {
    Throwable e = unwrap(error);
    String promise = NOT_EXECUTED.getOrDefault(e.getClass(), "outcome unknown");
    return promise + " (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")";
  }

  /** unwrap takes the cause of the asynchronous wrappers, which carry no promise of their own. */
  private static Throwable unwrap(Throwable error) {
    Throwable e = error;
    for (int depth = 0; depth < 8 && (e instanceof CompletionException || e instanceof ExecutionException)
        && e.getCause() != null; depth++) {
      e = e.getCause();
    }
    return e;
  }
}
