package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** WatchCheckerTest: synthetic histories the watch checker must pass or catch. */
class WatchCheckerTest {
  private static final String A = "watch/k0";
  private static final String B = "watch/k1";

  /** Writes: a@10=1, b@11=2, a@12=3 (unknown outcome, applied), b@? =4 failed, a@13=5. */
  private static List<WatchChecker.Write> writes() {
    return List.of(new WatchChecker.Write(A, 1, Outcome.OK, 10), new WatchChecker.Write(B, 2, Outcome.OK, 11),
        new WatchChecker.Write(A, 3, Outcome.INFO, -1), new WatchChecker.Write(B, 4, Outcome.FAIL, -1),
        new WatchChecker.Write(A, 5, Outcome.OK, 13));
  }

  private static WatchChecker.Event ev(long rev, String key, long value) {
    return new WatchChecker.Event(rev, key, false, Long.toString(value));
  }

  private static List<WatchChecker.Event> all() {
    return List.of(ev(10, A, 1), ev(11, B, 2), ev(12, A, 3), ev(13, A, 5));
  }

  private static WatchChecker.Watcher prefix(String name, long start, List<WatchChecker.Event> events) {
    return new WatchChecker.Watcher(name, "watch/", true, start, events, null);
  }

  private static List<WatchChecker.Final> finals() {
    return List.of(new WatchChecker.Final(A, "5", 13), new WatchChecker.Final(B, "2", 11));
  }

  private static WatchChecker.Result check(List<WatchChecker.Watcher> watchers) {
    WatchChecker.Result r = WatchChecker.check(writes(), watchers, finals());
    System.out.println(r.summary());
    return r;
  }

  @Test
  void consistentWatchersPass() {
    WatchChecker.Watcher keyA = new WatchChecker.Watcher("key-a", A, false, 10,
        List.of(ev(10, A, 1), ev(12, A, 3), ev(13, A, 5)), null);
    WatchChecker.Result r = check(List.of(prefix("p1", 10, all()), prefix("p2", 10, all()), keyA,
        prefix("late", 12, List.of(ev(12, A, 3), ev(13, A, 5)))));
    assertEquals(Verdict.VALID, r.verdict(), r.problems().toString());
    assertEquals(13, r.events());
  }

  @Test
  void aGapIsCaught() {
    List<WatchChecker.Event> gap = List.of(ev(10, A, 1), ev(12, A, 3), ev(13, A, 5));
    WatchChecker.Result r = check(List.of(prefix("p1", 10, gap)));
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("gap") && p.contains("revision 11")), r.problems().toString());
  }

  @Test
  void aDuplicateIsCaught() {
    List<WatchChecker.Event> dup = new ArrayList<>(all());
    dup.add(2, ev(11, B, 2));
    WatchChecker.Result r = check(List.of(prefix("p1", 10, dup)));
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("duplicate")), r.problems().toString());
  }

  @Test
  void outOfOrderIsCaught() {
    List<WatchChecker.Event> swapped = List.of(ev(11, B, 2), ev(10, A, 1), ev(12, A, 3), ev(13, A, 5));
    WatchChecker.Result r = check(List.of(prefix("p1", 10, swapped)));
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("out of order")), r.problems().toString());
  }

  @Test
  void anUnknownWriteSeenByOneWatcherOnlyIsCaught() {
    List<WatchChecker.Event> without = List.of(ev(10, A, 1), ev(11, B, 2), ev(13, A, 5));
    WatchChecker.Result r = check(List.of(prefix("p1", 10, all()), prefix("p2", 10, without)));
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("disagree")), r.problems().toString());
  }

  @Test
  void anUnknownWriteSeenByNoWatcherIsFine() {
    List<WatchChecker.Event> without = List.of(ev(10, A, 1), ev(11, B, 2), ev(13, A, 5));
    WatchChecker.Result r = check(List.of(prefix("p1", 10, without), prefix("p2", 10, without)));
    assertEquals(Verdict.VALID, r.verdict(), r.problems().toString());
  }

  @Test
  void aRevivedOrInventedOrMisplacedValueIsCaught() {
    List<WatchChecker.Event> bad = List.of(ev(10, A, 1), ev(11, B, 2), ev(12, B, 4), ev(13, A, 5), ev(14, A, 99),
        ev(15, A, 1));
    WatchChecker.Result r = check(List.of(prefix("p1", 10, bad)));
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("revived")), r.problems().toString());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("no write put")), r.problems().toString());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("acknowledged at revision 10")), r.problems().toString());
  }

  @Test
  void aWatcherBehindTheFinalStateIsCaught() {
    WatchChecker.Result r = check(List.of(prefix("p1", 10, all().subList(0, 3))));
    assertEquals(Verdict.INVALID, r.verdict());
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("did not reach")), r.problems().toString());
  }

  @Test
  void anEventOutsideTheRangeIsCaught() {
    WatchChecker.Watcher keyA = new WatchChecker.Watcher("key-a", A, false, 10, all(), null);
    WatchChecker.Result r = check(List.of(keyA));
    assertTrue(r.problems().stream().anyMatch(p -> p.contains("outside")), r.problems().toString());
  }

  @Test
  void withoutFinalReadsOrWithOnlyEndedWatchersTheVerdictIsUnknown() {
    assertEquals(Verdict.UNKNOWN, WatchChecker.check(writes(), List.of(prefix("p1", 10, all())), null).verdict());
    WatchChecker.Watcher ended = new WatchChecker.Watcher("p1", "watch/", true, 10, all().subList(0, 2),
        "WatchCompactedException");
    assertEquals(Verdict.UNKNOWN, WatchChecker.check(writes(), List.of(ended), finals()).verdict());
  }
}
