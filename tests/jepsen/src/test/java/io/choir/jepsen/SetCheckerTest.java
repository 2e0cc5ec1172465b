package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.choir.checker.Operation;
import io.choir.checker.Verdict;
import java.util.Arrays;
import java.util.List;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** The set checker on hand-written histories: what it must reject, what it must accept, when it cannot say. */
class SetCheckerTest {

  /** H writes a set history by hand: adds with their outcome, then final reads. */
  static final class H {
    private final AtomicLong clock = new AtomicLong();
    final Recorder r = new Recorder(null, () -> clock.addAndGet(1_000));
    private long process;

    H ok(long... elements) {
      for (long e : elements) {
        invoke(e);
        r.ok(process++);
      }
      return this;
    }

    H fail(long... elements) {
      for (long e : elements) {
        invoke(e);
        r.fail(process++, "UnavailableException: no primary");
      }
      return this;
    }

    H info(long... elements) {
      for (long e : elements) {
        invoke(e);
        r.info(process++, "timeout");
      }
      return this;
    }

    /** open adds whose invocation never completed (the run stopped waiting). */
    H open(long... elements) {
      for (long e : elements) {
        invoke(e);
        process++;
      }
      return this;
    }

    H read(String consistency, String node, Long... elements) {
      r.setReadInvoke(process, SetWorkload.PREFIX, consistency, node);
      r.setReadOk(process++, Arrays.asList(elements), 1);
      return this;
    }

    H read(Long... elements) {
      return read("linearizable", "n1", elements);
    }

    H failedRead() {
      r.setReadInvoke(process, SetWorkload.PREFIX, "linearizable", "n1");
      r.setReadFail(process++, "ChoirTimeoutException: timed out");
      return this;
    }

    SetChecker.Result check() {
      return SetChecker.check(r.history(), r.setReads(), SetWorkload.PREFIX);
    }

    private void invoke(long element) {
      r.invoke(Operation.write(process, SetWorkload.key(element), element), "n" + (1 + process % 3));
    }
  }

  private static SortedSet<Long> set(long... elements) {
    return new TreeSet<>(LongStream.of(elements).boxed().toList());
  }

  @Test
  void shouldAcceptEveryAcknowledgedAddPresentWhateverBecameOfTheUnknownOnes() {
    SetChecker.Result r = new H().ok(0, 1, 2).info(3, 4).open(5).fail(6).read(2L, 0L, 1L, 3L, 5L).check();
    assertEquals(Verdict.VALID, r.verdict(), r.summary());
    assertEquals(7, r.attempted());
    assertEquals(3, r.acknowledged());
    assertEquals(1, r.failed());
    assertEquals(3, r.indeterminate(), "info and never completed");
    SetChecker.ReadResult read = r.reads().get(0);
    assertEquals(set(3, 5), read.recovered());
    assertTrue(read.lost().isEmpty() && read.unexpected().isEmpty() && read.duplicated().isEmpty());
    JsonNode json = r.toJson();
    assertTrue(json.get("valid").booleanValue());
    assertEquals(5, json.at("/reads/0/ok").asInt());
    assertEquals(2, json.at("/reads/0/recoveredCount").asInt());
  }

  @Test
  void shouldRejectAnAcknowledgedAddMissingFromTheFinalRead() {
    SetChecker.Result r = new H().ok(0, 1, 2).read(0L, 2L).check();
    assertEquals(Verdict.INVALID, r.verdict());
    assertEquals(set(1), r.reads().get(0).lost());
    assertEquals(1, r.toJson().at("/reads/0/lost/0").asLong());
    assertTrue(r.summary().contains("1 lost"), r.summary());
  }

  @Test
  void shouldRejectAnElementNoOneAdded() {
    SetChecker.Result r = new H().ok(0).read(0L, 7L, -1L).check();
    assertEquals(Verdict.INVALID, r.verdict());
    assertEquals(set(-1, 7), r.reads().get(0).unexpected());
  }

  @Test
  void shouldRejectAnElementReadTwice() {
    SetChecker.Result r = new H().ok(0, 1).read(0L, 1L, 1L).check();
    assertEquals(Verdict.INVALID, r.verdict());
    assertEquals(set(1), r.reads().get(0).duplicated());
  }

  @Test
  void shouldRejectAnElementWhoseAddFailedDefinitely() {
    SetChecker.Result r = new H().ok(0).fail(1).read(0L, 1L).check();
    assertEquals(Verdict.INVALID, r.verdict());
    assertEquals(set(1), r.reads().get(0).revived());
    assertTrue(r.reads().get(0).unexpected().isEmpty(), "attempted, so not from nowhere");
  }

  @Test
  void shouldBeUnknownWithoutASuccessfulLinearizableRead() {
    assertEquals(Verdict.UNKNOWN, new H().ok(0, 1).check().verdict(), "no read at all");
    SetChecker.Result failed = new H().ok(0, 1).failedRead().failedRead().check();
    assertEquals(Verdict.UNKNOWN, failed.verdict());
    assertEquals(2, failed.failedReads());
    assertEquals("unknown", failed.toJson().get("valid").asText());
    assertTrue(failed.summary().startsWith("no final read succeeded"), failed.summary());
    SetChecker.Result sequentialOnly = new H().ok(0, 1).failedRead().read("sequential", "n2", 0L, 1L).check();
    assertEquals(Verdict.UNKNOWN, sequentialOnly.verdict(), "a replica's read does not stand for the linearizable one");
  }

  @Test
  void shouldStillRejectAnAnomalyWhenTheLinearizableReadFailed() {
    SetChecker.Result r = new H().ok(0).failedRead().read("sequential", "n2", 0L, 9L).check();
    assertEquals(Verdict.INVALID, r.verdict());
  }

  @Test
  void shouldCheckEveryReplicaReadAndReportTheLinearizableOneFirst() {
    SetChecker.Result r = new H().ok(0, 1, 2)
        .read("sequential", "n1", 0L, 1L, 2L)
        .read("linearizable", "n2", 0L, 1L, 2L)
        .read("sequential", "n3", 0L, 2L) // n3 diverged: it lost 1
        .check();
    assertEquals(Verdict.INVALID, r.verdict());
    assertEquals(3, r.reads().size());
    assertEquals("linearizable", r.reads().get(0).read().consistency());
    assertTrue(r.reads().get(0).valid());
    assertEquals(set(1), r.reads().get(2).lost());
    assertEquals("n3", r.toJson().at("/reads/2/node").asText());
    assertTrue(r.summary().endsWith("2 replica reads, 1 with anomalies"), r.summary());
  }

  @Test
  void shouldCapTheListsButCountExactly() {
    H h = new H();
    for (long e = 0; e < 120; e++) {
      h.ok(e);
    }
    SetChecker.Result r = h.read().check();
    assertEquals(120, r.reads().get(0).lost().size());
    assertEquals(120, r.toJson().at("/reads/0/lostCount").asInt());
    assertEquals(SetChecker.MAX_LISTED, r.toJson().at("/reads/0/lost").size());
  }

  @Test
  void shouldIgnoreWritesOutsideThePrefix() {
    H h = new H().ok(0);
    h.r.invoke(Operation.write(99, "other", 5), "n1");
    h.r.ok(99);
    SetChecker.Result r = h.read(0L).check();
    assertEquals(Verdict.VALID, r.verdict());
    assertEquals(1, r.attempted());
  }

  @Test
  void shouldRefuseAHistoryThatAddsAnElementTwice() {
    H h = new H().ok(3, 3);
    assertThrows(IllegalArgumentException.class, () -> SetChecker.check(h.r.history(), List.of(), SetWorkload.PREFIX));
  }
}
