package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * CrossCheckTest compares the checker with a brute-force reading of the definition of linearizability on
 * thousands of small random histories: no linked list, no memo table, just every order of every allowed
 * subset of operations. It also checks that the reported anomaly is the first completion after which the
 * history stops being linearizable.
 */
class CrossCheckTest {
  /** SEED has a fixed default; {@code -Dchoir.checker.seed=N} runs other histories or replays a failure. */
  private static final long SEED = Seeds.seed("CrossCheckTest", 7_919L);
  private static final Long[] VALUES = {null, 1L, 2L, 3L};

  /**
   * linearizable says whether some order of the ok operations plus any subset of the info ones respects
   * real time and the register's rules. Operations invoked after {@code horizon} are left out, and only
   * ok operations completing at or before it are required, so that prefixes of a history can be judged.
   */
  static boolean linearizable(List<Invocation> ops, int horizon) {
    List<Invocation> candidates = new ArrayList<>();
    for (Invocation i : ops) {
      if (i.outcome() == Outcome.FAIL || i.invokeIndex() > horizon) {
        continue;
      }
      boolean required = i.outcome() == Outcome.OK && i.completeIndex() <= horizon;
      if (!required && i.op().type() == OpType.READ) {
        continue; // an optional read changes nothing
      }
      candidates.add(i);
    }
    return search(candidates, horizon, new boolean[candidates.size()], RegisterModel.State.ABSENT);
  }

  private static boolean search(List<Invocation> c, int horizon, boolean[] used, RegisterModel.State state) {
    boolean allRequiredDone = true;
    for (int i = 0; i < c.size(); i++) {
      if (!used[i] && required(c.get(i), horizon)) {
        allRequiredDone = false;
      }
    }
    if (allRequiredDone) {
      return true;
    }
    for (int i = 0; i < c.size(); i++) {
      if (used[i] || !mayGoNext(c, used, i)) {
        continue;
      }
      var next = RegisterModel.ABSENT_INITIALLY.step(state, c.get(i).op());
      if (next.isEmpty()) {
        continue;
      }
      used[i] = true;
      boolean ok = search(c, horizon, used, next.get());
      used[i] = false;
      if (ok) {
        return true;
      }
    }
    return false;
  }

  private static boolean required(Invocation i, int horizon) {
    return i.outcome() == Outcome.OK && i.completeIndex() <= horizon;
  }

  /** mayGoNext: no unused operation completed before {@code c[i]} was invoked. */
  private static boolean mayGoNext(List<Invocation> c, boolean[] used, int i) {
    for (int j = 0; j < c.size(); j++) {
      Invocation o = c.get(j);
      if (!used[j] && o.outcome() == Outcome.OK && o.completeIndex() < c.get(i).invokeIndex()) {
        return false;
      }
    }
    return true;
  }

  /** randomHistory makes a small history over values 1..3 with random results: often invalid. */
  static History randomHistory(Random rnd, int processes, int opCount) {
    History.Builder b = History.builder();
    long[] proc = new long[processes];
    boolean[] busy = new boolean[processes];
    OpType[] type = new OpType[processes];
    long nextProcess = processes;
    for (int i = 0; i < processes; i++) {
      proc[i] = i;
    }
    int invoked = 0;
    long t = 0;
    while (true) {
      boolean anyBusy = false;
      for (boolean x : busy) {
        anyBusy |= x;
      }
      if (!anyBusy && invoked == opCount) {
        break;
      }
      int p = rnd.nextInt(processes);
      t += 10;
      if (!busy[p]) {
        if (invoked == opCount) {
          continue;
        }
        Operation op = switch (rnd.nextInt(3)) {
          case 0 -> Operation.read(proc[p], "k");
          case 1 -> Operation.write(proc[p], "k", 1 + rnd.nextInt(3));
          default -> Operation.cas(proc[p], "k", VALUES[rnd.nextInt(4)], 1 + rnd.nextInt(3));
        };
        b.invoke(op, t);
        type[p] = op.type();
        busy[p] = true;
        invoked++;
      } else {
        int r = rnd.nextInt(10);
        if (r < 6) {
          if (type[p] == OpType.READ) {
            b.ok(proc[p], VALUES[rnd.nextInt(4)], t);
          } else {
            b.ok(proc[p], t);
          }
        } else if (r < 8) {
          b.fail(proc[p], t);
        } else {
          b.info(proc[p], t);
          proc[p] = nextProcess++;
        }
        busy[p] = false;
      }
    }
    return b.build();
  }

  /** compare checks history {@code n} of a test; a failure names the seed and {@code n}. */
  private static void compare(History h, int n, int[] counts) {
    List<Invocation> ops = h.invocations();
    boolean expected = linearizable(ops, Integer.MAX_VALUE);
    CheckResult r = Checker.check(h, Duration.ofSeconds(30));
    assertEquals(expected ? Verdict.VALID : Verdict.INVALID, r.verdict(),
        () -> Seeds.replay(SEED) + ", history #" + n + "\n" + h + r);
    counts[expected ? 0 : 1]++;
    if (!expected) {
      Anomaly a = r.anomalies().get(0);
      int first = -1;
      for (int e = 0; e < h.size(); e++) {
        if (!linearizable(ops, e)) {
          first = e;
          break;
        }
      }
      int firstFinal = first;
      assertEquals(first, a.op().completeIndex(), () -> Seeds.replay(SEED) + ", history #" + n
          + ": first failing prefix ends at event " + firstFinal + "\n" + h + a);
    }
  }

  @Test
  void checkerAgreesWithBruteForceOnRandomSmallHistories() {
    Random rnd = new Random(SEED);
    int[] counts = new int[2];
    for (int i = 0; i < 3000; i++) {
      compare(randomHistory(rnd, 2 + rnd.nextInt(3), 3 + rnd.nextInt(6)), i, counts);
    }
    System.out.printf("cross-check (seed %d): %d valid, %d invalid random histories agree%n", SEED, counts[0], counts[1]);
    assertTrue(counts[0] > 100 && counts[1] > 100, () -> Seeds.replay(SEED) + ": both verdicts exercised");
  }

  @Test
  void checkerAgreesWithBruteForceOnSimulatedHistoriesWithOneReadChanged() {
    Random rnd = new Random(SEED + 1);
    int[] counts = new int[2];
    RegisterSimulation.Config small = new RegisterSimulation.Config(1, 8, 2, 4, 0.2, 0.1);
    for (int i = 0; i < 1500; i++) {
      History h = RegisterSimulation.generate(rnd, small);
      List<Event> events = new ArrayList<>(h.events());
      List<Integer> okReads = new ArrayList<>();
      for (int e = 0; e < events.size(); e++) {
        if (events.get(e).type() == EventType.OK && events.get(e).op().type() == OpType.READ) {
          okReads.add(e);
        }
      }
      if (!okReads.isEmpty() && rnd.nextBoolean()) {
        int e = okReads.get(rnd.nextInt(okReads.size()));
        Event ev = events.get(e);
        Long v = rnd.nextInt(4) == 0 ? null : (long) (1 + rnd.nextInt(6));
        events.set(e, new Event(ev.type(), ev.op().withValue(v), ev.timeNanos(), ev.node()));
      }
      compare(History.of(events), i, counts);
    }
    System.out.printf("cross-check (seed %d): %d valid, %d invalid simulated histories agree%n", SEED, counts[0], counts[1]);
  }
}
