package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.OpType;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import io.choir.client.BusyException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.KeyValueVersion;
import io.choir.client.ReadConsistency;
import io.choir.client.ScanResult;
import io.choir.client.UnavailableException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The set workload against in-memory fakes: a correct store is VALID, lost, revived and duplicated
 * elements are caught. The runs driven by {@code runInterleaved} are a function of the seed
 * ({@code -Dchoir.jepsen.test.seed=N}) and replay exactly; the one on worker threads waits for its adds,
 * not for a time; the final reads' pauses and budgets run on a manual clock.
 */
class SetWorkloadTest {
  /** SEED drives the fakes' faults and the order of the workers' turns; every assertion message names it. */
  static final long SEED = TestSeeds.seed("SetWorkloadTest", 11);
  private static final String REPLAY = TestSeeds.replay(SEED);
  /** THREADED_DEADLINE only bounds a broken threaded run; a healthy one needs well under a second. */
  private static final Duration THREADED_DEADLINE = Duration.ofSeconds(60);

  /** How a test drives the workers. */
  enum Mode { INTERLEAVED, THREADS }

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

  /** run adds until {@code maxAdds} elements are drawn, then reads through n1. */
  private static Recorder run(Store store, SetWorkload.Settings settings) throws InterruptedException {
    return run(store, settings, Mode.INTERLEAVED);
  }

  /**
   * run adds until {@code maxAdds} elements are drawn, interleaved on this thread from the seed or on
   * worker threads (waiting for the adds, with a deadline), then reads through n1.
   */
  private static Recorder run(Store store, SetWorkload.Settings settings, Mode mode) throws InterruptedException {
    Recorder rec = new Recorder(null, mode == Mode.INTERLEAVED ? ManualClock.ticking() : System::nanoTime);
    ManualClock clock = new ManualClock();
    SetWorkload w = new SetWorkload(settings, rec, List.of("n1", "n2", "n3"), node -> store.client(), SEED,
        mode == Mode.INTERLEAVED ? clock : Clock.SYSTEM);
    if (mode == Mode.INTERLEAVED) {
      w.runInterleaved(new Random(SEED), Integer.MAX_VALUE); // until every worker has drawn past maxAdds
    } else {
      w.start();
      try {
        Await.until(() -> w.elementsDrawn() >= settings.maxAdds(), THREADED_DEADLINE,
            () -> REPLAY + ": " + settings.maxAdds() + " adds, have " + w.elementsDrawn());
      } finally {
        w.stop();
      }
    }
    assertEquals(settings.maxAdds(), w.elementsDrawn(), REPLAY);
    try (SetWorkload.Client c = store.client()) {
      assertTrue(w.read("n1", c, ReadConsistency.LINEARIZABLE, Duration.ofSeconds(5)), REPLAY);
    }
    return rec;
  }

  private static SetChecker.Result check(Recorder rec) {
    return SetChecker.check(rec.history(), rec.setReads(), SetWorkload.PREFIX);
  }

  @Test
  void shouldBeValidAgainstACorrectStoreAcrossManyPages() throws Exception {
    validAgainstACorrectStore(Mode.INTERLEAVED);
  }

  @Test
  void shouldBeValidAgainstACorrectStoreOnConcurrentWorkers() throws Exception {
    validAgainstACorrectStore(Mode.THREADS);
  }

  private static void validAgainstACorrectStore(Mode mode) throws Exception {
    Store store = new Store(Bug.NONE, SEED);
    Recorder rec = run(store, settings(100, 3000), mode);
    SetChecker.Result r = check(rec);
    assertEquals(Verdict.VALID, r.verdict(), REPLAY + ": " + r.summary());
    assertEquals(3000, r.attempted(), REPLAY + ": every element drawn was added once");
    SetRead read = rec.setReads().get(0);
    assertEquals(store.data.size(), read.elements().size());
    assertTrue(read.pages() >= 25, REPLAY + ": paged: " + read.pages());
    assertTrue(r.acknowledged() > 2500 && r.failed() > 0 && r.indeterminate() > 0,
        REPLAY + ": the fake's faults show up: " + r.summary());
    assertEquals(r.indeterminate(), r.reads().get(0).recovered().size(), REPLAY + ": this store applied every info add");
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
    assertFalse(infos.isEmpty(), REPLAY);
    for (Invocation info : infos) {
      assertTrue(h.invocations().stream().noneMatch(i -> i.op().process() == info.op().process() && i.id() > info.id()),
          "p" + info.op().process() + " is done after its info");
    }
  }

  @Test
  void shouldCatchAStoreThatLosesAcknowledgedAdds() throws Exception {
    SetChecker.Result r = check(run(new Store(Bug.LOSE_EVERY_50TH, SEED), settings(200, 1000)));
    assertEquals(Verdict.INVALID, r.verdict(), REPLAY);
    assertFalse(r.reads().get(0).lost().isEmpty());
  }

  @Test
  void shouldCatchAStoreThatExecutesWhatItRefused() throws Exception {
    SetChecker.Result r = check(run(new Store(Bug.APPLY_THEN_UNAVAILABLE, SEED), settings(200, 1000)));
    assertEquals(Verdict.INVALID, r.verdict(), REPLAY);
    assertFalse(r.reads().get(0).revived().isEmpty());
  }

  @Test
  void shouldCatchAScanThatRepeatsAPageBoundary() throws Exception {
    SetChecker.Result r = check(run(new Store(Bug.REPEAT_PAGE_BOUNDARY, SEED), settings(100, 1000)));
    assertEquals(Verdict.INVALID, r.verdict(), REPLAY);
    assertEquals(r.reads().get(0).read().pages() - 1, r.reads().get(0).duplicated().size());
  }

  /** flakyScans is a client whose first {@code failures} scans end with {@code error}, then reads {@code store}. */
  private static SetWorkload.Client flakyScans(Store store, int failures, RuntimeException error) {
    AtomicInteger calls = new AtomicInteger();
    return new SetWorkload.Client() {
      @Override
      public void put(String key, String value) {
        throw new AssertionError("a read does not write");
      }

      @Override
      public ScanResult scan(String startKey, String endKey, int limit, ReadConsistency consistency) {
        if (calls.incrementAndGet() <= failures) {
          throw error;
        }
        return store.client().scan(startKey, endKey, limit, consistency);
      }

      @Override
      public void close() {}
    };
  }

  @Test
  void shouldRetryAFinalReadOfUnknownOutcomeAsAFreshProcessUntilItSucceeds() throws Exception {
    Store store = new Store(Bug.NONE, SEED);
    store.data.put(SetWorkload.key(0), "0");
    SetWorkload.Client flaky = flakyScans(store, 2, new ChoirTimeoutException("view change"));
    Recorder rec = new Recorder(null, ManualClock.ticking());
    ManualClock clock = new ManualClock();
    SetWorkload w = new SetWorkload(settings(10, 10), rec, List.of("n1"), n -> flaky, SEED, clock);
    assertTrue(w.read("n2", flaky, ReadConsistency.SEQUENTIAL, Duration.ofSeconds(10)));
    List<SetRead> reads = rec.setReads();
    assertEquals(List.of(Outcome.INFO, Outcome.INFO, Outcome.OK), reads.stream().map(SetRead::outcome).toList(),
        "a timeout promises nothing: info");
    assertEquals(3, reads.stream().map(SetRead::process).distinct().count(), "a fresh process after each info");
    assertEquals(List.of(0L), reads.get(2).elements());
    assertEquals("sequential", reads.get(2).consistency());
    assertEquals("n2", reads.get(2).node());
    assertTrue(reads.get(0).error().contains("view change") && reads.get(0).error().contains("outcome unknown"),
        reads.get(0).error());
    assertEquals(2 * SetWorkload.RETRY_PAUSE_NANOS, clock.nanoTime(), "paused between attempts, on the clock");
  }

  @Test
  void shouldRetryAFailedFinalReadAsTheSameProcess() throws Exception {
    Store store = new Store(Bug.NONE, SEED);
    SetWorkload.Client flaky = flakyScans(store, 1, new UnavailableException("no primary"));
    Recorder rec = new Recorder(null, ManualClock.ticking());
    SetWorkload w = new SetWorkload(settings(10, 10), rec, List.of("n1"), n -> flaky, SEED, new ManualClock());
    assertTrue(w.read("n1", flaky, ReadConsistency.LINEARIZABLE, Duration.ofSeconds(10)));
    List<SetRead> reads = rec.setReads();
    assertEquals(List.of(Outcome.FAIL, Outcome.OK), reads.stream().map(SetRead::outcome).toList());
    assertEquals(reads.get(0).process(), reads.get(1).process(), "nothing outstanding after a fail");
  }

  @Test
  void shouldRecordFailedAndUnknownFinalReadsInTheHistoryFile() throws Exception {
    StringWriter out = new StringWriter();
    Recorder rec = new Recorder(out, ManualClock.ticking());
    SetWorkload w = new SetWorkload(settings(10, 10), rec, List.of("n1"), n -> null, SEED, new ManualClock());
    Store store = new Store(Bug.NONE, SEED);
    w.read("n1", flakyScans(store, 1, new ChoirTimeoutException("lost")), ReadConsistency.LINEARIZABLE,
        Duration.ofSeconds(10));
    w.read("n1", flakyScans(store, 1, new BusyException("busy")), ReadConsistency.LINEARIZABLE, Duration.ofSeconds(10));
    rec.close();
    List<SetRead> back = HistoryFile.read(new StringReader(out.toString())).setReads();
    assertEquals(rec.setReads(), back);
    assertEquals(List.of(Outcome.INFO, Outcome.OK, Outcome.FAIL, Outcome.OK), back.stream().map(SetRead::outcome).toList());
    assertEquals(2, check(rec).failedReads(), "neither learnt anything");
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
    Recorder rec = new Recorder(null, ManualClock.ticking());
    ManualClock clock = new ManualClock();
    SetWorkload w = new SetWorkload(settings(10, 10), rec, List.of("n1"), n -> down, SEED, clock);
    assertFalse(w.add(down, 0, 0, "n1"), "unavailable is a definite fail: keep the process");
    assertFalse(w.read("n1", down, ReadConsistency.LINEARIZABLE, Duration.ofMillis(700)));
    // at 0 ms, then after a pause of 500 ms, then the last 200 ms of the budget pass without a third try
    assertEquals(2, rec.setReads().size(), "tried again: " + rec.setReads());
    assertEquals(Duration.ofMillis(700).toNanos(), clock.nanoTime());
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
