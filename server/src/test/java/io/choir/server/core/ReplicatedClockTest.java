package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * The replicated clock follows the newest placed entry, behind its own estimate too: so it never runs
 * faster than real time across primaries (a lease's deadline, an admission's time plus its TTL, is
 * never reached sooner in real time). WatchLeaseSimulationTest seeds 165, 272 and 637 expired leases
 * early with the clock that kept the larger of the two.
 */
class ReplicatedClockTest {
  private static final long MS = 1_000_000L;

  @Test
  void followsALaggingPrimarysNewerEntryAndRunsOnFromIt() {
    ReplicatedClock clock = new ReplicatedClock();
    clock.start(0);
    clock.follow(1_000, 0); // view 1's entry, placed at once
    assertEquals(1_500, clock.nowMs(500 * MS));
    // View 2's primary lags by 800 ms: its next entry says 700 at real 500. The clock follows it.
    clock.follow(700, 500 * MS);
    assertEquals(700, clock.nowMs(500 * MS));
    assertEquals(1_000, clock.nowMs(800 * MS), "runs on at the local rate from the followed entry");
    // An admission stamped 700 with a TTL of 400 is not past its deadline until 400 ms of real time.
    assertEquals(1_099, clock.nowMs(899 * MS));
  }

  @Test
  void aRestartResumesFromTheNewestLoggedEntry() {
    ReplicatedClock clock = new ReplicatedClock();
    clock.start(5 * MS);
    clock.restartedAt(42_000);
    assertEquals(42_000, clock.nowMs(5 * MS));
    assertEquals(42_010, clock.nowMs(15 * MS));
  }
}
