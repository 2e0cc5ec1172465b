package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Put;
import io.choir.proto.Request;
import org.junit.jupiter.api.Test;

/** What a call ends in when a replica refuses the client for good (TLS, token, plaintext on a TLS port). */
class FailuresTest {
  private static Call write() {
    return new Call(Request.newBuilder().setPut(Put.getDefaultInstance()).build(), Call.Kind.APPLICATION, false,
        null, 0, 1_000_000_000L);
  }

  @Test
  void shouldSayNotExecutedWhenNoEarlierAttemptCanHaveRun() {
    TlsException tls = new TlsException("TLS with b failed", null);
    assertSame(tls, Failures.refusedForGood(write(), tls));
  }

  @Test
  void shouldReportUnknownWhenAnEarlierAttemptWasLostAfterItWasWritten() {
    // The first attempt reached replica a and its connection died: a may have logged the write. The
    // retry on b fails TLS. "Not executed" (what TlsException says) would be false.
    Call call = write();
    synchronized (call) {
      call.outcomeUnknown = true;
    }
    ChoirException e = Failures.refusedForGood(call, new TlsException("TLS with b failed", null));
    assertInstanceOf(ChoirTimeoutException.class, e);
    assertTrue(e.getMessage().contains("outcome is unknown"), e.getMessage());
    assertInstanceOf(TlsException.class, e.getCause());
    ChoirException denied = Failures.refusedForGood(call, new PermissionDeniedException("requires TLS", -1));
    assertInstanceOf(ChoirTimeoutException.class, denied);
  }
}
