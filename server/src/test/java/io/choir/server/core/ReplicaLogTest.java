package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** ReplicaLog's contract: placing entries (VR Revisited 4.2, entry by entry), epochs, apply order. */
class ReplicaLogTest {
  private static ReplicaLog logOf(int entries) {
    return new ReplicaLog(new RecoveredState(0, 0, 0, CoreKit.log(entries, 8)), false, 100, 1 << 20);
  }

  @Test
  void shouldConfirmAnEqualEntryAppendANewOneAndReplaceADifferentSuffix() {
    ReplicaLog log = logOf(3);
    log.unverifyAboveCommit();
    Effects out = new Effects();
    assertEquals(ReplicaLog.Placed.CONFIRMED, log.place(log.entry(1), out));
    assertEquals(1, log.verifiedOp());
    assertEquals(ReplicaLog.Placed.REPLACED, log.place(CoreKit.entry(2, 1, "other"), out));
    assertEquals(2, log.lastOp(), "op 3 went with the replaced op 2");
    assertEquals(OptionalLong.of(1), out.truncationAfter());
    assertEquals(List.of(2L), CoreKit.ops(out.toPersist()));
    assertEquals(ReplicaLog.Placed.APPENDED, log.place(CoreKit.entry(3, 1, "k3"), out));
    assertEquals(3, log.verifiedOp());
    assertTrue(log.consistent());
  }

  @Test
  void shouldCountAWriteOfAnOlderEpochOnlyUpToTheTruncationPoint() {
    ReplicaLog log = new ReplicaLog(RecoveredState.empty(), false, 100, 1 << 20);
    Effects out = new Effects();
    for (long op = 1; op <= 4; op++) {
      log.place(CoreKit.entry(op, 0, "k" + op), out);
    }
    long oldEpoch = log.epoch();
    log.truncateAfter(2, new Effects());
    log.place(CoreKit.entry(3, 1, "new"), new Effects());
    assertTrue(log.persisted(oldEpoch, 4), "ops 1 and 2 of the old write are still this log's");
    assertEquals(2, log.persistedOp());
    assertFalse(log.persisted(log.epoch() + 1, 3), "a write from a future epoch is no write of this log");
    assertTrue(log.persisted(log.epoch(), 3));
    assertEquals(3, log.persistedOp());
  }

  @Test
  void shouldNeverRequestApplyBeyondThePersistedOp() {
    ReplicaLog log = new ReplicaLog(RecoveredState.empty(), false, 100, 1 << 20);
    Effects out = new Effects();
    for (long op = 1; op <= 3; op++) {
      log.place(CoreKit.entry(op, 0, "k" + op), out);
    }
    log.persisted(log.epoch(), 2);
    log.commitUpTo(3);
    Effects apply = new Effects();
    log.requestApply(apply);
    assertEquals(List.of(1L, 2L), CoreKit.ops(apply.toApply()));
    assertTrue(log.applyPending(), "op 3 waits for its own log write");
  }
}
