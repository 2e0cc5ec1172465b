package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Entry;
import io.choir.proto.LeaseGrant;
import io.choir.proto.Noop;
import io.choir.proto.Request;
import io.choir.server.core.Event;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * LeaseExpiry on a stepped clock: it submits an expire request (a LeaseRevoke from its own connection)
 * for a lease only once the estimated replicated clock has passed its deadline, only as primary, and
 * again only after the retry interval.
 */
class LeaseExpiryTest {
  private final AtomicLong nowNs = new AtomicLong(1_000_000_000L);
  private final AtomicBoolean primary = new AtomicBoolean(true);
  private final List<Long> connections = new ArrayList<>();
  private final List<Request> submitted = new ArrayList<>();
  private final KvStateMachine sm = new KvStateMachine(new MemoryStorage(), 16, 4);
  private long op;

  private final LeaseExpiry expiry = new LeaseExpiry(sm, new LeaseExpiry.Loop() {
    @Override
    public void runOnLoop(Runnable task) {
      task.run();
    }

    @Override
    public boolean offer(long connectionId, Request request) {
      connections.add(connectionId);
      submitted.add(request);
      return true;
    }
  }, primary::get, nowNs::get, 500, new SimpleMeterRegistry());

  private void apply(long timeMs, Entry.Builder entry) {
    sm.apply(List.of(entry.setOp(++op).setTimeMs(timeMs).build()), true);
  }

  private void advanceMs(long ms) {
    nowNs.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
  }

  @Test
  void submitsOnlyDueLeasesAsPrimaryAndRetriesAfterTheInterval() {
    sm.load();
    apply(10_000, Entry.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(1_000).setMinTtlMs(1_000)));
    apply(10_000, Entry.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(5_000).setMinTtlMs(1_000)));
    expiry.check(); // sees the clock at 10,000 ms
    assertEquals(0, submitted.size());
    advanceMs(999);
    expiry.check();
    assertEquals(0, submitted.size(), "not before the deadline");
    advanceMs(1);
    expiry.check();
    assertEquals(1, submitted.size());
    assertEquals(1, submitted.get(0).getLeaseRevoke().getId());
    assertEquals(Event.ClientRequest.LEASE_EXPIRY_CONNECTION, connections.get(0));
    advanceMs(100);
    expiry.check();
    assertEquals(1, submitted.size(), "no resubmission within the retry interval");
    advanceMs(400);
    expiry.check();
    assertEquals(2, submitted.size(), "resubmitted after the retry interval");
    primary.set(false);
    advanceMs(10_000);
    expiry.check();
    assertEquals(2, submitted.size(), "a backup submits nothing");
    primary.set(true);
    advanceMs(500);
    expiry.check();
    assertEquals(4, submitted.size(), "both leases are due now");
    assertEquals(4, expiry.counts()[0]);
  }

  @Test
  void probesWithOneLeaseWhileTheClockIsUnknown() {
    MemoryStorage storage = new MemoryStorage();
    KvStateMachine first = new KvStateMachine(storage, 16, 4);
    first.load();
    first.apply(List.of(Entry.newBuilder().setOp(1).setTimeMs(0).setNoop(Noop.getDefaultInstance()).build(),
        Entry.newBuilder().setOp(2).setTimeMs(0).setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(10)
            .setMinTtlMs(10)).build(),
        Entry.newBuilder().setOp(3).setTimeMs(0).setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(10)
            .setMinTtlMs(10)).build()), true);
    assertEquals(0, first.lastTimeMs());
    List<Request> sent = new ArrayList<>();
    LeaseExpiry probe = new LeaseExpiry(first, new LeaseExpiry.Loop() {
      @Override
      public void runOnLoop(Runnable task) {
        task.run();
      }

      @Override
      public boolean offer(long connectionId, Request request) {
        return sent.add(request);
      }
    }, () -> true, nowNs::get, 500, new SimpleMeterRegistry());
    probe.check();
    assertEquals(1, sent.size(), "one probe while the clock is unknown");
    assertTrue(sent.get(0).hasLeaseRevoke());
  }
}
