package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.OpType;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.KeyValueVersion;
import io.choir.client.ReadConsistency;
import io.choir.client.ScanResult;
import io.choir.client.UnavailableException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The set workload against in-memory fakes: a correct store is VALID, lost, revived and duplicated elements are caught. */
class SetWorkloadTest {
  /** SEED drives the fakes' faults; every assertion message names it. */
  static final long SEED = Long.getLong("choir.jepsen.test.seed", 11);

  /** Bug is what a fake store does wrong. */
  enum Bug { NONE, LOSE_EVERY_50TH, APPLY_THEN_UNAVAILABLE, REPEAT_PAGE_BOUNDARY }

  /** A store of sorted keys behind one lock, with faults drawn from a seeded random source. */
  static final class Store {
    final TreeMap<String, String> data = new TreeMap<>();
    final AtomicInteger puts = new AtomicInteger();
    final AtomicInteger scans = new AtomicInteger();
    private final Bug bug;
    private final Random faults;

    Store(Bug bug, long seed) {
      this.bug = bug;
      this.faults = new Random(seed);
    }

    SetWorkload.Client client() {
      return new SetWorkload.Client() {
        @Override
        public void put(String key, String value) {
          int n = puts.incrementAndGet();
          int dice;
          synchronized (Store.this) {
            dice = faults.nextInt(40);
          }
          if (dice == 0) {
            throw new UnavailableException("no primary"); // not executed
          }
          synchronized (Store.this) {
            if (!(bug == Bug.LOSE_EVERY_50TH && n % 50 == 0)) {
              data.put(key, value);
            }
          }
          if (dice == 1) {
            throw new ChoirTimeoutException("applied, but the reply was lost");
          }
          if (bug == Bug.APPLY_THEN_UNAVAILABLE && n % 30 == 0) {
            throw new UnavailableException("said no, did it anyway");
          }
        }

        @Override
        public synchronized ScanResult scan(String startKey, String endKey, int limit, ReadConsistency consistency) {
          scans.incrementAndGet();
          String from = bug == Bug.REPEAT_PAGE_BOUNDARY && startKey.endsWith("\0")
              ? startKey.substring(0, startKey.length() - 1) : startKey;
          List<KeyValueVersion> page = new ArrayList<>();
          synchronized (Store.this) {
            for (Map.Entry<String, String> e : data.subMap(from, true, endKey, false).entrySet()) {
              if (page.size() == limit) {
                return new ScanResult(page, true);
              }
              page.add(new KeyValueVersion(e.getKey().getBytes(StandardCharsets.UTF_8),
                  e.getValue().getBytes(StandardCharsets.UTF_8), 1));
            }
          }
          return new ScanResult(page, false);
        }

        @Override
        public void close() {}
      };
    }
  }

  private static SetWorkload.Settings settings(int pageLimit, long maxAdds) {
    return new SetWorkload.Settings(6, 0, Duration.ofSeconds(1), pageLimit, maxAdds);
  }

  /** run adds until {@code maxAdds} elements are drawn (or 2 s), then reads through n1. */
  private static Recorder run(Store store, SetWorkload.Settings settings) throws InterruptedException {
    Recorder rec = new Recorder(null, System::nanoTime);
    SetWorkload w = new SetWorkload(settings, rec, List.of("n1", "n2", "n3"), node -> store.client(), SEED);
    w.start();
    for (int i = 0; i < 200 && w.elementsDrawn() < settings.maxAdds(); i++) {
      Thread.sleep(10);
    }
    w.stop();
    try (SetWorkload.Client c = store.client()) {
      assertTrue(w.read("n1", c, ReadConsistency.LINEARIZABLE, Duration.ofSeconds(5)), "seed " + SEED);
    }
    return rec;
  }

  private static SetChecker.Result check(Recorder rec) {
    return SetChecker.check(rec.history(), rec.setReads(), SetWorkload.PREFIX);
  }

  @Test
  void shouldBeValidAgainstACorrectStoreAcrossManyPages() throws Exception {
    Store store = new Store(Bug.NONE, SEED);
    Recorder rec = run(store, settings(100, 3000));
    SetChecker.Result r = check(rec);
    assertEquals(Verdict.VALID, r.verdict(), "seed " + SEED + ": " + r.summary());
    assertEquals(3000, r.attempted(), "every element drawn was added once");
    SetRead read = rec.setReads().get(0);
    assertEquals(store.data.size(), read.elements().size());
    assertTrue(read.pages() >= 25, "paged: " + read.pages());
    assertTrue(r.acknowledged() > 2500 && r.failed() > 0 && r.indeterminate() > 0,
        "seed " + SEED + ": the fake's faults show up: " + r.summary());
    assertEquals(r.indeterminate(), r.reads().get(0).recovered().size(), "this store applied every info add");
  }

  @Test
  void shouldRecordAddsAsWritesOfTheirOwnKeyAndReplaceAProcessAfterInfo() throws Exception {
    Recorder rec = run(new Store(Bug.NONE, SEED), settings(1000, 500));
    History h = rec.history(); // the builder itself refuses a process reused after info
    for (Invocation inv : h.invocations()) {
      assertEquals(OpType.WRITE, inv.op().type());
      assertEquals(SetWorkload.key(inv.op().value()), inv.op().key());
    }
    List<Invocation> infos = h.invocations().stream().filter(i -> i.outcome() == Outcome.INFO).toList();
    assertFalse(infos.isEmpty(), "seed " + SEED);
    for (Invocation info : infos) {
      assertTrue(h.invocations().stream().noneMatch(i -> i.op().process() == info.op().process() && i.id() > info.id()),
          "p" + info.op().process() + " is done after its info");
    }
  }

  @Test
  void shouldCatchAStoreThatLosesAcknowledgedAdds() throws Exception {
    SetChecker.Result r = check(run(new Store(Bug.LOSE_EVERY_50TH, SEED), settings(200, 1000)));
    assertEquals(Verdict.INVALID, r.verdict(), "seed " + SEED);
    assertFalse(r.reads().get(0).lost().isEmpty());
  }

  @Test
  void shouldCatchAStoreThatExecutesWhatItRefused() throws Exception {
    SetChecker.Result r = check(run(new Store(Bug.APPLY_THEN_UNAVAILABLE, SEED), settings(200, 1000)));
    assertEquals(Verdict.INVALID, r.verdict(), "seed " + SEED);
    assertFalse(r.reads().get(0).revived().isEmpty());
  }

  @Test
  void shouldCatchAScanThatRepeatsAPageBoundary() throws Exception {
    SetChecker.Result r = check(run(new Store(Bug.REPEAT_PAGE_BOUNDARY, SEED), settings(100, 1000)));
    assertEquals(Verdict.INVALID, r.verdict(), "seed " + SEED);
    assertEquals(r.reads().get(0).read().pages() - 1, r.reads().get(0).duplicated().size());
  }

  @Test
  void shouldRetryAFailedFinalReadUntilItSucceeds() throws Exception {
    Store store = new Store(Bug.NONE, SEED);
    store.data.put(SetWorkload.key(0), "0");
    AtomicInteger calls = new AtomicInteger();
    SetWorkload.Client flaky = new SetWorkload.Client() {
      @Override
      public void put(String key, String value) {
        throw new AssertionError("a read does not write");
      }

      @Override
      public ScanResult scan(String startKey, String endKey, int limit, ReadConsistency consistency) {
        if (calls.incrementAndGet() <= 2) {
          throw new ChoirTimeoutException("view change");
        }
        return store.client().scan(startKey, endKey, limit, consistency);
      }

      @Override
      public void close() {}
    };
    Recorder rec = new Recorder(null, System::nanoTime);
    SetWorkload w = new SetWorkload(settings(10, 10), rec, List.of("n1"), n -> flaky, SEED);
    assertTrue(w.read("n2", flaky, ReadConsistency.SEQUENTIAL, Duration.ofSeconds(10)));
    List<SetRead> reads = rec.setReads();
    assertEquals(List.of(Outcome.FAIL, Outcome.FAIL, Outcome.OK), reads.stream().map(SetRead::outcome).toList());
    assertEquals(List.of(0L), reads.get(2).elements());
    assertEquals("sequential", reads.get(2).consistency());
    assertEquals("n2", reads.get(2).node());
    assertTrue(reads.get(0).error().contains("view change"));
  }

  @Test
  void shouldGiveUpWhenTheBudgetRunsOutAndLeaveTheVerdictUnknown() throws Exception {
    SetWorkload.Client down = new SetWorkload.Client() {
      @Override
      public void put(String key, String value) {
        throw new UnavailableException("down");
      }

      @Override
      public ScanResult scan(String startKey, String endKey, int limit, ReadConsistency consistency) {
        throw new UnavailableException("down");
      }

      @Override
      public void close() {}
    };
    Recorder rec = new Recorder(null, System::nanoTime);
    SetWorkload w = new SetWorkload(settings(10, 10), rec, List.of("n1"), n -> down, SEED);
    assertFalse(w.add(down, 0, 0, "n1"), "unavailable is a definite fail: keep the process");
    assertFalse(w.read("n1", down, ReadConsistency.LINEARIZABLE, Duration.ofMillis(700)));
    assertTrue(rec.setReads().size() >= 2, "tried again: " + rec.setReads().size());
    assertEquals(Verdict.UNKNOWN, check(rec).verdict());
  }

  @Test
  void shouldReadMalformedKeysAsAnElementNoOneAdded() {
    assertEquals("set/00000042", SetWorkload.key(42));
    assertEquals(42, SetWorkload.element("set/00000042", "42"));
    assertEquals(-1, SetWorkload.element("set/00000042", "43"), "value and key disagree");
    assertEquals(-1, SetWorkload.element("set/42", "42"), "not the workload's spelling");
    assertEquals(-1, SetWorkload.element("set/abc", "abc"));
    assertEquals(-1, SetWorkload.element("other/00000001", "1"));
  }
}
