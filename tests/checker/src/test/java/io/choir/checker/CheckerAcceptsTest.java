package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** CheckerAcceptsTest holds hand-written linearizable histories the checker must accept. */
class CheckerAcceptsTest {

  private static void valid(CheckResult r) {
    assertEquals(Verdict.VALID, r.verdict(), r::toString);
  }

  @Test
  void emptyHistoryIsValid() {
    valid(Hist.of().check());
  }

  @Test
  void readsOfAbsentBeforeAnyWriteAreValid() {
    valid(Hist.of().readOk(1, "k", null).readOk(2, "k", null).writeOk(1, "k", 1).readOk(2, "k", 1L).check());
  }

  @Test
  void readConcurrentWithAWriteMayReturnTheOldValue() {
    valid(Hist.of().writeOk(1, "k", 1).write(1, "k", 2).read(2, "k").ok(2, 1L).ok(1).check());
  }

  @Test
  void readConcurrentWithAWriteMayReturnTheNewValue() {
    valid(Hist.of().writeOk(1, "k", 1).write(1, "k", 2).read(2, "k").ok(2, 2L).ok(1).check());
  }

  @Test
  void readInvokedBeforeAWriteAndReturningAfterItMaySeeIt() {
    valid(Hist.of().read(2, "k").write(1, "k", 5).ok(1).ok(2, 5L).check());
  }

  @Test
  void concurrentReadsMaySeeOldAndNewInEitherCompletionOrder() {
    // the read of 1 completes after the read of 2, but both overlap, so old-then-new is a valid order
    valid(Hist.of()
        .writeOk(1, "k", 1)
        .write(1, "k", 2)
        .read(2, "k")
        .read(3, "k")
        .ok(3, 2L)
        .ok(2, 1L)
        .ok(1)
        .check());
  }

  @Test
  void infoWriteMayHaveTakenEffect() {
    valid(Hist.of().writeOk(1, "k", 1).write(2, "k", 2).info(2).readOk(3, "k", 2L).readOk(3, "k", 2L).check());
  }

  @Test
  void infoWriteMayNotHaveTakenEffect() {
    valid(Hist.of().writeOk(1, "k", 1).write(2, "k", 2).info(2).readOk(3, "k", 1L).readOk(3, "k", 1L).check());
  }

  @Test
  void infoWriteMayTakeEffectLongAfterItsInfo() {
    valid(Hist.of()
        .writeOk(1, "k", 1)
        .write(2, "k", 2)
        .info(2)
        .readOk(3, "k", 1L)
        .readOk(3, "k", 1L)
        .readOk(4, "k", 2L)
        .check());
  }

  @Test
  void infoWriteMaySurfaceAfterALaterWriteAndOverwriteIt() {
    valid(Hist.of()
        .write(2, "k", 2)
        .info(2)
        .writeOk(1, "k", 3)
        .readOk(3, "k", 3L)
        .readOk(3, "k", 2L)
        .check());
  }

  @Test
  void readOverlappingTheInvocationOfAnInfoWriteMaySeeIt() {
    valid(Hist.of().read(3, "k").write(2, "k", 2).ok(3, 2L).info(2).check());
  }

  @Test
  void invocationThatNeverCompletedStaysOpen() {
    valid(Hist.of().writeOk(1, "k", 1).write(2, "k", 2).readOk(3, "k", 1L).readOk(3, "k", 2L).check());
  }

  @Test
  void infoCasMayOrMayNotHaveTakenEffect() {
    valid(Hist.of().writeOk(1, "k", 1).cas(2, "k", 1L, 2).info(2).readOk(3, "k", 1L).readOk(3, "k", 2L).check());
    valid(Hist.of().writeOk(1, "k", 1).cas(2, "k", 1L, 2).info(2).writeOk(1, "k", 3).readOk(3, "k", 3L).check());
  }

  @Test
  void infoCasWhoseExpectedValueNeverHoldsIsSimplyNotLinearized() {
    valid(Hist.of().writeOk(1, "k", 1).cas(2, "k", 9L, 2).info(2).readOk(3, "k", 1L).check());
  }

  @Test
  void infoReadIsIgnored() {
    valid(Hist.of().writeOk(1, "k", 1).read(2, "k").info(2).readOk(3, "k", 1L).check());
  }

  @Test
  void failedWritesAreIgnored() {
    valid(Hist.of().writeOk(1, "k", 1).write(2, "k", 2).fail(2).readOk(3, "k", 1L).check());
  }

  @Test
  void failedCasIsIgnoredAndSuccessfulCasChainsAreValid() {
    valid(Hist.of()
        .cas(1, "k", null, 1).ok(1)
        .cas(2, "k", null, 5).fail(2)
        .cas(1, "k", 1L, 2).ok(1)
        .readOk(3, "k", 2L)
        .check());
  }

  @Test
  void concurrentCasFromTheSameValueWithOneFailingIsValid() {
    valid(Hist.of()
        .writeOk(1, "k", 0)
        .cas(2, "k", 0L, 1)
        .cas(3, "k", 0L, 2)
        .ok(2)
        .fail(3)
        .readOk(1, "k", 1L)
        .check());
  }

  @Test
  void keysAreIndependentRegisters() {
    valid(Hist.of().writeOk(1, "a", 1).writeOk(1, "b", 2).readOk(2, "a", 1L).readOk(2, "b", 2L)
        .readOk(3, "c", null).check());
  }

  @Test
  void configuredInitialValueIsUsed() {
    History h = Hist.of().readOk(1, "k", 0L).build();
    CheckResult r = Checker.of(key -> RegisterModel.startingAt(0L)).run(h, Duration.ofSeconds(5));
    valid(r);
  }
}
