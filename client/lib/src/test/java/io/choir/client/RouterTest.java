package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Router's rules for hints and suspects, step by step (no network): views only grow (VR Revisited
 * 4.2), so an older view's hint names a deposed primary; a replica that timed out is not returned to
 * unless a newer view names it or its suspicion has lasted an attempt timeout.
 */
class RouterTest {
  private static final Endpoint A = Endpoint.parse("a:1");
  private static final Endpoint B = Endpoint.parse("b:1");
  private static final Endpoint C = Endpoint.parse("c:1");
  private static final long SUSPICION_NS = 1_000;

  private final Router router = new Router(List.of(A, B, C), SUSPICION_NS);

  @Test
  void shouldFollowHintsFromTheNewestViewAndIgnoreOlderOnes() {
    assertEquals(C, router.onRefusal(A, "c:1", 5, 0));
    assertEquals(C, router.guess());
    assertEquals(A, router.onRefusal(B, "a:1", 6, 0), "a newer view's hint wins");
    assertNull(router.onRefusal(C, "c:1", 5, 0), "view 5 is older than view 6");
    assertEquals(A, router.guess(), "the stale hint moved nothing but the refuser");
    assertEquals(B, router.onRefusal(C, "b:1", 6, 0), "the same view is followed");
    assertEquals(6, router.maxViewSeen());
  }

  /**
   * Suspicions lapse with time, not only with an answer: after a pause of A and a partition of B (both
   * suspects, never heard from again since the client talks to the primary only), a kill of the new
   * primary C must send retries to A or B, not back to the dead C (a process test stalled on this).
   */
  @Test
  void shouldLetOldSuspicionsLapseSoThatAKilledPrimaryIsNotTheOnlyTarget() {
    long[] now = {0};
    Router r = new Router(List.of(A, B, C), SUSPICION_NS, () -> now[0]);
    r.suspect(A, 0);
    r.suspect(B, 10);
    assertEquals(C, r.guess());
    assertEquals(C, r.retryTarget(C), "both others are fresh suspects: C is all there is");
    now[0] = 10 + SUSPICION_NS;
    r.onFailure(C); // connection refused: C is dead
    Endpoint next = r.retryTarget(C);
    assertTrue(next.equals(A) || next.equals(B), "old suspicions lapsed, so the retry leaves the dead C: " + next);
  }

  @Test
  void shouldLearnTheViewFromUnavailableWithoutAHint() {
    assertEquals(C, router.onRefusal(A, "c:1", 5, 0));
    assertNull(router.onRefusal(C, "", 6, 0));
    assertNull(router.onRefusal(B, "c:1", 5, 0), "view 6 is being formed: view 5's primary is not followed");
  }

  @Test
  void shouldSkipASuspectUntilANewerViewNamesItOrItsSuspicionEnds() {
    router.onRefusal(B, "a:1", 3, 0); // A is the primary of view 3
    router.suspect(A, 100);
    assertEquals(B, router.guess(), "moved off the suspect");
    assertEquals(B, router.retryTarget(A));
    assertNull(router.onRefusal(C, "a:1", 3, 200), "the same view names it: no news, not followed");
    assertTrue(router.isSuspect(A));
    assertEquals(A, router.onRefusal(C, "a:1", 4, 300), "a newer view names it again");
    assertFalse(router.isSuspect(A));

    router.suspect(A, 400);
    assertNull(router.onRefusal(B, "a:1", 4, 400 + SUSPICION_NS - 1));
    assertEquals(A, router.onRefusal(B, "a:1", 4, 400 + SUSPICION_NS), "after an attempt timeout a hint may name it again");
  }

  @Test
  void shouldTakeTheFirstHintNamingASuspectOfUnknownViewAsItsViewNotAsNews() {
    router.suspect(A, 0); // timed out before any view was seen (OK answers carry none)
    assertNull(router.onRefusal(B, "a:1", 1, 10), "view 1 is the view it timed out in");
    assertNull(router.onRefusal(C, "a:1", 1, 20));
    assertEquals(A, router.onRefusal(C, "a:1", 2, 30), "view 2 is news");
  }

  @Test
  void shouldClearASuspectThatAnswersAnything() {
    router.suspect(A, 0);
    assertTrue(router.isSuspect(A));
    router.onAnswer(A);
    assertFalse(router.isSuspect(A));
  }

  @Test
  void shouldRetryRoundRobinSkippingSuspectsAndFallBackWhenAllAreSuspect() {
    router.suspect(B, 0);
    assertEquals(C, router.retryTarget(A), "B is skipped");
    router.suspect(C, 0);
    assertEquals(A, router.retryTarget(A), "only A is left, even though it just failed");
    router.suspect(A, 0);
    assertEquals(B, router.retryTarget(A), "all suspect: plain round robin");
    Router single = new Router(List.of(A), SUSPICION_NS);
    single.suspect(A, 0);
    assertEquals(A, single.retryTarget(A));
  }
}
