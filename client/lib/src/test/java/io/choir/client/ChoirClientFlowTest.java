package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

// The wire's ReadConsistency, what the fake server sees; the client's own (same name, this package)
// is written out in full where the test passes it to the client.
import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.netty.channel.Channel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Many requests on one connection: matching out-of-order answers by id, first_incomplete, min_op for
 * sequential reads, the in-flight bound, concurrent use and close.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ChoirClientFlowTest {
  private static final long WAIT_MS = 5_000;

  /** A request the fake holds, with the channel to answer it on. */
  private record Held(Channel channel, Request request) {}

  private static ChoirClient.Builder clientFor(FakeServer server) {
    return ChoirClient.builder().endpoints(server.address()).requestTimeout(Duration.ofSeconds(5))
        .eventLoopThreads(2).random(new Random(42));
  }

  private static Held take(LinkedBlockingQueue<Held> held) throws InterruptedException {
    Held h = held.poll(WAIT_MS, TimeUnit.MILLISECONDS);
    assertTrue(h != null, "no request arrived within " + WAIT_MS + " ms");
    return h;
  }

  private static void answer(FakeServer server, Held h) {
    FakeServer.reply(h.channel(), server.store.apply(h.request()));
  }

  @Test
  void shouldMatchOutOfOrderResponsesById() throws Exception {
    LinkedBlockingQueue<Held> held = new LinkedBlockingQueue<>();
    try (FakeServer server = FakeServer.start((s, ch, req) -> held.add(new Held(ch, req)));
        ChoirClient client = clientFor(server).build()) {
      int n = 20;
      List<CompletableFuture<Long>> puts = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        puts.add(client.async().put("k" + i, "v" + i));
      }
      List<Held> requests = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        requests.add(take(held));
      }
      // Answer the highest id first (whatever order they arrived in): the store numbers the writes in
      // answer order, so every put expects a distinct version that only the response with its own id
      // carries.
      requests.sort(Comparator.comparingLong((Held h) -> h.request().getRequestId()).reversed());
      Map<String, Long> expected = new HashMap<>();
      for (Held h : requests) {
        Response r = server.store.apply(h.request());
        expected.put(h.request().getPut().getKey().toStringUtf8(), r.getVersion());
        FakeServer.reply(h.channel(), r);
      }
      for (int i = 0; i < n; i++) {
        assertEquals(expected.get("k" + i), puts.get(i).get(WAIT_MS, TimeUnit.MILLISECONDS), "put k" + i);
      }
      assertEquals(n, new HashSet<>(expected.values()).size());
    }
  }

  @Test
  void shouldSendTheLowestInFlightIdAsFirstIncomplete() throws Exception {
    LinkedBlockingQueue<Held> held = new LinkedBlockingQueue<>();
    try (FakeServer server = FakeServer.start((s, ch, req) -> held.add(new Held(ch, req)));
        ChoirClient client = clientFor(server).build()) {
      CompletableFuture<Long> p1 = client.async().put("a", "1");
      Held r1 = take(held);
      CompletableFuture<Long> p2 = client.async().put("b", "2");
      Held r2 = take(held);
      CompletableFuture<Long> p3 = client.async().put("c", "3");
      Held r3 = take(held);
      // Id 2 is the session registration the first put waited for (answered by the fake itself).
      assertEquals(List.of(1L, 3L, 4L), List.of(r1.request().getRequestId(), r2.request().getRequestId(),
          r3.request().getRequestId()));
      assertEquals(1, server.sessionRequests().get(0).getFirstIncomplete());
      assertEquals(1, r1.request().getFirstIncomplete());
      assertEquals(1, r2.request().getFirstIncomplete());
      assertEquals(1, r3.request().getFirstIncomplete());

      answer(server, r1);
      p1.get(WAIT_MS, TimeUnit.MILLISECONDS);
      client.async().put("d", "4");
      Held r4 = take(held);
      assertEquals(3, r4.request().getFirstIncomplete(), "1 and 2 are answered, 3 is the lowest still in flight");

      answer(server, r3); // 3 still in flight: first_incomplete stays at 3
      p3.get(WAIT_MS, TimeUnit.MILLISECONDS);
      client.async().put("e", "5");
      Held r5 = take(held);
      assertEquals(3, r5.request().getFirstIncomplete());

      answer(server, r2);
      answer(server, r4);
      answer(server, r5);
      p2.get(WAIT_MS, TimeUnit.MILLISECONDS);
      server.script(FakeServer::answer);
      client.put("f", "6");
      Request last = server.received().get(server.received().size() - 1);
      assertEquals(7, last.getRequestId());
      // p4 and p5 may still be completing; the lowest possible in-flight id is this request's own.
      assertTrue(last.getFirstIncomplete() >= 5 && last.getFirstIncomplete() <= 7, "got " + last.getFirstIncomplete());
    }
  }

  @Test
  void shouldSendHighestSeenOpAsMinOpForSequentialReads() throws Exception {
    try (FakeServer server = FakeServer.start();
        ChoirClient client = clientFor(server).build()) {
      client.put("a", "1");
      long op = client.put("b", "2");
      assertEquals(101, op);
      assertEquals(101, client.highestOpSeen());

      assertEquals("1", client.get("a", io.choir.client.ReadConsistency.SEQUENTIAL).orElseThrow().valueAsString());
      client.scan("a", "", 0, io.choir.client.ReadConsistency.SEQUENTIAL);
      client.get("a");

      List<Request> seen = server.received();
      Request sequentialGet = seen.get(2);
      assertEquals(ReadConsistency.SEQUENTIAL, sequentialGet.getConsistency());
      assertEquals(101, sequentialGet.getMinOp());
      assertEquals(ReadConsistency.SEQUENTIAL, seen.get(3).getConsistency());
      assertEquals(101, seen.get(3).getMinOp());
      assertEquals(ReadConsistency.LINEARIZABLE, seen.get(4).getConsistency());
      assertEquals(0, seen.get(4).getMinOp());
    }
  }

  @Test
  void shouldUseTheConfiguredDefaultReadConsistency() throws Exception {
    try (FakeServer server = FakeServer.start();
        ChoirClient client = clientFor(server).readConsistency(io.choir.client.ReadConsistency.SEQUENTIAL).build()) {
      client.put("a", "1");
      client.get("a");
      Request get = server.received().get(1);
      assertEquals(ReadConsistency.SEQUENTIAL, get.getConsistency());
      assertEquals(100, get.getMinOp());
    }
  }

  @Test
  void shouldTrackTheHighestOpFromResponsesInAnyOrder() throws Exception {
    LinkedBlockingQueue<Held> held = new LinkedBlockingQueue<>();
    try (FakeServer server = FakeServer.start((s, ch, req) -> held.add(new Held(ch, req)));
        ChoirClient client = clientFor(server).build()) {
      CompletableFuture<Optional<VersionedValue>> g1 = client.async().get("x");
      CompletableFuture<Optional<VersionedValue>> g2 = client.async().get("y");
      Held a = take(held);
      Held b = take(held);
      // Requests queued behind a connect may go out in any order; pick them by id.
      Held r1 = a.request().getRequestId() == 1 ? a : b;
      Held r2 = r1 == a ? b : a;
      FakeServer.reply(r1.channel(), Response.newBuilder().setRequestId(r1.request().getRequestId())
          .setStatus(Status.NOT_FOUND).setOp(500).build());
      g1.get(WAIT_MS, TimeUnit.MILLISECONDS);
      FakeServer.reply(r2.channel(), Response.newBuilder().setRequestId(r2.request().getRequestId())
          .setStatus(Status.NOT_FOUND).setOp(300).build());
      g2.get(WAIT_MS, TimeUnit.MILLISECONDS);
      assertEquals(500, client.highestOpSeen(), "an older answer never lowers the session's op");
    }
  }

  @Test
  void shouldWaitForAFreeSlotBeyondMaxInFlight() throws Exception {
    LinkedBlockingQueue<Held> held = new LinkedBlockingQueue<>();
    AtomicBoolean firstAnswered = new AtomicBoolean();
    try (FakeServer server = FakeServer.start((s, ch, req) -> held.add(new Held(ch, req)));
        ChoirClient client = clientFor(server).maxInFlight(1).build()) {
      CompletableFuture<Long> p1 = client.async().put("a", "1");
      Held r1 = take(held);
      CompletableFuture<Long> p2 = client.async().put("b", "2");
      assertFalse(p2.isDone());
      firstAnswered.set(true);
      answer(server, r1);
      Held r2 = take(held);
      assertTrue(firstAnswered.get(), "the second request was sent only after the first was answered");
      // Id 2 was the session registration, which takes no in-flight slot (it must not wait behind the
      // write that waits for it).
      assertEquals(3, r2.request().getRequestId());
      assertEquals(3, r2.request().getFirstIncomplete());
      answer(server, r2);
      assertEquals(100, p1.get(WAIT_MS, TimeUnit.MILLISECONDS));
      assertEquals(101, p2.get(WAIT_MS, TimeUnit.MILLISECONDS));
      assertEquals(2, server.received().size());
    }
  }

  @Test
  void shouldFailWithBusyWhenNoSlotFreesWithinTheTimeout() throws Exception {
    try (FakeServer server = FakeServer.start(FakeServer::hold);
        ChoirClient client = clientFor(server).maxInFlight(1).requestTimeout(Duration.ofMillis(300)).build()) {
      CompletableFuture<Long> p1 = client.async().put("a", "1");
      CompletableFuture<Long> p2 = client.async().put("b", "2");
      server.awaitRequest();
      ExecutionException e2 = assertThrows(ExecutionException.class, () -> p2.get(WAIT_MS, TimeUnit.MILLISECONDS));
      assertTrue(e2.getCause() instanceof BusyException, String.valueOf(e2.getCause()));
      ExecutionException e1 = assertThrows(ExecutionException.class, () -> p1.get(WAIT_MS, TimeUnit.MILLISECONDS));
      assertTrue(e1.getCause() instanceof ChoirTimeoutException, String.valueOf(e1.getCause()));
      assertEquals(1, server.received().size(), "the waiting request was never sent");
    }
  }

  @Test
  void shouldFailAThousandsLongQueueOfWaitersWithoutDeepRecursion() throws Exception {
    int waiters = 20_000;
    // The budget must dwarf the time it takes to queue the waiters (hundreds of ms on a loaded CI
    // machine): a waiter queued late still has over a tenth of its budget when the slot frees, and
    // would rightly be sent instead of failing with Busy.
    try (FakeServer server = FakeServer.start(FakeServer::hold);
        ChoirClient client = clientFor(server).maxInFlight(1).requestTimeout(Duration.ofMillis(8000)).build()) {
      CompletableFuture<Long> holder = client.async().put("a", "1");
      List<CompletableFuture<Long>> queued = new ArrayList<>();
      for (int i = 0; i < waiters; i++) {
        queued.add(client.async().put("k" + i, "v"));
      }
      server.awaitRequest();
      ExecutionException first = assertThrows(ExecutionException.class, () -> holder.get(3 * WAIT_MS, TimeUnit.MILLISECONDS));
      assertTrue(first.getCause() instanceof ChoirTimeoutException, String.valueOf(first.getCause()));
      for (CompletableFuture<Long> f : queued) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(WAIT_MS, TimeUnit.MILLISECONDS));
        assertTrue(e.getCause() instanceof BusyException, String.valueOf(e.getCause()));
      }
      assertEquals(1, server.received().size(), "no waiter was sent with an exhausted budget");
      server.script(FakeServer::answer);
      assertEquals(100, client.put("after", "x"), "the slot is free again");
    }
  }

  @Test
  void shouldRefuseBlockingCallsInsideAsyncCallbacksInsteadOfDeadlocking() throws Exception {
    LinkedBlockingQueue<Held> held = new LinkedBlockingQueue<>();
    try (FakeServer server = FakeServer.start((s, ch, req) -> held.add(new Held(ch, req)));
        ChoirClient client = clientFor(server).build()) {
      CompletableFuture<Optional<VersionedValue>> nested = client.async().put("a", "1")
          .thenApply(version -> client.get("a"));
      answer(server, take(held));
      ExecutionException e = assertThrows(ExecutionException.class, () -> nested.get(WAIT_MS, TimeUnit.MILLISECONDS));
      assertTrue(e.getCause() instanceof IllegalStateException, String.valueOf(e.getCause()));
    }
  }

  @Test
  void shouldServeManyThreadsConcurrently() throws Exception {
    int threads = 8;
    int opsPerThread = 100;
    try (FakeServer server = FakeServer.start();
        ChoirClient client = clientFor(server).maxInFlight(16).build()) {
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      try {
        CountDownLatch start = new CountDownLatch(1);
        List<Future<?>> done = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
          int thread = t;
          done.add(pool.submit(() -> {
            start.await();
            for (int i = 0; i < opsPerThread; i++) {
              String key = "t" + thread + "/" + i;
              long version = client.put(key, "v" + i);
              VersionedValue got = client.get(key).orElseThrow();
              assertEquals("v" + i, got.valueAsString());
              assertEquals(version, got.version());
            }
            return null;
          }));
        }
        start.countDown();
        for (Future<?> f : done) {
          f.get(20, TimeUnit.SECONDS);
        }
      } finally {
        pool.shutdownNow();
      }
      List<Request> seen = server.received();
      assertEquals(threads * opsPerThread * 2, seen.size());
      Set<Long> ids = new HashSet<>();
      for (Request r : seen) {
        assertTrue(ids.add(r.getRequestId()), "request id " + r.getRequestId() + " used twice");
        assertTrue(r.getFirstIncomplete() <= r.getRequestId());
      }
      assertEquals(threads * opsPerThread * 2, client.scan("t", "u", 0).entries().size() * 2);
    }
  }

  @Test
  void shouldFailPendingCallsWhenClosed() throws Exception {
    try (FakeServer server = FakeServer.start(FakeServer::hold)) {
      ChoirClient client = clientFor(server).maxInFlight(1).build();
      CompletableFuture<Long> sent = client.async().put("a", "1");
      server.awaitRequest();
      CompletableFuture<Long> waiting = client.async().put("b", "2");
      long startNs = System.nanoTime();
      client.close();
      // The sent put reached the (silent) replica: it may still execute, so "not executed" would be false.
      ExecutionException unknown = assertThrows(ExecutionException.class, () -> sent.get(WAIT_MS, TimeUnit.MILLISECONDS));
      assertTrue(unknown.getCause() instanceof ChoirTimeoutException, String.valueOf(unknown.getCause()));
      assertTrue(unknown.getCause().getMessage().contains("outcome is unknown"), unknown.getCause().getMessage());
      ExecutionException e = assertThrows(ExecutionException.class, () -> waiting.get(WAIT_MS, TimeUnit.MILLISECONDS));
      assertTrue(e.getCause() instanceof UnavailableException, String.valueOf(e.getCause()));
      assertEquals("client closed", e.getCause().getMessage());
      assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs) < 3_000, "close was slow");
    }
  }
}
