package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.choir.proto.Entry;
import io.choir.proto.LeaseGrant;
import io.choir.proto.Noop;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LeaseExpiryPolicy alone, on given times (the simulator drives it the same way): the clock estimate
 * runs from the applied entry's time at the local rate, a lease is due once that passes its deadline,
 * submitted again only after the retry interval, and at once again when it was not sent.
 */
class LeaseExpiryPolicyTest {
  private static final long MS = 1_000_000L;
  private final KvStateMachine sm = new KvStateMachine(new MemoryStorage(), 16, 4);
  private final LeaseExpiryPolicy policy = new LeaseExpiryPolicy(500);
  private long op;

  private void apply(long timeMs, Entry.Builder entry) {
    sm.apply(List.of(entry.setOp(++op).setTimeMs(timeMs).build()), true);
  }

  @Test
  void submitsADueLeaseOnceThenAfterTheRetryIntervalOrAtOnceWhenNotSent() {
    sm.load();
    apply(10_000, Entry.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(1_000).setMinTtlMs(1_000)));
    long t0 = 7_000 * MS; // the local clock has another origin than the replicated one
    assertEquals(List.of(), policy.check(t0, sm));
    assertEquals(10_000, policy.estimatedClockMs(t0));
    assertEquals(List.of(), policy.check(t0 + 999 * MS, sm), "1 ms before the deadline");
    assertEquals(List.of(1L), policy.check(t0 + 1_000 * MS, sm));
    assertEquals(List.of(), policy.check(t0 + 1_499 * MS, sm), "within the retry interval");
    assertEquals(List.of(1L), policy.check(t0 + 1_500 * MS, sm));
    policy.notSent(List.of(1L));
    assertEquals(List.of(1L), policy.check(t0 + 1_501 * MS, sm), "not sent: due again at once");
  }

  @Test
  void aNewerAppliedEntryRestartsTheEstimateFromItsTime() {
    sm.load();
    apply(10_000, Entry.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(2_000).setMinTtlMs(1_000)));
    assertEquals(List.of(), policy.check(0, sm));
    apply(10_500, Entry.newBuilder().setNoop(Noop.getDefaultInstance()));
    assertEquals(List.of(), policy.check(1_000 * MS, sm)); // the estimate is now 10,500 ms, seen at 1 s
    assertEquals(10_500, policy.estimatedClockMs(1_000 * MS));
    assertEquals(List.of(), policy.check(2_499 * MS, sm));
    assertEquals(List.of(1L), policy.check(2_500 * MS, sm));
  }
}
