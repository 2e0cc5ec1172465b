package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;

/** DeadlineTest checks that running out of time gives UNKNOWN, never VALID and never a false INVALID. */
class DeadlineTest {

  /** jumpingClock reads 0 once (the start), then one hour. */
  private static LongSupplier jumpingClock() {
    AtomicLong calls = new AtomicLong();
    return () -> calls.getAndIncrement() == 0 ? 0 : Duration.ofHours(1).toNanos();
  }

  /** tickingClock advances by {@code step} nanoseconds on every read. */
  private static LongSupplier tickingClock(long step) {
    AtomicLong now = new AtomicLong();
    return () -> now.getAndAdd(step);
  }

  /**
   * hardInvalid has {@code writers} concurrent acknowledged writes and then a read of a value nobody
   * wrote: to prove it invalid the search has to try every order of subsets of the writes.
   */
  private static Hist hardInvalid(Hist h, String key, int writers) {
    for (int p = 0; p < writers; p++) {
      h.write(100 + p, key, p);
    }
    for (int p = 0; p < writers; p++) {
      h.ok(100 + p);
    }
    return h.readOk(1, key, -1L);
  }

  @Test
  void clockJumpingPastTheDeadlineGivesUnknownNotValid() {
    History h = Hist.of().writeOk(1, "k", 1).readOk(2, "k", 1L).writeOk(1, "k", 2).readOk(2, "k", 2L).build();
    CheckResult r = Checker.registers().withClock(jumpingClock()).withClockInterval(1).run(h, Duration.ofSeconds(1));
    assertEquals(Verdict.UNKNOWN, r.verdict(), r::toString);
    KeyResult k = r.key("k").orElseThrow();
    assertEquals(Verdict.UNKNOWN, k.verdict());
    assertTrue(k.anomaly().isEmpty());
    assertTrue(k.note().contains("deadline"), k.note());
  }

  @Test
  void searchCutShortOnAnInvalidHistoryIsUnknownNotInvalid() {
    History h = hardInvalid(Hist.of(), "k", 12).build();
    CheckResult r = Checker.registers().withClock(jumpingClock()).run(h, Duration.ofSeconds(1));
    assertEquals(Verdict.UNKNOWN, r.verdict(), r::toString);
    // with time, the same history is proved invalid
    assertEquals(Verdict.INVALID, Checker.check(h, Duration.ofSeconds(30)).verdict());
  }

  @Test
  void invalidKeyWinsOverAnUnknownKey() {
    Hist hist = Hist.of().readOk(1, "a", 5L); // key a: trivially invalid
    History h = hardInvalid(hist, "b", 12).build();
    CheckResult r = Checker.registers().withClock(tickingClock(1_000_000)).withClockInterval(1)
        .run(h, Duration.ofMillis(100));
    assertEquals(Verdict.INVALID, r.key("a").orElseThrow().verdict(), r::toString);
    assertEquals(Verdict.UNKNOWN, r.key("b").orElseThrow().verdict(), r::toString);
    assertEquals(Verdict.INVALID, r.verdict());
  }

  @Test
  void validKeyNextToAnUnknownKeyDoesNotMakeTheHistoryValid() {
    Hist hist = Hist.of().writeOk(1, "a", 1).readOk(2, "a", 1L);
    History h = hardInvalid(hist, "b", 12).build();
    CheckResult r = Checker.registers().withClock(tickingClock(1_000_000)).withClockInterval(1)
        .run(h, Duration.ofMillis(100));
    assertEquals(Verdict.VALID, r.key("a").orElseThrow().verdict(), r::toString);
    assertEquals(Verdict.UNKNOWN, r.key("b").orElseThrow().verdict(), r::toString);
    assertEquals(Verdict.UNKNOWN, r.verdict());
  }

  @Test
  void stateBudgetExhaustedGivesUnknown() {
    History h = hardInvalid(Hist.of(), "k", 12).build();
    CheckResult r = Checker.registers().withMaxStates(100).withClockInterval(1).run(h, Duration.ofSeconds(30));
    assertEquals(Verdict.UNKNOWN, r.verdict(), r::toString);
    assertTrue(r.key("k").orElseThrow().note().contains("state budget"));
  }

  @Test
  void searchesThatFinishBeforeTheFirstClockReadAreDecidedEvenWithZeroTimeout() {
    History h = Hist.of().writeOk(1, "k", 1).readOk(2, "k", 1L).build();
    assertEquals(Verdict.VALID, Checker.check(h, Duration.ZERO).verdict());
  }

  @Test
  void timeLeftByFastKeysIsGivenToASlowKeyThatRanOutOfItsShare() {
    // the hard key comes first in key order, so its fair share is a tenth of the budget; it needs more,
    // and gets it when it is resumed after the trivial keys finished
    History hard = hardInvalid(Hist.of(), "0hard", 10).build();
    KeySearch<RegisterModel.State> probe =
        new KeySearch<>("0hard", RegisterModel.ABSENT_INITIALLY, hard.invocations());
    assertEquals(KeySearch.Status.INVALID, probe.run(Long.MAX_VALUE, () -> 0, 1, Long.MAX_VALUE));
    long steps = probe.iterations();
    Hist hist = Hist.of();
    for (int i = 0; i < 10; i++) {
      hist.writeOk(1, "a" + i, 1);
    }
    History h = hardInvalid(hist, "0hard", 10).build();
    long tick = 1000;
    Duration budget = Duration.ofNanos(tick * (2 * steps + 200));
    CheckResult r = Checker.registers().withClock(tickingClock(tick)).withClockInterval(1).run(h, budget);
    assertEquals(Verdict.INVALID, r.key("0hard").orElseThrow().verdict(), r::toString);
    assertEquals(Verdict.INVALID, r.verdict());
    // and with only a share of it the same key is UNKNOWN
    CheckResult shortRun = Checker.registers().withClock(tickingClock(tick)).withClockInterval(1)
        .run(h, Duration.ofNanos(tick * steps / 2));
    assertEquals(Verdict.UNKNOWN, shortRun.key("0hard").orElseThrow().verdict(), shortRun::toString);
  }
}
