package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.choir.proto.Put;
import io.choir.proto.Request;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The session gate's rules, step by step (no network): Raft thesis 6.3 with one registration in
 * flight, and session ids that the replicas assign.
 */
class SessionTest {
  private static final long INSTANCE = 7 | Long.MIN_VALUE;
  private final Session session = new Session(INSTANCE);

  private static Call write() {
    return new Call(Request.newBuilder().setPut(Put.getDefaultInstance()).build(), Call.Kind.APPLICATION, false,
        null, 0, 1_000_000);
  }

  @Test
  void shouldRegisterOnceForTheWritesThatArriveMeanwhileAndSendThemUnderTheAssignedId() {
    Call a = write();
    Call b = write();
    assertEquals(Session.Gate.REGISTER, session.admit(a));
    assertEquals(Session.Gate.WAIT, session.admit(b));
    assertEquals(0, session.sessionId(), "no session yet");
    assertEquals(List.of(a, b), session.registered(41));
    assertEquals(Session.Gate.SEND, session.admit(a));
    assertEquals(1, a.sessionGeneration);
    assertEquals(41, a.clientId, "writes carry the id the replicas assigned");
    assertEquals(41, session.sessionId());
    assertEquals(INSTANCE, session.instanceId(), "the instance id stays the registrations' own");
  }

  @Test
  void shouldOpenTheNextSessionUnderItsNewIdAndRefuseToResendAWriteThatMayHaveExecuted() {
    Call a = write();
    session.admit(a);
    session.registered(41);
    session.admit(a);
    a.outcomeUnknown = true; // sent in generation 1, its answer lost
    Call b = write();
    session.admit(b);
    session.expired(b); // b learned that generation 1's session is gone
    assertEquals(0, session.sessionId());
    assertEquals(Session.Gate.EXPIRED, session.admit(a), "a may have executed in the lost session");
    assertEquals(Session.Gate.REGISTER, session.admit(b), "b never executed: it waits for a new session");
    session.registered(97);
    assertEquals(Session.Gate.SEND, session.admit(b));
    assertEquals(97, b.clientId);
    assertEquals(2, b.sessionGeneration);
    assertEquals(Session.Gate.EXPIRED, session.admit(a), "still not in generation 2");
  }

  @Test
  void shouldIgnoreAnExpiryReportedForAnOlderGeneration() {
    Call old = write();
    session.admit(old);
    session.registered(41);
    session.admit(old); // generation 1
    session.expired(old);
    Call fresh = write();
    session.admit(fresh);
    session.registered(97); // generation 2
    session.expired(old); // a late SESSION_EXPIRED of generation 1
    assertEquals(Session.State.REGISTERED, session.state());
    assertEquals(97, session.sessionId());
  }

  @Test
  void shouldKeepWritesWaitingWhenARegistrationFailsAndRetryIsWanted() {
    Call a = write();
    session.admit(a);
    assertNull(session.registrationFailed(true), "a still waits: register again");
    assertEquals(Session.State.REGISTERING, session.state());
    assertEquals(List.of(a), session.registrationFailed(false));
    assertEquals(Session.State.NONE, session.state());
    assertEquals(0, session.sessionId(), "no session to close: none whose id this client knows");
  }

  @Test
  void shouldForgetOnlyTheSessionThatWasClosed() {
    Call a = write();
    session.admit(a);
    session.registered(41);
    session.closed(40); // not ours (any more)
    assertEquals(41, session.sessionId());
    session.closed(41);
    assertEquals(0, session.sessionId());
    assertEquals(Session.State.NONE, session.state());
  }

  @Test
  void shouldWriteWithoutASessionOnOldReplicasAndRegisterOnceTheyAreUpgraded() {
    Call a = write();
    session.admit(a);
    assertEquals(List.of(a), session.unsupported());
    assertEquals(Session.Gate.SEND, session.admit(a));
    assertEquals(INSTANCE, a.clientId, "old replicas key their table by the instance id");
    session.expired(a); // the replicas now answer SESSION_EXPIRED: they know sessions
    assertEquals(Session.Gate.REGISTER, session.admit(write()));
  }

  @Test
  void shouldRefuseIdZero() {
    assertThrows(IllegalArgumentException.class, () -> new Session(0));
    session.admit(write());
    assertThrows(IllegalArgumentException.class, () -> session.registered(0));
  }
}
