package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Put;
import io.choir.proto.Request;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The session gate's rules, step by step (no network): Raft thesis 6.3 with one registration in flight. */
class SessionTest {
  private final AtomicLong ids = new AtomicLong(500);
  private final Session session = new Session(7, ids::incrementAndGet);

  private static Call write() {
    return new Call(Request.newBuilder().setPut(Put.getDefaultInstance()).build(), Call.Kind.APPLICATION, false,
        null, 0, 1_000_000);
  }

  @Test
  void shouldRegisterOnceForTheWritesThatArriveMeanwhile() {
    Call a = write();
    Call b = write();
    assertEquals(Session.Gate.REGISTER, session.admit(a));
    assertEquals(Session.Gate.WAIT, session.admit(b));
    assertEquals(List.of(a, b), session.registered());
    assertEquals(Session.Gate.SEND, session.admit(a));
    assertEquals(1, a.sessionGeneration);
    assertEquals(7, a.clientId, "the first session keeps the configured id");
  }

  @Test
  void shouldOpenTheNextSessionUnderANewIdAndRefuseToResendAWriteThatMayHaveExecuted() {
    Call a = write();
    session.admit(a);
    session.registered();
    session.admit(a);
    a.outcomeUnknown = true; // sent in generation 1, its answer lost
    Call b = write();
    session.admit(b);
    session.expired(b); // b learned that generation 1's session is gone
    assertEquals(Session.Gate.EXPIRED, session.admit(a), "a may have executed in the lost session");
    assertEquals(Session.Gate.REGISTER, session.admit(b), "b never executed: it waits for a new session");
    assertNotEquals(7, session.clientId());
    session.registered();
    assertEquals(Session.Gate.SEND, session.admit(b));
    assertEquals(session.clientId(), b.clientId);
    assertEquals(2, b.sessionGeneration);
    assertEquals(Session.Gate.EXPIRED, session.admit(a), "still not in generation 2");
  }

  @Test
  void shouldIgnoreAnExpiryReportedForAnOlderGeneration() {
    Call old = write();
    session.admit(old);
    session.registered();
    session.admit(old); // generation 1
    session.expired(old);
    Call fresh = write();
    session.admit(fresh);
    session.registered(); // generation 2
    session.expired(old); // a late SESSION_EXPIRED of generation 1
    assertEquals(Session.State.REGISTERED, session.state());
  }

  @Test
  void shouldKeepWritesWaitingWhenARegistrationFailsAndRetryIsWanted() {
    Call a = write();
    session.admit(a);
    assertNull(session.registrationFailed(true, true), "a still waits: register again");
    assertTrue(session.mayExist(), "a registration whose outcome is unknown may have opened it");
    assertEquals(List.of(a), session.registrationFailed(false, false));
    assertEquals(Session.State.NONE, session.state());
    assertEquals(7, session.clientId(), "no session was lost: the id stays");
  }

  @Test
  void shouldWriteWithoutASessionOnOldReplicasAndRegisterOnceTheyAreUpgraded() {
    Call a = write();
    session.admit(a);
    assertEquals(List.of(a), session.unsupported());
    assertEquals(Session.Gate.SEND, session.admit(a));
    session.expired(a); // the replicas now answer SESSION_EXPIRED: they know sessions
    assertEquals(Session.Gate.REGISTER, session.admit(write()));
  }
}
