package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.LeaseInfo;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The client's automatic keep-alive against a scripted replica: keep-alives at a third of the TTL; a
 * lease the cluster no longer knows is reported lost (LeaseNotFoundException) and no longer kept alive;
 * a lease whose keep-alives go unanswered is reported lost once its TTL has passed; close() stops the
 * keep-alives and revokes the lease.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LeaseKeepAliveTest {
  private static final long TTL_MS = 600;

  /** A replica that grants lease 7 and answers keep-alives while alive is true (NOT_FOUND after). */
  private static FakeServer.Script leases(AtomicBoolean alive, AtomicInteger keepAlives, AtomicBoolean answer) {
    return (server, channel, r) -> {
      Response.Builder b = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setOp(1);
      LeaseInfo info = LeaseInfo.newBuilder().setId(7).setTtlMs(TTL_MS).setDeadlineMs(TTL_MS).setNowMs(0).build();
      switch (r.getOpCase()) {
        case LEASE_GRANT -> FakeServer.reply(channel, b.setLease(info).build());
        case LEASE_KEEP_ALIVE -> {
          keepAlives.incrementAndGet();
          if (!answer.get()) {
            return; // never answered
          }
          FakeServer.reply(channel, alive.get() ? b.setLease(info).build()
              : b.setStatus(Status.NOT_FOUND).setError("lease 7 not found").build());
        }
        case LEASE_REVOKE -> {
          alive.set(false);
          FakeServer.reply(channel, b.setVersion(9).build());
        }
        default -> FakeServer.answer(server, channel, r);
      }
    };
  }

  private static ChoirClient client(FakeServer server) {
    return ChoirClient.builder().endpoints(server.address()).requestTimeout(Duration.ofMillis(400))
        .attemptTimeout(Duration.ofMillis(200)).build();
  }

  @Test
  void keepsTheLeaseAliveAndReportsItLostWhenTheClusterForgetsIt() throws Exception {
    AtomicBoolean alive = new AtomicBoolean(true);
    AtomicInteger keepAlives = new AtomicInteger();
    try (FakeServer server = FakeServer.start(leases(alive, keepAlives, new AtomicBoolean(true)));
        ChoirClient client = client(server)) {
      Lease lease = client.leases().grant(Duration.ofMillis(TTL_MS));
      assertEquals(7, lease.id());
      long startNs = System.nanoTime();
      while (keepAlives.get() < 3) {
        assertTrue(System.nanoTime() - startNs < TimeUnit.SECONDS.toNanos(5), "keep-alives every TTL/3");
        assertFalse(lease.lost().isDone());
        Thread.sleep(10); // polling interval
      }
      assertTrue(lease.isHeld());
      alive.set(false); // the lease expired in the cluster (a long pause, a partition)
      ChoirException why = lease.lost().get(5, TimeUnit.SECONDS);
      assertInstanceOf(LeaseNotFoundException.class, why);
      assertFalse(lease.isHeld());
      int after = keepAlives.get();
      // A lost lease gets no more keep-alives: a revoke still goes through, and none came in between.
      client.leases().revoke(7);
      assertTrue(keepAlives.get() <= after + 1, "keep-alives after the loss: " + (keepAlives.get() - after));
    }
  }

  @Test
  void aLeaseWhoseKeepAlivesGoUnansweredIsLostAfterItsTtl() throws Exception {
    AtomicBoolean answer = new AtomicBoolean(true);
    try (FakeServer server = FakeServer.start(leases(new AtomicBoolean(true), new AtomicInteger(), answer));
        ChoirClient client = client(server)) {
      Lease lease = client.leases().grant(Duration.ofMillis(TTL_MS));
      long cutNs = System.nanoTime();
      answer.set(false);
      ChoirException why = lease.lost().get(5, TimeUnit.SECONDS);
      long lostAfterMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - cutNs);
      assertTrue(why.getMessage().contains("no keep-alive was acknowledged within its TTL"), why.getMessage());
      assertTrue(lostAfterMs <= TTL_MS + 1_000, "lost after " + lostAfterMs + " ms");
    }
  }

  @Test
  void closeStopsTheKeepAlivesAndRevokes() throws Exception {
    AtomicBoolean alive = new AtomicBoolean(true);
    try (FakeServer server = FakeServer.start(leases(alive, new AtomicInteger(), new AtomicBoolean(true)));
        ChoirClient client = client(server)) {
      Lease lease = client.leases().grant(Duration.ofMillis(TTL_MS));
      assertEquals(9, lease.revoke().get(5, TimeUnit.SECONDS));
      assertFalse(alive.get());
      assertFalse(lease.isHeld());
      assertFalse(lease.lost().isDone(), "a revoked lease is not reported lost");
      assertTrue(server.received().stream().anyMatch(Request::hasLeaseRevoke));
      assertThrows(IllegalArgumentException.class, () -> client.leases().grant(Duration.ZERO));
      assertThrows(IllegalArgumentException.class, () -> client.leases().grant(Duration.ofDays(2)));
    }
  }
}
