package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.netty.channel.ChannelFutureListener;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Finding the primary and surviving failures: redirects, lost connections, refusals and timeouts, each
 * scripted on fake replicas. Every retry must carry the same request id (exactly-once).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ChoirClientFailoverTest {
  private static final long SEED = 42;

  private static ChoirClient.Builder clientFor(String... endpoints) {
    return ChoirClient.builder().endpoints(endpoints).requestTimeout(Duration.ofSeconds(3))
        .connectTimeout(Duration.ofMillis(500)).eventLoopThreads(1).random(new Random(SEED));
  }

  /** An address nothing listens on: a port that was just bound and released. */
  private static String deadEndpoint() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      return "127.0.0.1:" + s.getLocalPort();
    }
  }

  private static List<Long> ids(FakeServer server) {
    return server.received().stream().map(Request::getRequestId).toList();
  }

  @Test
  void shouldFollowNotPrimaryRedirectToAnUnlistedPrimaryTransparently() throws Exception {
    try (FakeServer primary = FakeServer.start();
        FakeServer backup = FakeServer.start((s, ch, req) -> FakeServer.reply(ch, Response.newBuilder()
            .setRequestId(req.getRequestId()).setStatus(Status.NOT_PRIMARY)
            .setPrimaryAddress(primary.address()).build())).scriptSessions();
        ChoirClient client = clientFor(backup.address()).build()) {
      long version = client.put("k", "v");
      assertEquals(version, client.get("k").orElseThrow().version());

      // The put is id 1; the session registration it waits for is id 2 and is redirected like any write.
      assertEquals(List.of(2L), ids(backup), "after the redirect the client goes straight to the primary");
      assertEquals(List.of(2L), primary.sessionRequests().stream().map(Request::getRequestId).toList(),
          "the redirected registration keeps its id");
      assertEquals(List.of(1L, 3L), ids(primary));
    }
  }

  @Test
  void shouldTryTheNextEndpointOnNotPrimaryWithoutAddress() throws Exception {
    try (FakeServer lost = FakeServer.start((s, ch, req) -> FakeServer.reply(ch, Response.newBuilder()
            .setRequestId(req.getRequestId()).setStatus(Status.NOT_PRIMARY).build()));
        FakeServer primary = FakeServer.start();
        ChoirClient client = clientFor(lost.address(), primary.address()).build()) {
      client.put("k", "v");
      assertEquals(List.of(1L), ids(lost));
      assertEquals(List.of(1L), ids(primary));
    }
  }

  @Test
  void shouldRetryWithTheSameRequestIdAfterTheConnectionIsLost() throws Exception {
    AtomicInteger seen = new AtomicInteger();
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          if (seen.getAndIncrement() == 0) {
            ch.close(); // the request arrived, the answer is lost with the connection
          } else {
            FakeServer.answer(s, ch, req);
          }
        });
        ChoirClient client = clientFor(server.address()).build()) {
      long version = client.put("k", "v");
      assertTrue(version > 0);
      assertEquals(List.of(1L, 1L), ids(server), "the retry reuses the request id");
      assertEquals(server.received().get(0), server.received().get(1));
    }
  }

  @Test
  void shouldFailOverToTheNextEndpointWhenTheFirstIsDown() throws Exception {
    try (FakeServer alive = FakeServer.start();
        ChoirClient client = clientFor(deadEndpoint(), alive.address()).build()) {
      client.put("k", "v");
      client.put("k2", "v2");
      // The first put (id 1) waits for the session registration (id 2); the second put is id 3.
      assertEquals(List.of(1L, 3L), ids(alive), "the leader guess moved to the live endpoint");
    }
  }

  @Test
  void shouldRetryBusyWithTheSameIdUntilAccepted() throws Exception {
    AtomicInteger seen = new AtomicInteger();
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          if (seen.getAndIncrement() < 2) {
            FakeServer.reply(ch, Response.newBuilder().setRequestId(req.getRequestId())
                .setStatus(Status.BUSY).setError("queue full").build());
          } else {
            FakeServer.answer(s, ch, req);
          }
        });
        ChoirClient client = clientFor(server.address()).build()) {
      client.put("k", "v");
      assertEquals(List.of(1L, 1L, 1L), ids(server));
    }
  }

  @Test
  void shouldRaiseBusyWhenEveryAnswerIsBusyUntilTheTimeout() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, req) -> FakeServer.reply(ch, Response.newBuilder()
            .setRequestId(req.getRequestId()).setStatus(Status.BUSY).build()));
        ChoirClient client = clientFor(server.address()).requestTimeout(Duration.ofMillis(300)).build()) {
      BusyException e = assertThrows(BusyException.class, () -> client.put("k", "v"));
      assertTrue(e.getMessage().contains("not executed"), e.getMessage());
      assertTrue(server.received().size() > 1, "BUSY is retried");
      assertTrue(ids(server).stream().allMatch(id -> id == 1L));
    }
  }

  @Test
  void shouldRaiseUnavailableWhenEveryReplicaAnswersUnavailable() throws Exception {
    FakeServer.Script unavailable = (s, ch, req) -> FakeServer.reply(ch, Response.newBuilder()
        .setRequestId(req.getRequestId()).setStatus(Status.UNAVAILABLE).setError("no quorum").build());
    try (FakeServer a = FakeServer.start(unavailable);
        FakeServer b = FakeServer.start(unavailable);
        ChoirClient client = clientFor(a.address(), b.address()).requestTimeout(Duration.ofMillis(300)).build()) {
      UnavailableException e = assertThrows(UnavailableException.class, () -> client.put("k", "v"));
      assertTrue(e.getMessage().contains("no quorum"), e.getMessage());
      assertFalse(a.received().isEmpty());
      assertFalse(b.received().isEmpty(), "the retry moved on to the next endpoint");
    }
  }

  @Test
  void shouldRaiseTimeoutWithUnknownOutcomeWhenNoAnswerComes() throws Exception {
    try (FakeServer server = FakeServer.start(FakeServer::hold);
        ChoirClient client = clientFor(server.address()).requestTimeout(Duration.ofMillis(400)).build()) {
      long startNs = System.nanoTime();
      ChoirTimeoutException e = assertThrows(ChoirTimeoutException.class, () -> client.put("k", "v"));
      long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs);
      assertTrue(e.getMessage().contains("outcome is unknown"), e.getMessage());
      assertTrue(e.getMessage().contains("may or may not have happened"), e.getMessage());
      assertTrue(elapsedMs >= 350, "timed out early after " + elapsedMs + " ms");
      assertTrue(elapsedMs < 2_400, "timed out late after " + elapsedMs + " ms");
    }
  }

  @Test
  void shouldRaiseUnavailableWithinTheTimeoutWhenAllEndpointsAreDown() throws Exception {
    try (ChoirClient client = clientFor(deadEndpoint(), deadEndpoint()).requestTimeout(Duration.ofMillis(500)).build()) {
      long startNs = System.nanoTime();
      UnavailableException e = assertThrows(UnavailableException.class, () -> client.get("k"));
      long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs);
      assertTrue(elapsedMs < 1_500, "gave up after " + elapsedMs + " ms");
      assertTrue(e.getMessage().contains("not executed"), e.getMessage());
      assertNotNull(e.getCause(), "the last connect error is the cause");
    }
  }

  @Test
  void shouldTimeOutWithUnknownOutcomeWhenTheConnectionDropsAfterDeliveryAndNoReplicaIsLeft() throws Exception {
    String dead = deadEndpoint();
    try (FakeServer server = FakeServer.start((s, ch, req) -> ch.close());
        ChoirClient client = clientFor(server.address(), dead).requestTimeout(Duration.ofMillis(400)).build()) {
      assertThrows(ChoirTimeoutException.class, () -> client.put("k", "v"),
          "a request that reached a replica and lost its answer has an unknown outcome");
    }
  }

  @Test
  void shouldFailTheOversizedRequestWhenTheServerRefusesItsFrame() throws Exception {
    // Like the real server: a frame over its limit is answered with request id 0 and the connection closed.
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          if (req.hasPut() && req.getPut().getValue().size() > 100) {
            ch.writeAndFlush(Response.newBuilder().setStatus(Status.TOO_LARGE).setError("frame too large").build())
                .addListener(ChannelFutureListener.CLOSE);
          } else {
            FakeServer.answer(s, ch, req);
          }
        });
        ChoirClient client = clientFor(server.address()).build()) {
      long startNs = System.nanoTime();
      assertThrows(TooLargeException.class, () -> client.put("k".getBytes(), new byte[200]));
      assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs) < 2_000, "failed fast, not by timeout");
      assertEquals(1, server.received().size(), "not retried");
      client.put("k", "small");
    }
  }

  @Test
  void shouldIgnoreResponsesForUnknownRequestIds() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          FakeServer.reply(ch, Response.newBuilder().setRequestId(9_999).setStatus(Status.OK).setVersion(1).build());
          FakeServer.answer(s, ch, req);
        });
        ChoirClient client = clientFor(server.address()).build()) {
      long version = client.put("k", "v");
      assertEquals(100, version, "the answer of the real request, not the stray one");
    }
  }

  @Test
  void shouldReportStatusOfEveryEndpointIncludingDeadOnes() throws Exception {
    String dead = deadEndpoint();
    try (FakeServer one = FakeServer.start(1, FakeServer::answer);
        FakeServer two = FakeServer.start(2, FakeServer::answer);
        ChoirClient client = clientFor(one.address(), dead, two.address()).build()) {
      List<ReplicaStatusResult> all = client.status();
      assertEquals(3, all.size());
      assertEquals(one.address(), all.get(0).endpoint());
      assertEquals(1, all.get(0).info().id());
      assertNull(all.get(0).error());
      assertFalse(all.get(1).isOk());
      assertTrue(all.get(1).error() instanceof UnavailableException, String.valueOf(all.get(1).error()));
      assertEquals(2, all.get(2).info().id());
      assertEquals("primary", all.get(2).info().role());

      ReplicaStatusResult single = client.status(two.address());
      assertTrue(single.isOk());
      assertEquals(2, two.received().stream().filter(Request::hasStatus).count());
    }
  }
}
