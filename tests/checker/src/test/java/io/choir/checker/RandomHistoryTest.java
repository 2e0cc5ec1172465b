package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * RandomHistoryTest checks simulated linearizable histories (which must be VALID) and corrupted copies of
 * them (which must be INVALID), and prints how long the checks take. The seed has a fixed default and is
 * printed; run other histories, or replay a failure, with {@code -Dchoir.checker.seed=<seed>}.
 */
class RandomHistoryTest {
  private static final long SEED = Seeds.seed("RandomHistoryTest", 20_240_917L);
  private static final Duration TIMEOUT = Duration.ofSeconds(60);
  private static final RegisterSimulation.Config MANY_KEYS = new RegisterSimulation.Config(50, 200, 5, 10, 0.05, 0.02);
  private static final RegisterSimulation.Config HOT_KEY = new RegisterSimulation.Config(1, 200, 10, 10, 0.08, 0.02);

  private static Random random(int salt) {
    return new Random(SEED * 31 + salt);
  }

  private static CheckResult timed(String what, History h) {
    long t0 = System.nanoTime();
    CheckResult r = Checker.check(h, TIMEOUT);
    long ms = (System.nanoTime() - t0) / 1_000_000;
    long info = h.invocations().stream().filter(Invocation::isOpen).count();
    System.out.printf("%s: %d ops (%d info) on %d keys -> %s, %d states, %d ms%n",
        what, h.invocations().size(), info, h.keys().size(), r.verdict(), r.exploredStates(), ms);
    return r;
  }

  @Test
  void tenThousandOpsOverFiftyKeysAreValid() {
    History h = RegisterSimulation.generate(random(1), MANY_KEYS);
    assertEquals(10_000, h.invocations().size(), () -> Seeds.replay(SEED));
    CheckResult r = timed("50 keys", h);
    assertEquals(Verdict.VALID, r.verdict(), () -> Seeds.replay(SEED) + "\n" + r);
  }

  @Test
  void hotKeyWithTenProcessesAndInfoOpsIsValid() {
    for (int i = 0; i < 5; i++) {
      History h = RegisterSimulation.generate(random(100 + i), HOT_KEY);
      CheckResult r = timed("hot key #" + i, h);
      assertEquals(Verdict.VALID, r.verdict(), () -> Seeds.replay(SEED) + "\n" + r);
    }
  }

  @Test
  void fiftyKeysWithFewDistinctValuesAreValid() {
    // values 1..5 are written over and over, so a read no longer tells which write it saw
    History h = RegisterSimulation.generate(random(6), new RegisterSimulation.Config(50, 200, 5, 10, 0.05, 0.02, 5));
    CheckResult r = timed("50 keys, values 1..5", h);
    assertEquals(Verdict.VALID, r.verdict(), () -> Seeds.replay(SEED) + "\n" + r);
  }

  @Test
  void hotKeyWithAReadOfANeverWrittenValueIsInvalid() {
    for (int i = 0; i < 5; i++) {
      Random rnd = random(200 + i);
      History h = RegisterSimulation.generate(rnd, HOT_KEY);
      Invocation victim = corruptibleRead(h, rnd);
      CheckResult r = timed("hot key #" + i + " corrupted", withReadValue(h, victim, -1L));
      assertEquals(Verdict.INVALID, r.verdict(), () -> Seeds.replay(SEED));
      assertEquals(victim.id(), r.anomalies().get(0).op().id(), () -> Seeds.replay(SEED) + "\n" + r);
    }
  }

  private static Invocation corruptibleRead(History h, Random rnd) {
    List<Invocation> reads = h.invocations().stream()
        .filter(i -> i.op().type() == OpType.READ && i.outcome() == Outcome.OK).toList();
    assertFalse(reads.isEmpty(), () -> Seeds.replay(SEED) + ": no ok read to corrupt");
    return reads.get(rnd.nextInt(reads.size()));
  }

  private static History withReadValue(History h, Invocation read, Long value) {
    List<Event> events = new ArrayList<>(h.events());
    Event e = events.get(read.completeIndex());
    events.set(read.completeIndex(), new Event(e.type(), e.op().withValue(value), e.timeNanos(), e.node()));
    return History.of(events);
  }

  @Test
  void readOfANeverWrittenValueInARandomHistoryIsInvalidAndReported() {
    Random rnd = random(2);
    History h = RegisterSimulation.generate(rnd, MANY_KEYS);
    Invocation victim = corruptibleRead(h, rnd);
    CheckResult r = timed("never-written read", withReadValue(h, victim, -1L));
    assertEquals(Verdict.INVALID, r.verdict(), () -> Seeds.replay(SEED));
    assertEquals(1, r.anomalies().size(), () -> Seeds.replay(SEED) + "\n" + r);
    Anomaly a = r.anomalies().get(0);
    assertEquals(victim.op().key(), a.key(), () -> Seeds.replay(SEED));
    assertEquals(victim.id(), a.op().id(), () -> Seeds.replay(SEED) + "\n" + a);
  }

  @Test
  void writeThatDisappearsFromARandomHistoryIsInvalid() {
    Random rnd = random(3);
    History h = RegisterSimulation.generate(rnd, MANY_KEYS);
    Map<String, Invocation> writerOf = new HashMap<>();
    for (Invocation i : h.invocations()) {
      if (i.op().type() == OpType.WRITE && i.outcome() == Outcome.OK) {
        writerOf.put(i.op().key() + "=" + i.op().value(), i);
      }
    }
    List<Invocation> seen = new ArrayList<>();
    for (Invocation i : h.invocations()) {
      if (i.op().type() == OpType.READ && i.outcome() == Outcome.OK && i.op().value() != null) {
        Invocation w = writerOf.get(i.op().key() + "=" + i.op().value());
        if (w != null) {
          seen.add(w);
        }
      }
    }
    assertFalse(seen.isEmpty(), () -> Seeds.replay(SEED) + ": no acknowledged write was read");
    Invocation victim = seen.get(rnd.nextInt(seen.size()));
    List<Event> events = new ArrayList<>(h.events());
    events.remove(victim.completeIndex());
    events.remove(victim.invokeIndex());
    CheckResult r = timed("write removed", History.of(events));
    assertEquals(Verdict.INVALID, r.verdict(), () -> Seeds.replay(SEED));
    assertEquals(victim.op().key(), r.anomalies().get(0).key(), () -> Seeds.replay(SEED));
  }

  @Test
  void staleReadInARandomHistoryIsInvalid() {
    Random rnd = random(4);
    History h = RegisterSimulation.generate(rnd, MANY_KEYS);
    Optional<Invocation[]> found = findStaleReadCandidate(h, rnd);
    Invocation read = found.orElseThrow(() -> new AssertionError(Seeds.replay(SEED) + ": no stale-read candidate"))[0];
    Invocation old = found.get()[1];
    CheckResult r = timed("stale read", withReadValue(h, read, old.op().value()));
    assertEquals(Verdict.INVALID, r.verdict(), () -> Seeds.replay(SEED));
    assertEquals(read.op().key(), r.anomalies().get(0).key(), () -> Seeds.replay(SEED));
  }

  /**
   * findStaleReadCandidate finds an ok read R and an ok write W1 such that another acknowledged write or
   * CAS W2 began after W1 completed and completed before R began: R returning W1's value is stale.
   */
  private static Optional<Invocation[]> findStaleReadCandidate(History h, Random rnd) {
    List<Invocation[]> candidates = new ArrayList<>();
    Map<String, List<Invocation>> byKey = h.byKey();
    for (Invocation r : h.invocations()) {
      if (r.op().type() != OpType.READ || r.outcome() != Outcome.OK) {
        continue;
      }
      List<Invocation> ops = byKey.get(r.op().key());
      for (int j = ops.size() - 1; j >= 0; j--) { // the latest-invoked W2 leaves the most room for W1
        Invocation w2 = ops.get(j);
        if (w2.op().type() == OpType.READ || w2.outcome() != Outcome.OK || w2.completeIndex() >= r.invokeIndex()) {
          continue;
        }
        for (Invocation w1 : byKey.get(r.op().key())) {
          if (w1.op().type() == OpType.WRITE && w1.outcome() == Outcome.OK
              && w1.completeIndex() < w2.invokeIndex() && !w1.op().value().equals(r.op().value())) {
            candidates.add(new Invocation[] {r, w1});
            break;
          }
        }
        break;
      }
    }
    return candidates.isEmpty() ? Optional.empty() : Optional.of(candidates.get(rnd.nextInt(candidates.size())));
  }

  @Test
  void randomHistorySurvivesAJsonLinesRoundTrip() {
    History h = RegisterSimulation.generate(random(5), new RegisterSimulation.Config(5, 100, 3, 6, 0.1, 0.05));
    History back = History.fromJsonLines(h.toJsonLines());
    assertEquals(h.events(), back.events(), () -> Seeds.replay(SEED));
    assertEquals(Verdict.VALID, Checker.check(back, TIMEOUT).verdict(), () -> Seeds.replay(SEED));
  }
}
