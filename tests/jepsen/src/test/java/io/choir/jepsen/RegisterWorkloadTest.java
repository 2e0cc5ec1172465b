package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.CheckResult;
import io.choir.checker.Checker;
import io.choir.checker.Event;
import io.choir.checker.EventType;
import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.OpType;
import io.choir.checker.Operation;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.InvalidRequestException;
import io.choir.client.TooLargeException;
import io.choir.client.UnavailableException;
import java.io.StringReader;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The workload against in-memory fakes: a linearizable store is VALID, a broken one is caught, and every
 * client exception is recorded as what it promises. The runs on worker threads wait for the ops they
 * need, not for a time; the runs driven by {@code runInterleaved} are a function of the seed
 * ({@code -Dchoir.jepsen.test.seed=N}) and replay exactly.
 */
class RegisterWorkloadTest {
  private static final long SEED = TestSeeds.seed("RegisterWorkloadTest", 7);
  private static final List<String> NODES = List.of("n1", "n2", "n3");
  /** THREADED_DEADLINE only bounds a broken threaded run; a healthy one needs well under a second. */
  private static final Duration THREADED_DEADLINE = Duration.ofSeconds(60);

  /** A linearizable register store: one lock around a map. */
  static final class Store {
    final Map<String, String> data = new HashMap<>();
    final Map<String, String> stale = new ConcurrentHashMap<>(); // what a lagging replica would return
    final AtomicInteger calls = new AtomicInteger();
    private final AtomicInteger made = new AtomicInteger();
    private final long seed;

    Store(long seed) {
      this.seed = seed;
    }

    /**
     * clients makes the workload's clients: the n-th one made draws its faults from {@code seed} and n
     * (deterministic under runInterleaved, which makes clients in a fixed order).
     */
    Function<String, RegisterWorkload.Client> clients(boolean staleReads, boolean faults) {
      return node -> client(staleReads, faults ? new Random(seed * 1_000_003 + made.getAndIncrement()) : null);
    }

    RegisterWorkload.Client client(boolean staleReads, Random faults) {
      return new RegisterWorkload.Client() {
        @Override
        public Optional<String> get(String key) {
          calls.incrementAndGet();
          synchronized (Store.this) {
            if (staleReads && faults.nextInt(4) == 0) {
              return Optional.ofNullable(stale.get(key));
            }
            return Optional.ofNullable(data.get(key));
          }
        }

        @Override
        public void put(String key, String value) {
          calls.incrementAndGet();
          maybeFail();
          synchronized (Store.this) {
            String old = data.put(key, value);
            if (old != null) {
              stale.put(key, old);
            }
          }
        }

        @Override
        public void compareAndSet(String key, String expected, String newValue) {
          calls.incrementAndGet();
          maybeFail();
          synchronized (Store.this) {
            if (!expected.equals(data.get(key))) {
              throw new CasFailedException("no", null, 0, -1);
            }
            String old = data.put(key, newValue);
            stale.put(key, old);
          }
        }

        /** maybeFail refuses 1 in 25 writes before executing them, as the real client promises. */
        private void maybeFail() {
          if (faults == null) {
            return;
          }
          int dice = faults.nextInt(50);
          if (dice == 0) {
            throw new UnavailableException("down");
          }
          if (dice == 1) {
            throw new BusyException("busy");
          }
        }

        @Override
        public void close() {}
      };
    }
  }

  private static RegisterWorkload.Settings fast() {
    return new RegisterWorkload.Settings(2, 5, 200, 10, 0, Duration.ofSeconds(1));
  }

  private static Supplier<String> replay(Object what) {
    return () -> TestSeeds.replay(SEED) + ": " + what;
  }

  /** interleaved runs {@code ops} ops of a workload over {@code clients}, on one thread, from the seed. */
  private static RegisterWorkload interleaved(Recorder rec, List<String> nodes,
      Function<String, RegisterWorkload.Client> clients, long seed, int ops) {
    RegisterWorkload w = new RegisterWorkload(fast(), rec, nodes, clients, seed, new ManualClock());
    assertEquals(ops, w.runInterleaved(new Random(seed), ops), replay("every op ran"));
    return w;
  }

  /** assertValidWithFinalReads reads every key back and checks the whole history of a linearizable store. */
  private static void assertValidWithFinalReads(RegisterWorkload w, Recorder rec) {
    assertEquals(w.keys().size(), w.finalReads("n1", 3, Duration.ofSeconds(10)), replay("every final read"));
    History h = rec.history();
    assertTrue(h.invocations().size() > 500, replay("ops: " + h.invocations().size()));
    assertTrue(w.keys().size() > 2, replay("moved on to fresh keys: " + w.keys()));
    CheckResult r = Checker.check(h, Duration.ofSeconds(30));
    assertEquals(Verdict.VALID, r.verdict(), replay(r));
    assertPerKeyBounds(h);
    // every key got a final read that succeeded
    Set<String> finalRead = h.invocations().stream()
        .filter(i -> i.op().type() == OpType.READ && i.outcome() == Outcome.OK)
        .map(i -> i.op().key()).collect(Collectors.toCollection(TreeSet::new));
    assertTrue(finalRead.containsAll(w.keys()), replay("final reads of " + w.keys()));
  }

  @Test
  void aLinearizableStoreGivesAValidHistory() throws Exception {
    Store store = new Store(SEED);
    Recorder rec = new Recorder(new StringWriter(), System::nanoTime);
    RegisterWorkload w = new RegisterWorkload(fast(), rec, NODES, store.clients(false, true), SEED);
    w.start();
    try {
      // until both key slots moved on twice (> 400 ops each way): a count of ops, not a time
      Await.until(() -> w.keys().size() >= 6, THREADED_DEADLINE, replay("6 keys, have " + w.keys()));
    } finally {
      w.stop();
    }
    assertValidWithFinalReads(w, rec);
  }

  @Test
  void aLinearizableStoreGivesAValidHistoryInAReplayableRun() {
    Store store = new Store(SEED);
    Recorder rec = new Recorder(new StringWriter(), ManualClock.ticking());
    RegisterWorkload w = interleaved(rec, NODES, store.clients(false, true), SEED, 1000);
    assertTrue(w.keys().size() >= 6, replay("both key slots moved on twice: " + w.keys()));
    assertValidWithFinalReads(w, rec);
    long fails = rec.history().invocations().stream().filter(i -> i.outcome() == Outcome.FAIL).count();
    assertTrue(fails > 0, replay("the fake's refusals show up as fail"));
  }

  @Test
  void theSameSeedReplaysTheSameHistory() {
    List<Event> first = replayableHistory(SEED).events();
    assertEquals(first, replayableHistory(SEED).events(), replay("a second run from the same seed"));
    assertNotEquals(first, replayableHistory(SEED + 1).events(), replay("another seed gives another run"));
  }

  private static History replayableHistory(long seed) {
    Store store = new Store(seed);
    Recorder rec = new Recorder(null, ManualClock.ticking());
    interleaved(rec, NODES, store.clients(true, true), seed, 300);
    return rec.history();
  }

  @Test
  void staleReadsAreCaught() throws Exception {
    Store store = new Store(SEED);
    Recorder rec = new Recorder(null, System::nanoTime);
    RegisterWorkload w = new RegisterWorkload(fast(), rec, NODES, store.clients(true, true), SEED);
    w.start();
    try {
      Await.until(() -> store.calls.get() >= 2000, THREADED_DEADLINE, replay("2000 calls, have " + store.calls));
    } finally {
      w.stop();
    }
    CheckResult r = Checker.check(rec.history(), Duration.ofSeconds(30));
    assertEquals(Verdict.INVALID, r.verdict(), replay(r));
  }

  @Test
  void staleReadsAreCaughtInAReplayableRun() {
    Store store = new Store(SEED);
    Recorder rec = new Recorder(null, ManualClock.ticking());
    interleaved(rec, NODES, store.clients(true, true), SEED, 600);
    CheckResult r = Checker.check(rec.history(), Duration.ofSeconds(30));
    assertEquals(Verdict.INVALID, r.verdict(), replay(r));
  }

  @Test
  void garbageValuesAreCaughtByTheGarbageReadChecker() {
    Store store = new Store(SEED);
    Recorder rec = new Recorder(null, ManualClock.ticking());
    interleaved(rec, NODES, node -> {
      RegisterWorkload.Client real = store.client(false, null);
      return new RegisterWorkload.Client() {
        @Override
        public Optional<String> get(String key) {
          // a replica that hands out bytes no one wrote, once in a while
          return real.get(key).map(v -> v.equals("3") ? "garbage" : v.equals("4") ? "7" : v);
        }

        @Override
        public void put(String key, String value) {
          real.put(key, value);
        }

        @Override
        public void compareAndSet(String key, String expected, String newValue) {
          real.compareAndSet(key, expected, newValue);
        }

        @Override
        public void close() {}
      };
    }, SEED, 600);
    GarbageReads g = GarbageReads.check(rec.history());
    assertFalse(g.valid(), replay(g.summary()));
    assertEquals(Set.of(-1L, 7L), g.garbage().stream().map(i -> i.op().value()).collect(Collectors.toSet()),
        replay(g.summary()));
    assertTrue(GarbageReads.check(historyOfACorrectStore()).valid());
  }

  private static History historyOfACorrectStore() {
    Store store = new Store(SEED);
    Recorder rec = new Recorder(null, ManualClock.ticking());
    interleaved(rec, List.of("n1"), store.clients(false, false), SEED, 300);
    return rec.history();
  }

  /** A client whose every call ends with {@code error}: {@code apply} says whether a write took effect first. */
  private static RegisterWorkload.Client throwing(Store store, RuntimeException error, boolean apply) {
    RegisterWorkload.Client real = store.client(false, null);
    return new RegisterWorkload.Client() {
      @Override
      public Optional<String> get(String key) {
        throw error;
      }

      @Override
      public void put(String key, String value) {
        if (apply) {
          real.put(key, value);
        }
        throw error;
      }

      @Override
      public void compareAndSet(String key, String expected, String newValue) {
        if (apply) {
          real.compareAndSet(key, expected, newValue);
        }
        throw error;
      }

      @Override
      public void close() {}
    };
  }

  /** A stand-in for a client exception added later (SessionExpiredException): never a fail by default. */
  private static final class NotYetClassifiedException extends ChoirException {
    NotYetClassifiedException() {
      super("the session expired; the outcome is unknown");
    }
  }

  @Test
  void outcomesFollowTheClientsErrors() {
    Recorder rec = new Recorder(null, ManualClock.ticking());
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1"), n -> null, 1);
    Store store = new Store(SEED);
    RegisterWorkload.Client timeouts = throwing(store, new ChoirTimeoutException("timed out"), false);
    RegisterWorkload.Client casFailed = throwing(store, new CasFailedException("cas failed", null, 0, -1), false);
    assertTrue(w.perform(timeouts, Operation.write(0, "k", 1), "n1"), "a write timeout is info: replace the process");
    assertTrue(w.perform(timeouts, Operation.read(1, "k"), "n1"), "a read timeout is info too: nothing promised");
    assertFalse(w.perform(casFailed, Operation.cas(2, "k", 1L, 2), "n1"), "CAS_FAILED is a fail");
    List<Invocation> invs = rec.history().invocations();
    assertEquals(List.of(Outcome.INFO, Outcome.INFO, Outcome.FAIL), invs.stream().map(Invocation::outcome).toList());
  }

  @Test
  void onlyExceptionsThatPromiseNoExecutionAreRecordedAsFail() throws Exception {
    List<RuntimeException> notExecuted = List.of(new UnavailableException("no quorum"), new BusyException("busy"),
        new TooLargeException("too large"), new InvalidRequestException("invalid"));
    List<RuntimeException> unknown = List.of(new ChoirTimeoutException("timed out"),
        new ChoirException("unexpected status"), new NotYetClassifiedException(), new IllegalStateException("bug"));
    StringWriter out = new StringWriter();
    Recorder rec = new Recorder(out, ManualClock.ticking());
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1"), n -> null, 1);
    Store store = new Store(SEED);
    long process = 0;
    List<Outcome> expected = new ArrayList<>();
    for (OpType type : OpType.values()) {
      for (RuntimeException e : notExecuted) {
        assertFalse(w.perform(throwing(store, e, false), op(type, process), "n1"), type + " " + e);
        expected.add(Outcome.FAIL);
      }
      for (RuntimeException e : unknown) {
        assertTrue(w.perform(throwing(store, e, false), op(type, process), "n1"), type + " " + e);
        expected.add(Outcome.INFO);
        process++; // the process is done after info
      }
    }
    rec.close();
    History h = rec.history();
    assertEquals(expected, h.invocations().stream().map(Invocation::outcome).toList());
    // history.jsonl says which promise each completion rests on, and reads back to the same outcomes
    List<String> completions = out.toString().lines().filter(l -> !l.contains("\"invoke\"")).toList();
    assertTrue(completions.stream().filter(l -> l.contains("\"fail\"")).allMatch(l -> l.contains("not executed")),
        String.join("\n", completions));
    assertTrue(completions.stream().filter(l -> l.contains("\"info\"")).allMatch(l -> l.contains("outcome unknown")),
        String.join("\n", completions));
    assertEquals(h.invocations(), HistoryFile.read(new StringReader(out.toString())).history().invocations());
  }

  private static Operation op(OpType type, long process) {
    return switch (type) {
      case READ -> Operation.read(process, "k");
      case WRITE -> Operation.write(process, "k", 1);
      case CAS -> Operation.cas(process, "k", 1L, 2);
    };
  }

  @Test
  void aWriteRecordedAsFailWhoseValueIsReadLaterIsInvalid() {
    // the false promise of issue 9 (2a): "unavailable, never executed" for a write that did execute
    Store store = new Store(SEED);
    Recorder rec = new Recorder(null, ManualClock.ticking());
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1"), n -> null, 1);
    RegisterWorkload.Client honest = store.client(false, null);
    assertFalse(w.perform(honest, Operation.write(0, "k", 1), "n1"));
    assertFalse(w.perform(throwing(store, new UnavailableException("not the primary"), true),
        Operation.write(1, "k", 3), "n1"));
    assertFalse(w.perform(honest, Operation.read(2, "k"), "n2"));
    History h = rec.history();
    assertEquals(List.of(Outcome.OK, Outcome.FAIL, Outcome.OK), h.invocations().stream().map(Invocation::outcome).toList());
    assertEquals(3L, h.invocations().get(2).op().value(), "the read saw the refused write");
    CheckResult r = Checker.check(h, Duration.ofSeconds(10));
    assertEquals(Verdict.INVALID, r.verdict(), r::toString);
    assertEquals(2, r.anomalies().get(0).op().op().process(), "the read that saw it cannot be linearized");
  }

  @Test
  void aWriteOfUnknownOutcomeMayOrMayNotHaveHappened() {
    for (boolean applied : new boolean[] {true, false}) {
      Store store = new Store(SEED);
      Recorder rec = new Recorder(null, ManualClock.ticking());
      RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1"), n -> null, 1);
      RegisterWorkload.Client honest = store.client(false, null);
      assertFalse(w.perform(honest, Operation.write(0, "k", 1), "n1"));
      assertTrue(w.perform(throwing(store, new NotYetClassifiedException(), applied), Operation.write(1, "k", 3), "n1"));
      assertFalse(w.perform(honest, Operation.read(2, "k"), "n2"));
      assertFalse(w.perform(honest, Operation.read(2, "k"), "n2"));
      History h = rec.history();
      assertEquals(Outcome.INFO, h.invocations().get(1).outcome());
      assertEquals(applied ? 3L : 1L, h.invocations().get(2).op().value());
      CheckResult r = Checker.check(h, Duration.ofSeconds(10));
      assertEquals(Verdict.VALID, r.verdict(), "applied " + applied + ": " + r);
    }
  }

  @Test
  void aFinalReadIsRecordedAsItsErrorSaysAndRetriedAsAFreshProcessAfterInfo() {
    for (RuntimeException first : List.of(new ChoirTimeoutException("timed out"), new UnavailableException("down"))) {
      Store store = new Store(SEED);
      Recorder rec = new Recorder(null, ManualClock.ticking());
      AtomicInteger armed = new AtomicInteger();
      RegisterWorkload.Client real = store.client(false, null);
      RegisterWorkload.Client flaky = new RegisterWorkload.Client() {
        @Override
        public Optional<String> get(String key) {
          if (armed.getAndSet(0) == 1) {
            throw first;
          }
          return real.get(key);
        }

        @Override
        public void put(String key, String value) {
          real.put(key, value);
        }

        @Override
        public void compareAndSet(String key, String expected, String newValue) {
          real.compareAndSet(key, expected, newValue);
        }

        @Override
        public void close() {}
      };
      RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1"), n -> flaky, SEED, new ManualClock());
      assertEquals(1, w.runInterleaved(new Random(SEED), 1), "one op touches one key");
      armed.set(1);
      assertEquals(1, w.finalReads("n1", 3, Duration.ofSeconds(10)));
      List<Invocation> finals = rec.history().invocations().subList(1, 3);
      Outcome expected = first instanceof UnavailableException ? Outcome.FAIL : Outcome.INFO;
      assertEquals(List.of(expected, Outcome.OK), finals.stream().map(Invocation::outcome).toList(), first.toString());
      long p0 = finals.get(0).op().process();
      long p1 = finals.get(1).op().process();
      assertEquals(expected == Outcome.FAIL, p0 == p1, "a fresh process after info only: p" + p0 + ", p" + p1);
    }
  }

  @Test
  void keySlotMovesOnAfter200OpsOr10Processes() {
    RegisterWorkload.KeySlot slot = new RegisterWorkload.KeySlot(0, 200, 10);
    String first = slot.keyFor(0);
    for (int i = 1; i < 200; i++) {
      assertEquals(first, slot.keyFor(i % 5));
    }
    String second = slot.keyFor(0);
    assertTrue(!second.equals(first), "fresh key after 200 ops");
    for (long p = 1; p < 10; p++) {
      assertEquals(second, slot.keyFor(p));
    }
    assertTrue(!slot.keyFor(10).equals(second), "an 11th process gets a fresh key");
    assertEquals(3, slot.keys().size());
  }

  static void assertPerKeyBounds(History h) {
    for (Map.Entry<String, List<Invocation>> e : h.byKey().entrySet()) {
      List<Invocation> ops = e.getValue();
      long workloadOps = ops.stream().filter(i -> i.op().process() < 1_000_000).count();
      Set<Long> processes = ops.stream().map(i -> i.op().process()).collect(Collectors.toSet());
      // + 1: the final read's process
      assertTrue(workloadOps <= 200 + 1, e.getKey() + " has " + workloadOps + " ops");
      assertTrue(processes.size() <= 10 + 1, e.getKey() + " has " + processes.size() + " processes");
    }
  }
}
