package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.checker.Checker;
import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.Operation;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import java.io.StringReader;
import java.io.StringWriter;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The recorder's history.jsonl reads back to the same history, nemesis lines apart. */
class HistoryFileTest {

  static Recorder sample(StringWriter out) {
    AtomicLong clock = new AtomicLong(1_000);
    Recorder r = new Recorder(out, () -> clock.addAndGet(1_000_000));
    r.invoke(Operation.write(0, "k", 3), "n1");
    r.nemesis(NemesisEvent.START, "partition-one", List.of("n2"), "n1 deaf to n2");
    r.invoke(Operation.read(1, "k"), "n2");
    r.ok(0);
    r.okRead(1, 3L);
    r.invoke(Operation.cas(2, "k", 3L, 4), "n3");
    r.info(2, "timeout");
    r.invoke(Operation.cas(3, "k", 1L, 2), "n1");
    r.fail(3, "cas-failed");
    r.invoke(Operation.read(3, "k"), "n1");
    r.okRead(3, 4L); // the info CAS 3->4 took effect
    r.nemesis(NemesisEvent.STOP, "partition-one", List.of("n2"), "stopped");
    r.invoke(Operation.read(4, "j"), "n1");
    r.okRead(4, null);
    r.invoke(Operation.write(5, "j", 1), "n2"); // never completes: open (info) at the end
    return r;
  }

  @Test
  void roundTrip() throws Exception {
    StringWriter out = new StringWriter();
    Recorder r = sample(out);
    r.close();
    History recorded = r.history();
    HistoryFile read = HistoryFile.read(new StringReader(out.toString()));
    assertEquals(recorded.events(), read.history().events());
    assertEquals(recorded.invocations(), read.history().invocations());
    assertEquals(r.nemesisEvents(), read.nemesis());
    assertEquals(2, read.nemesis().size());
    assertEquals("n1 deaf to n2", read.nemesis().get(0).detail());
    // the op lines alone are the checker's own format
    assertEquals(recorded.events(), History.fromJsonLines(out.toString().lines()
        .filter(l -> !l.contains("\"nemesis\"")).reduce("", (a, b) -> a + b + "\n")).events());
  }

  @Test
  void setReadsRoundTripApartFromTheOps() throws Exception {
    StringWriter out = new StringWriter();
    AtomicLong clock = new AtomicLong();
    Recorder r = new Recorder(out, () -> clock.addAndGet(1_000));
    r.invoke(Operation.write(0, SetWorkload.key(0), 0), "n1");
    r.ok(0);
    r.invoke(Operation.write(1, SetWorkload.key(1), 1), "n2");
    r.info(1, "timeout");
    r.nemesis(NemesisEvent.HEAL, "heal-all", List.of("n1", "n2"), "healed");
    r.setReadInvoke(2, SetWorkload.PREFIX, "linearizable", "n1");
    r.setReadFail(2, "ChoirTimeoutException: timed out");
    r.setReadInvoke(2, SetWorkload.PREFIX, "linearizable", "n1");
    r.setReadOk(2, List.of(0L, 1L), 1);
    r.setReadInvoke(3, SetWorkload.PREFIX, "sequential", "n2");
    r.setReadOk(3, List.of(0L), 1);
    r.setReadInvoke(4, SetWorkload.PREFIX, "sequential", "n3"); // never completes
    r.close();
    assertTrue(out.toString().contains("\"f\":\"scan\""));
    HistoryFile read = HistoryFile.read(new StringReader(out.toString()));
    assertEquals(r.history().events(), read.history().events());
    assertEquals(r.setReads(), read.setReads());
    assertEquals(List.of(Outcome.FAIL, Outcome.OK, Outcome.OK, Outcome.INFO),
        read.setReads().stream().map(SetRead::outcome).toList());
    assertEquals(List.of(0L, 1L), read.setReads().get(1).elements());
    assertEquals("ChoirTimeoutException: timed out", read.setReads().get(0).error());
    assertEquals(1, read.nemesis().size());
    assertEquals(Verdict.VALID,
        SetChecker.check(read.history(), read.setReads(), SetWorkload.PREFIX).verdict(), "re-checkable from the file");
  }

  @Test
  void timesAreRelativeToTheStartAndOrdered() throws Exception {
    StringWriter out = new StringWriter();
    Recorder r = sample(out);
    History h = r.history();
    long previous = -1;
    for (var e : h.events()) {
      assertTrue(e.timeNanos() > previous);
      previous = e.timeNanos();
    }
    assertEquals(1_000_000, h.events().get(0).timeNanos(), "time 0 is the recorder's creation");
    assertTrue(r.nemesisEvents().get(0).timeNanos() > h.events().get(0).timeNanos());
  }

  @Test
  void outcomesAreKept() throws Exception {
    History h = sample(new StringWriter()).history();
    List<Invocation> invs = h.invocations();
    assertEquals(Outcome.OK, invs.get(0).outcome());
    assertEquals("n1", invs.get(0).node());
    assertEquals(Outcome.INFO, invs.get(2).outcome());
    assertEquals(Outcome.FAIL, invs.get(3).outcome());
    assertEquals(Outcome.INFO, invs.get(invs.size() - 1).outcome(), "never completed = info");
    assertEquals(Verdict.VALID, Checker.check(h, Duration.ofSeconds(5)).verdict());
  }

  @Test
  void aStaleReadIsInvalid() {
    StringWriter out = new StringWriter();
    AtomicLong clock = new AtomicLong();
    Recorder r = new Recorder(out, () -> clock.addAndGet(10));
    r.invoke(Operation.write(0, "k", 1), "n1");
    r.ok(0);
    r.invoke(Operation.read(1, "k"), "n2");
    r.okRead(1, null); // absent after an acknowledged write
    assertEquals(Verdict.INVALID, Checker.check(r.history(), Duration.ofSeconds(5)).verdict());
  }

  @Test
  void misuseIsRejected() {
    Recorder r = new Recorder(null, System::nanoTime);
    r.invoke(Operation.write(0, "k", 1), "n1");
    r.info(0, "x");
    assertThrows(IllegalArgumentException.class, () -> r.invoke(Operation.read(0, "k"), "n1"),
        "a process that ended with info must not be reused");
  }
}
