package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.OpRange;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** GapRepair: a backup's gaps, its out-of-order buffer and NACK timing (RFC 5401 style). */
class GapRepairTest {
  private final CoreConfig config = CoreKit.config(2, 3);
  private final Counters counters = new Counters();
  private final GapRepair repair = new GapRepair(config, new SplittableRandom(1), 0);

  private static OpRange range(long first, long last) {
    return OpRange.newBuilder().setFirst(first).setLast(last).build();
  }

  @Test
  void shouldNackEveryGapAroundBufferedEntriesOnceDue() {
    repair.learnLastOp(10);
    repair.buffer(CoreKit.entry(4, 0, "k4"), counters);
    repair.buffer(CoreKit.entry(5, 0, "k5"), counters);
    repair.buffer(CoreKit.entry(8, 0, "k8"), counters);
    Effects out = new Effects();
    repair.schedule(true, 0, counters, out);
    assertEquals(1, counters.gapsDetected);
    long due = repair.nackDueNs().getAsLong();
    assertEquals(due, out.nextTickNs());
    assertEquals(List.of(), repair.dueNack(due - 1, 1), "not due yet");
    assertEquals(List.of(range(2, 3), range(6, 7), range(9, 10)), repair.dueNack(due, 1));
    assertTrue(repair.nackDueNs().getAsLong() > due, "the next NACK waits for the backoff");
  }

  @Test
  void shouldHandOverBufferedEntriesInOpOrderAndDropStaleOnes() {
    repair.buffer(CoreKit.entry(2, 0, "k2"), counters);
    repair.buffer(CoreKit.entry(3, 0, "k3"), counters);
    repair.buffer(CoreKit.entry(5, 0, "k5"), counters);
    assertEquals(3, repair.takeNext(2).getOp(), "op 2 was placed otherwise");
    assertNull(repair.takeNext(3), "op 4 is missing");
    assertEquals(1, repair.buffered());
  }

  @Test
  void shouldForgetTheNackWhenThereIsNoGap() {
    repair.learnLastOp(3);
    repair.schedule(true, 0, counters, new Effects());
    repair.schedule(false, 1, counters, new Effects());
    assertTrue(repair.nackDueNs().isEmpty());
  }
}
