package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.SessionExpiredException;
import io.choir.client.UnavailableException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

/**
 * SimHistoryTest checks the simulator's history mapping of the client's exceptions, on which a false
 * promise of the client shows up as a violation: an exception documented as "not executed" is a fail,
 * anything else is info; so a "not executed" for a write that did execute (its value is read back)
 * makes the history invalid, while an "outcome unknown" for the same write leaves it valid.
 */
class SimHistoryTest {
  private static final long MS = 1_000_000L;

  /** A write of 7 that ends in error, then a read that sees 7. */
  private static List<String> problemsOfAWriteReadBackAfter(Throwable error) {
    SimHistory h = new SimHistory();
    h.invoke(1, SimHistory.F.WRITE, "k0", 7L, null, 10 * MS);
    h.fail(error, 1, SimHistory.F.WRITE, "k0", 7L, null, 20 * MS);
    h.invoke(2, SimHistory.F.READ, "k0", null, null, 30 * MS);
    h.complete(SimHistory.Kind.OK, 2, SimHistory.F.READ, "k0", 7L, null, 40 * MS);
    return SimChecks.linearizability(new SimResult(SimConfig.fromSeed(1), h, List.of(), "", Map.of()));
  }

  @Test
  void shouldFindTheHistoryInvalidWhenTheClientSaidNotExecutedForAWriteThatWasReadBack() {
    List<String> problems = problemsOfAWriteReadBackAfter(new UnavailableException("never executed"));
    assertFalse(problems.isEmpty(), "a write recorded as fail and read back later must be a violation");
    assertTrue(problems.get(0).contains("INVALID"), problems.toString());
    assertFalse(problemsOfAWriteReadBackAfter(new BusyException("refused")).isEmpty());
    // The async client's wrapper carries no promise of its own: its cause decides.
    assertFalse(problemsOfAWriteReadBackAfter(new CompletionException(new UnavailableException("x"))).isEmpty());
  }

  @Test
  void shouldKeepTheHistoryValidWhenTheClientSaidTheOutcomeIsUnknown() {
    assertEquals(List.of(), problemsOfAWriteReadBackAfter(new ChoirTimeoutException("unknown")));
    assertEquals(List.of(), problemsOfAWriteReadBackAfter(new SessionExpiredException("unknown", null)));
    // Anything not documented as "not executed" is info, never fail.
    assertEquals(List.of(), problemsOfAWriteReadBackAfter(new ChoirException("unexpected status")));
    assertEquals(List.of(), problemsOfAWriteReadBackAfter(new IllegalStateException("a bug of the harness")));
  }

  @Test
  void shouldRecordEachExceptionAsItsDocumentationPromises() {
    assertEquals(SimHistory.Kind.FAIL, SimHistory.kindOf(new UnavailableException("x")));
    assertEquals(SimHistory.Kind.FAIL, SimHistory.kindOf(new BusyException("x")));
    assertEquals(SimHistory.Kind.FAIL, SimHistory.kindOf(new CasFailedException("x", null, 0, -1)));
    assertEquals(SimHistory.Kind.INFO, SimHistory.kindOf(new ChoirTimeoutException("x")));
    assertEquals(SimHistory.Kind.INFO, SimHistory.kindOf(new SessionExpiredException("x", null)));
  }
}
