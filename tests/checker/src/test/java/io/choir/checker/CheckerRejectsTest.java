package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** CheckerRejectsTest holds hand-written non-linearizable histories the checker must reject. */
class CheckerRejectsTest {

  private static Anomaly invalid(CheckResult r) {
    assertEquals(Verdict.INVALID, r.verdict(), r::toString);
    assertEquals(1, r.anomalies().size(), r::toString);
    return r.anomalies().get(0);
  }

  @Test
  void staleReadAfterALaterWriteCompletedIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .writeOk(1, "k", 2)
        .readOk(2, "k", 1L)
        .check();
    Anomaly a = invalid(r);
    assertEquals(OpType.READ, a.op().op().type());
    assertEquals(2, a.op().op().process());
    assertEquals(List.of("2"), a.statesBefore());
  }

  @Test
  void lostWriteNeverVisibleWhileLaterReadsSeeTheOlderValueIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .write(2, "k", 2)
        .readOk(3, "k", 1L) // fine so far: the write of 2 is still in flight
        .ok(2)              // write of 2 acknowledged
        .readOk(3, "k", 1L) // lost
        .readOk(4, "k", 1L)
        .check();
    Anomaly a = invalid(r);
    assertEquals(3, a.op().op().process());
    assertEquals(1L, a.op().op().value());
  }

  @Test
  void lostWriteAmongConcurrentWritesIsInvalid() {
    // 2 and 3 are written concurrently; reads see 3, then 2, then 3 again: one of them was lost and resurfaced
    CheckResult r = Hist.of()
        .write(1, "k", 2)
        .write(2, "k", 3)
        .ok(1)
        .ok(2)
        .readOk(3, "k", 3L)
        .readOk(3, "k", 2L)
        .check();
    Anomaly a = invalid(r);
    assertEquals(2L, a.op().op().value());
  }

  @Test
  void twoConcurrentCasFromTheSameExpectedValueBothSucceedingIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 0)
        .cas(2, "k", 0L, 1)
        .cas(3, "k", 0L, 2)
        .ok(2)
        .ok(3)
        .check();
    Anomaly a = invalid(r);
    assertEquals(OpType.CAS, a.op().op().type());
    assertEquals(1, a.concurrent().size());
    assertEquals(OpType.CAS, a.concurrent().get(0).op().type());
  }

  @Test
  void casSucceedingAlthoughTheValueDiffersIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .cas(2, "k", 5L, 6)
        .ok(2)
        .check();
    Anomaly a = invalid(r);
    assertEquals(List.of("1"), a.statesBefore());
  }

  @Test
  void casFromAbsentSucceedingAfterACompletedWriteIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .cas(2, "k", null, 6)
        .ok(2)
        .check();
    invalid(r);
  }

  @Test
  void readOfAValueOnlyAFailedCasWouldHaveWrittenIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .cas(2, "k", 1L, 2)
        .fail(2)
        .readOk(3, "k", 2L)
        .check();
    invalid(r);
  }

  @Test
  void readOfANeverWrittenValueIsInvalid() {
    CheckResult r = Hist.of()
        .write(1, "k", 1)
        .read(2, "k")
        .ok(1)
        .ok(2, 42L)
        .check();
    Anomaly a = invalid(r);
    assertEquals(42L, a.op().op().value());
    assertEquals(List.of("1"), a.statesBefore(), a::toString);
  }

  @Test
  void readOfAbsentAfterACompletedWriteIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .readOk(2, "k", null)
        .check();
    Anomaly a = invalid(r);
    assertEquals(null, a.op().op().value());
  }

  @Test
  void readOfAFailedWriteIsInvalid() {
    CheckResult r = Hist.of()
        .write(1, "k", 1)
        .fail(1)
        .readOk(2, "k", 1L)
        .check();
    invalid(r);
  }

  @Test
  void readSeeingAnInfoWriteBeforeItWasInvokedIsInvalid() {
    CheckResult r = Hist.of()
        .readOk(2, "k", 7L)
        .write(1, "k", 7)
        .info(1)
        .check();
    Anomaly a = invalid(r);
    assertEquals(2, a.op().op().process());
  }

  @Test
  void readsGoingBackAfterSeeingAnInfoWriteAreInvalid() {
    // once the unknown write of 2 is seen it has happened; a later read cannot go back to 1
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .write(2, "k", 2)
        .info(2)
        .readOk(3, "k", 2L)
        .readOk(3, "k", 1L)
        .check();
    Anomaly a = invalid(r);
    assertEquals(1L, a.op().op().value());
  }

  @Test
  void nonMonotonicReadsDuringOneWriteAreInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "k", 1)
        .write(1, "k", 2)
        .readOk(2, "k", 2L)
        .readOk(3, "k", 1L) // starts after the read of 2 ended, so it must see 2 too
        .ok(1)
        .check();
    Anomaly a = invalid(r);
    assertEquals(3, a.op().op().process());
  }

  @Test
  void onlyTheBrokenKeyIsInvalid() {
    CheckResult r = Hist.of()
        .writeOk(1, "a", 1)
        .writeOk(1, "b", 1)
        .readOk(2, "a", 1L)
        .readOk(2, "b", 2L)
        .check();
    invalid(r);
    assertEquals(Verdict.VALID, r.key("a").orElseThrow().verdict());
    assertEquals(Verdict.INVALID, r.key("b").orElseThrow().verdict());
    assertTrue(r.key("a").orElseThrow().anomaly().isEmpty());
  }

  @Test
  void absentInitialValueIsTheDefault() {
    CheckResult r = Hist.of().readOk(1, "k", 0L).check();
    invalid(r);
  }
}
