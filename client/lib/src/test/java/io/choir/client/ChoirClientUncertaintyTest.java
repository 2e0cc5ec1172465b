package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What the client concludes from replicas that are uncertain or silent, on scripted fake replicas
 * over real sockets: a refusal with outcome_unknown (issue 9 item 2a) makes the outcome unknown, and a
 * replica that accepts the connection but never answers (paused, cut off: item 2i) is left after the
 * attempt timeout for the next one, with the same request id.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ChoirClientUncertaintyTest {
  private static ChoirClient.Builder clientFor(FakeServer... servers) {
    List<String> endpoints = Arrays.stream(servers).map(FakeServer::address).toList();
    return ChoirClient.builder().endpoints(endpoints).requestTimeout(Duration.ofMillis(1_500))
        .eventLoopThreads(1).random(new Random(11));
  }

  private static Response refusal(Request r, Status status, String primary, long view, boolean unknown) {
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(status).setPrimaryAddress(primary)
        .setView(view).setOutcomeUnknown(unknown).setError("stepped down").build();
  }

  private static List<Long> putIds(FakeServer server) {
    return server.received().stream().filter(Request::hasPut).map(Request::getRequestId).toList();
  }

  @Test
  void shouldReportUnknownOutcomeNotUnavailableWhenADeposedPrimarySaysItHadLoggedTheWrite() throws Exception {
    // The old primary had logged the write when it stepped down: the entry may still commit in the
    // next view. Every later answer is a plain refusal; without the flag the client would end in
    // UnavailableException, which promises "never executed".
    AtomicInteger seen = new AtomicInteger();
    FakeServer.Script deposed = (s, ch, req) -> {
      if (!req.hasPut()) {
        FakeServer.answer(s, ch, req);
      } else if (seen.getAndIncrement() == 0) {
        FakeServer.reply(ch, refusal(req, Status.NOT_PRIMARY, "", 3, true));
      } else {
        FakeServer.reply(ch, refusal(req, Status.UNAVAILABLE, "", 4, false));
      }
    };
    try (FakeServer a = FakeServer.start(deposed);
        FakeServer b = FakeServer.start(deposed);
        ChoirClient client = clientFor(a, b).build()) {
      ChoirTimeoutException e = assertThrows(ChoirTimeoutException.class, () -> client.put("k", "v"));
      assertTrue(e.getMessage().contains("outcome is unknown"), e.getMessage());
      assertTrue(seen.get() > 2, "kept retrying with the same id meanwhile: " + seen.get());
      assertEquals(1, Stream.concat(putIds(a).stream(), putIds(b).stream()).distinct().count());
    }
  }

  @Test
  void shouldStillSucceedWithTheSameIdAfterAnOutcomeUnknownRefusal() throws Exception {
    AtomicInteger seen = new AtomicInteger();
    try (FakeServer newPrimary = FakeServer.start();
        FakeServer old = FakeServer.start((s, ch, req) -> {
          if (req.hasPut() && seen.getAndIncrement() == 0) {
            FakeServer.reply(ch, refusal(req, Status.NOT_PRIMARY, "", 3, true));
          } else {
            FakeServer.answer(s, ch, req);
          }
        });
        ChoirClient client = clientFor(old, newPrimary).build()) {
      assertEquals(100, client.put("k", "v"));
      assertEquals(putIds(old), putIds(newPrimary), "the retry is the same request");
    }
  }

  @Test
  void shouldMoveOnFromASilentPrimaryAfterTheAttemptTimeoutWithTheSameRequestId() throws Exception {
    try (FakeServer primary = FakeServer.start();
        FakeServer next = FakeServer.start()) {
      // Warm up both fakes and the client's code paths with the default attempt timeout, so that no
      // cold start (class loading, JIT) counts in the measurement below.
      try (ChoirClient warm = clientFor(primary, next).build(); ChoirClient warm2 = clientFor(next).build()) {
        warm.put("warm", "up");
        warm2.put("warm", "up");
        warm.status();
      }
      ChoirClient client = clientFor(primary, next).requestTimeout(Duration.ofSeconds(5))
          .attemptTimeout(Duration.ofMillis(400)).build();
      client.put("warm", "again"); // the primary works (and this client's session is open)...
      assertEquals(1, primary.received().stream().filter(r -> r.hasPut() && r.getClientId() == client.sessionId()).count());
      primary.script(FakeServer::hold); // ...then it freezes: the connection stays up, nothing comes back
      long nextOpBefore = next.store.lastOp();

      long startNs = System.nanoTime();
      long version = client.put("k", "v");
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs);
      System.out.println("silent primary: write acknowledged by the next replica after " + tookMs
          + " ms (attempt timeout 400 ms, request timeout 5000 ms)");
      assertEquals(nextOpBefore + 1, version, "executed once, by the next replica");
      assertTrue(tookMs >= 400 && tookMs < 1_500, "took " + tookMs + " ms");
      Request frozen = primary.received().get(primary.received().size() - 1);
      Request moved = next.received().get(next.received().size() - 1);
      assertEquals(frozen, moved, "the same request (client id, request id, contents) at both");

      long again = System.nanoTime();
      client.put("k2", "v");
      assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - again) < 300, "later writes skip the silent replica");
      assertEquals(frozen, primary.received().get(primary.received().size() - 1), "nothing more went to the silent one");
      client.close();
    }
  }

  @Test
  void shouldFollowTheNewestViewsHintAndIgnoreAnOlderViewsHint() throws Exception {
    AtomicInteger cSeen = new AtomicInteger();
    try (FakeServer b = FakeServer.start();
        FakeServer c = FakeServer.start((s, ch, req) -> {
          if (cSeen.getAndIncrement() == 0) {
            FakeServer.answer(s, ch, req); // primary of view 7
          } else {
            FakeServer.reply(ch, refusal(req, Status.UNAVAILABLE, "", 8, false)); // view 8 forming
          }
        }).scriptSessions();
        // A lags: it names C, the primary of view 7, even once view 8 is known.
        FakeServer a = FakeServer.start((s, ch, req) -> FakeServer.reply(ch, refusal(req, Status.NOT_PRIMARY,
            c.address(), 7, false))).scriptSessions();
        ChoirClient client = clientFor(a, b, c).build()) {
      client.get("k"); // A -> C (view 7 hint followed) -> answered
      assertEquals(List.of(1, 0, 1), List.of(a.received().size(), b.received().size(), c.received().size()));
      client.get("k"); // C: UNAVAILABLE view 8 -> A, whose view-7 hint is now stale -> B answers
      assertEquals(List.of(2, 1, 2), List.of(a.received().size(), b.received().size(), c.received().size()),
          "the view-7 hint was not followed once view 8 was seen");
    }
  }
}
