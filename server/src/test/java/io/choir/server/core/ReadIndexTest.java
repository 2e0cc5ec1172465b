package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Request;
import io.choir.proto.Status;
import org.junit.jupiter.api.Test;

/** ReadIndex: reads wait for their op and their heartbeat round (Raft thesis 6.4), and time out. */
class ReadIndexTest {
  private final ReadIndex reads = new ReadIndex(2, 100, 5);
  private final Request read = Request.newBuilder().setRequestId(1).build();

  @Test
  void shouldMakeLinearizableReadsWaitForTheReadFloorOfTheView() {
    assertEquals(5, reads.linearizableOp(3), "an earlier primary may have committed up to 5");
    assertEquals(6, reads.linearizableOp(6));
  }

  @Test
  void shouldRunAReadOnlyOnceItsOpIsAppliedAndItsRoundConfirmed() {
    long round = reads.nextRound(0);
    assertTrue(reads.roundWanted());
    reads.add(9, read, 5, round, 0);
    Effects out = new Effects();
    reads.release(4, Long.MAX_VALUE, out);
    reads.release(5, round - 1, out);
    assertEquals(0, out.reads().size());
    reads.release(5, round, out);
    assertEquals(1, out.reads().size());
    assertEquals(0, reads.size());
  }

  @Test
  void shouldAnswerUnavailableOnceTheReadTimeoutHasPassed() {
    reads.add(9, read, 5, ReadIndex.NO_ROUND, 0);
    reads.add(8, read, 5, ReadIndex.NO_ROUND, 0);
    assertTrue(reads.isFull());
    Counters counters = new Counters();
    Effects early = new Effects();
    reads.expire(99, 4, counters, early);
    assertEquals(100, early.nextTickNs());
    Effects late = new Effects();
    reads.expire(100, 4, counters, late);
    assertEquals(2, counters.readTimeouts);
    assertEquals(Status.UNAVAILABLE, late.replies().get(0).responses().get(0).getStatus());
  }
}
