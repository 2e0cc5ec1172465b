package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The lease arithmetic (DESIGN.md "Lease reads (issue 14)"): its length, its start, its end. */
class PrimaryLeaseTest {
  private static final long MS = 1_000_000L;
  private static final long L = 400 * MS;

  @Test
  void shouldMakeTheLeaseTheElectionTimeoutShrunkByTheDriftBoundBothWaysLessOneMillisecond() {
    // 500 ms x (1 - 5%) / (1 + 5%) = 452.38 ms, less the 1 ms margin.
    assertEquals(451_380_952L, CoreConfig.leaseDurationNs(500 * MS, 50_000), 1);
    assertEquals(499 * MS, CoreConfig.leaseDurationNs(500 * MS, 0), "no drift: only the margin");
    assertEquals(0, CoreConfig.leaseDurationNs(MS / 2, 0), "never negative");
    // The bound it keeps: the lease on a clock running slow by the drift never outlasts the timeout on
    // a clock running fast by it.
    for (long ppm : new long[] {0, 1_000, 50_000, 200_000, 500_000}) {
      long lease = CoreConfig.leaseDurationNs(500 * MS, ppm);
      double d = ppm / 1e6;
      assertTrue(lease / (1 - d) < 500 * MS / (1 + d), ppm + " ppm: " + lease);
    }
  }

  @Test
  void shouldHoldNoLeaseBeforeARoundOfThisViewIsAnswered() {
    PrimaryLease lease = new PrimaryLease(L);
    assertFalse(lease.holds(3, Long.MAX_VALUE, 0), "no round sent");
    lease.roundSent(3, 7, 100 * MS);
    assertFalse(lease.holds(3, 6, 101 * MS), "only an earlier round is answered");
    assertFalse(lease.holds(4, 7, 101 * MS), "another view's lease");
  }

  @Test
  void shouldRunTheLeaseFromTheDecisionToSendTheRoundNotFromItsAnswer() {
    PrimaryLease lease = new PrimaryLease(L);
    lease.roundSent(3, 7, 100 * MS);
    // The answer comes 300 ms later: the lease still ends at 100 ms + L.
    assertTrue(lease.holds(3, 7, 300 * MS));
    assertEquals(100 * MS + L, lease.endNs(3, 7));
    assertTrue(lease.holds(3, 7, 100 * MS + L - 1));
    assertFalse(lease.holds(3, 7, 100 * MS + L), "ends at start + L");
  }

  @Test
  void shouldKeepTheEarliestStartOfARoundSentTwice() {
    PrimaryLease lease = new PrimaryLease(L);
    lease.roundSent(3, 7, 100 * MS);
    lease.roundSent(3, 7, 150 * MS); // a unicast copy of round 7
    assertEquals(100 * MS + L, lease.endNs(3, 7));
  }

  @Test
  void shouldExtendWithLaterRoundsAndNeverShrink() {
    PrimaryLease lease = new PrimaryLease(L);
    lease.roundSent(3, 7, 100 * MS);
    lease.roundSent(3, 8, 150 * MS);
    lease.roundSent(3, 9, 200 * MS);
    assertEquals(100 * MS + L, lease.endNs(3, 7));
    assertEquals(200 * MS + L, lease.endNs(3, 9), "round 9 answered: its start counts");
    assertEquals(200 * MS + L, lease.endNs(3, 8), "an older confirmation changes nothing");
  }

  @Test
  void shouldEndTheLeaseWithTheViewAndStartAfreshInTheNext() {
    PrimaryLease lease = new PrimaryLease(L);
    lease.roundSent(3, 7, 100 * MS);
    assertTrue(lease.holds(3, 7, 200 * MS));
    assertFalse(lease.holds(5, 7, 200 * MS), "another view (a view change, an epoch switch)");
    lease.roundSent(5, 8, 300 * MS); // this replica leads view 5 later
    assertFalse(lease.holds(5, 7, 310 * MS), "round 7 was of view 3");
    assertTrue(lease.holds(5, 8, 310 * MS));
    lease.forget(); // a step-down
    assertFalse(lease.holds(5, 8, 310 * MS));
  }

  @Test
  void shouldHoldNoLeaseFromARoundItNoLongerRemembers() {
    PrimaryLease lease = new PrimaryLease(L);
    for (int r = 1; r <= PrimaryLease.MAX_ROUNDS + 5; r++) {
      lease.roundSent(3, r, r * MS);
    }
    assertFalse(lease.holds(3, 5, 100 * MS), "round 5's start was dropped: no lease from it");
    assertTrue(lease.holds(3, 6, 100 * MS), "the oldest round kept");
  }

  @Test
  void shouldAskForARenewalOnlyWhenEvenTheNewestRoundWouldLeaveLessThanHalfALease() {
    PrimaryLease lease = new PrimaryLease(L);
    assertTrue(lease.renewalDue(3, 0), "no round yet");
    lease.roundSent(3, 7, 100 * MS);
    assertFalse(lease.renewalDue(3, 100 * MS + L / 2));
    assertTrue(lease.renewalDue(3, 100 * MS + L / 2 + 1));
    lease.roundSent(3, 8, 100 * MS + L / 2 + 1); // sent, not answered yet: wait for it
    assertFalse(lease.renewalDue(3, 100 * MS + L / 2 + 2));
    assertTrue(lease.renewalDue(4, 100 * MS + L / 2 + 2), "another view");
  }
}
