package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Explicit sessions (issue 9 item 2c, client side), against scripted fake replicas whose store runs
 * writes only inside a registered session and assigns each session its id: lazy registration before
 * the first write (under the instance id; the writes then carry the session id from the answer),
 * transparent re-registration into a new session, with a new id, when a write that cannot have
 * executed finds the session expired, SessionExpiredException (outcome unknown) when an earlier
 * attempt may have executed, BUSY from a full session table, a registration answered without an id,
 * and CloseSession on close.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ChoirClientSessionTest {
  private static ChoirClient.Builder clientFor(FakeServer... servers) {
    List<String> endpoints = Arrays.stream(servers).map(FakeServer::address).toList();
    return ChoirClient.builder().endpoints(endpoints).requestTimeout(Duration.ofSeconds(3))
        .eventLoopThreads(1).random(new Random(7));
  }

  @Test
  void shouldRegisterBeforeTheFirstWriteOnceAndNeverForReads() throws Exception {
    try (FakeServer server = FakeServer.start();
        ChoirClient client = clientFor(server).build()) {
      server.store.enforceSessions();
      client.get("k");
      client.scan("", "", 10);
      assertEquals(List.of(), server.sessionRequests(), "reads need no session");

      long v1 = client.put("a", "1");
      long v2 = client.put("b", "2");
      assertEquals(101, v2);
      assertEquals(100, v1);
      List<Request> sessions = server.sessionRequests();
      assertEquals(1, sessions.size(), "one registration for all writes");
      Request registration = sessions.get(0);
      assertTrue(registration.hasRegisterSession());
      assertEquals(client.clientId(), registration.getClientId(), "a registration carries the instance id");
      assertEquals(0, registration.getRegisterSession().getTimeoutMs(), "the primary fills in the terms");
      assertEquals(FakeStore.FIRST_SESSION_ID, client.sessionId(), "the id the replicas answered");
      assertTrue(server.store.hasSession(client.sessionId()));
      List<Request> puts = server.received().stream().filter(Request::hasPut).toList();
      for (Request put : puts) {
        assertEquals(client.sessionId(), put.getClientId(), "writes carry the session id");
      }
      assertTrue(registration.getFirstIncomplete() <= puts.get(0).getRequestId(),
          "the registration announces no first_incomplete above the write waiting for it");
      Request read = server.received().get(0);
      assertEquals(client.clientId(), read.getClientId(), "reads carry the instance id");
    }
  }

  @Test
  void shouldOpenANewSessionAndResendTransparentlyWhenTheSessionExpiredBeforeTheWrite() throws Exception {
    try (FakeServer server = FakeServer.start();
        ChoirClient client = clientFor(server).build()) {
      server.store.enforceSessions();
      client.put("a", "1");
      long oldId = client.sessionId();
      server.store.expireSessions(); // e.g. the client was idle longer than session_timeout_ms

      long version = client.put("b", "2");

      assertEquals(101, version, "the write went through, once");
      List<Request> puts = server.received().stream().filter(r -> r.hasPut() && r.getPut().getKey().toStringUtf8().equals("b")).toList();
      assertEquals(2, puts.size(), "refused with SESSION_EXPIRED (not executed), then resent");
      assertEquals(puts.get(0).getRequestId(), puts.get(1).getRequestId(), "resent with the same request id");
      assertEquals(oldId, puts.get(0).getClientId());
      assertNotEquals(oldId, puts.get(1).getClientId(), "the new session has a new id");
      assertEquals(FakeStore.FIRST_SESSION_ID + 1, client.sessionId(), "the id the replicas answered");
      assertEquals(puts.get(1).getClientId(), client.sessionId());
      List<Request> sessions = server.sessionRequests();
      assertEquals(2, sessions.size());
      assertEquals(List.of(client.clientId(), client.clientId()),
          sessions.stream().map(Request::getClientId).toList(), "both registrations carry the instance id");
      assertTrue(server.store.hasSession(client.sessionId()));
    }
  }

  @Test
  void shouldFailTheWritesAsNotExecutedWhenTheRegistrationIsAnsweredWithoutASessionId() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          if (req.hasRegisterSession()) {
            // A server from before server-assigned ids: OK, and a session under the client's own id.
            FakeServer.reply(ch, Response.newBuilder().setRequestId(req.getRequestId()).setStatus(Status.OK).build());
          } else {
            FakeServer.answer(s, ch, req);
          }
        }).scriptSessions();
        ChoirClient client = clientFor(server).build()) {
      UnavailableException e = assertThrows(UnavailableException.class, () -> client.put("a", "1"));

      assertTrue(e.getMessage().contains("not executed"), e.getMessage());
      assertTrue(e.getMessage().contains("session id"), e.getMessage());
      assertEquals(0, server.received().stream().filter(Request::hasPut).count(), "no write was sent");
      assertEquals(0, client.sessionId());
    }
  }

  @Test
  void shouldThrowSessionExpiredWhenAnEarlierAttemptMayHaveExecuted() throws Exception {
    AtomicInteger puts = new AtomicInteger();
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          if (req.hasPut() && puts.getAndIncrement() == 0) {
            s.store.apply(req);     // executed...
            s.store.expireSessions(); // ...then the session (and its saved reply) expired...
            ch.close();             // ...and the answer was lost with the connection
          } else {
            FakeServer.answer(s, ch, req);
          }
        });
        ChoirClient client = clientFor(server).build()) {
      server.store.enforceSessions();
      ChoirTimeoutException e = assertThrows(ChoirTimeoutException.class, () -> client.put("k", "v"));
      assertInstanceOf(SessionExpiredException.class, e, "an unknown outcome whose cause is the expired session");
      assertTrue(e.getMessage().contains("outcome is unknown"), e.getMessage());
      assertEquals(2, puts.get(), "the retry found the session expired; the write was not sent a third time");
      assertEquals(1, server.sessionRequests().size(), "no re-registration to resend a write that may have executed");
      assertEquals(1, server.store.lastOp() - 99, "executed exactly once");

      // The next write opens a new session by itself.
      assertEquals(101, client.put("k2", "v"));
    }
  }

  @Test
  void shouldFailWaitingWritesWithBusyAtOnceWhenTheSessionTableIsFull() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          if (req.hasRegisterSession()) {
            FakeServer.reply(ch, Response.newBuilder().setRequestId(req.getRequestId()).setStatus(Status.BUSY)
                .setError("too many client sessions").build());
          } else {
            FakeServer.answer(s, ch, req);
          }
        }).scriptSessions();
        ChoirClient client = clientFor(server).build()) {
      long startNs = System.nanoTime();
      var first = client.async().put("a", "1");
      var second = client.async().put("b", "2");
      BusyException e = assertThrows(BusyException.class, () -> client.put("c", "3"));
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs);
      assertTrue(e.getMessage().contains("not executed"), e.getMessage());
      assertTrue(tookMs < 2_000, "failed on the answer, not at the timeout: " + tookMs + " ms");
      for (var f : List.of(first, second)) {
        Throwable t = assertThrows(ExecutionException.class, () -> f.get(5, TimeUnit.SECONDS)).getCause();
        assertInstanceOf(BusyException.class, t);
      }
      assertEquals(0, server.received().stream().filter(Request::hasPut).count(), "no write was sent");
      // A read needs no session.
      assertEquals(Optional.empty(), client.get("a"));
    }
  }

  @Test
  void shouldCloseTheSessionOnCloseAndOnlyWhenOneWasOpened() throws Exception {
    try (FakeServer server = FakeServer.start()) {
      server.store.enforceSessions();
      ChoirClient reader = clientFor(server).build();
      reader.get("k");
      reader.close();
      assertEquals(List.of(), server.sessionRequests(), "a client that only read leaves nothing to close");

      ChoirClient writer = clientFor(server).build();
      writer.put("k", "v");
      long id = writer.sessionId();
      assertTrue(server.store.hasSession(id));
      writer.close();
      List<Request> sessions = server.sessionRequests();
      assertEquals(2, sessions.size());
      assertTrue(sessions.get(1).hasCloseSession());
      assertEquals(id, sessions.get(1).getClientId(), "CloseSession names the session by its id");
      assertTrue(!server.store.hasSession(id), "no session left behind");
      assertEquals(0, writer.sessionId());
    }
  }

  @Test
  void shouldCloseWithinItsBudgetWhenNoReplicaAnswersTheCloseSession() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, req) -> {
          if (!req.hasCloseSession()) {
            FakeServer.answer(s, ch, req);
          }
        }).scriptSessions()) {
      ChoirClient client = clientFor(server).build();
      client.put("k", "v");
      long startNs = System.nanoTime();
      client.close();
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs);
      assertTrue(tookMs >= Dispatcher.CLOSE_SESSION_BUDGET_MS - 100 && tookMs < Dispatcher.CLOSE_SESSION_BUDGET_MS + 2_500,
          "close took " + tookMs + " ms");
      assertTrue(server.received().stream().anyMatch(Request::hasCloseSession));
    }
  }
}
