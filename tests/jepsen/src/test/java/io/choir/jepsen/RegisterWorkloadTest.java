package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.Checker;
import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.Operation;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.UnavailableException;
import java.io.StringWriter;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The workload against in-memory fakes: a linearizable store is VALID, a broken one is caught. */
class RegisterWorkloadTest {

  /** A linearizable register store: one lock around a map. */
  static final class Store {
    final Map<String, String> data = new HashMap<>();
    final Map<String, String> stale = new ConcurrentHashMap<>(); // what a lagging replica would return
    final AtomicInteger calls = new AtomicInteger();

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
          maybeFail(true);
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
          maybeFail(false);
          synchronized (Store.this) {
            if (!expected.equals(data.get(key))) {
              throw new CasFailedException("no", null, 0, -1);
            }
            String old = data.put(key, newValue);
            stale.put(key, old);
          }
        }

        private void maybeFail(boolean applyFirst) {
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

  @Test
  void aLinearizableStoreGivesAValidHistory() throws Exception {
    Store store = new Store();
    Recorder rec = new Recorder(new StringWriter(), System::nanoTime);
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1", "n2", "n3"),
        node -> store.client(false, new Random(node.hashCode())), 7);
    w.start();
    // until both key slots moved on twice (> 400 ops each way), not a fixed sleep: the machine is shared
    for (int i = 0; i < 1000 && w.keys().size() < 6; i++) {
      Thread.sleep(10);
    }
    w.stop();
    assertEquals(w.keys().size(), w.finalReads("n1", 3, Duration.ofSeconds(10)));
    History h = rec.history();
    assertTrue(h.invocations().size() > 500, "ops: " + h.invocations().size());
    assertTrue(w.keys().size() > 2, "moved on to fresh keys: " + w.keys());
    assertEquals(Verdict.VALID, Checker.check(h, Duration.ofSeconds(30)).verdict());
    assertPerKeyBounds(h);
    // every key got a final read that succeeded
    Set<String> finalRead = h.invocations().stream()
        .filter(i -> i.op().type() == io.choir.checker.OpType.READ && i.outcome() == Outcome.OK)
        .map(i -> i.op().key()).collect(Collectors.toCollection(TreeSet::new));
    assertTrue(finalRead.containsAll(w.keys()));
  }

  @Test
  void staleReadsAreCaught() throws Exception {
    Store store = new Store();
    Recorder rec = new Recorder(null, System::nanoTime);
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1", "n2", "n3"),
        node -> store.client(true, new Random(node.hashCode())), 7);
    w.start();
    Thread.sleep(400);
    w.stop();
    assertEquals(Verdict.INVALID, Checker.check(rec.history(), Duration.ofSeconds(30)).verdict());
  }

  @Test
  void garbageValuesAreCaughtByTheGarbageReadChecker() throws Exception {
    Store store = new Store();
    Recorder rec = new Recorder(null, System::nanoTime);
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1", "n2", "n3"), node -> {
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
    }, 7);
    w.start();
    Thread.sleep(300);
    w.stop();
    GarbageReads g = GarbageReads.check(rec.history());
    assertFalse(g.valid(), g.summary());
    assertEquals(Set.of(-1L, 7L), g.garbage().stream().map(i -> i.op().value()).collect(Collectors.toSet()));
    assertTrue(GarbageReads.check(historyOfACorrectStore()).valid());
  }

  private static History historyOfACorrectStore() throws InterruptedException {
    Store store = new Store();
    Recorder rec = new Recorder(null, System::nanoTime);
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1"), node -> store.client(false, null), 7);
    w.start();
    Thread.sleep(200);
    w.stop();
    return rec.history();
  }

  @Test
  void outcomesFollowTheClientsErrors() {
    Recorder rec = new Recorder(null, System::nanoTime);
    RegisterWorkload w = new RegisterWorkload(fast(), rec, List.of("n1"), n -> null, 1);
    RegisterWorkload.Client timeouts = new RegisterWorkload.Client() {
      @Override
      public Optional<String> get(String key) {
        throw new ChoirTimeoutException("read timed out");
      }

      @Override
      public void put(String key, String value) {
        throw new ChoirTimeoutException("write timed out");
      }

      @Override
      public void compareAndSet(String key, String expected, String newValue) {
        throw new CasFailedException("cas failed", null, 0, -1);
      }

      @Override
      public void close() {}
    };
    assertTrue(w.perform(timeouts, Operation.write(0, "k", 1), "n1"), "a write timeout is info: replace the process");
    assertEquals(false, w.perform(timeouts, Operation.read(1, "k"), "n1"), "a read timeout is a fail");
    assertEquals(false, w.perform(timeouts, Operation.cas(1, "k", 1L, 2), "n1"), "CAS_FAILED is a fail");
    List<Invocation> invs = rec.history().invocations();
    assertEquals(List.of(Outcome.INFO, Outcome.FAIL, Outcome.FAIL), invs.stream().map(Invocation::outcome).toList());
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
