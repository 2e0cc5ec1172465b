package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Entry;
import io.choir.proto.Response;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Intake: the primary's window, its queue and the clients waiting for each op (VR Revisited 4.1). */
class IntakeTest {
  private final CoreConfig config = CoreKit.builder(1, 3).maxInFlightOps(4).maxQueuedRequests(1).build();
  private final Intake intake = new Intake(config);
  private final Counters counters = new Counters();

  private static Event.ClientRequest write(long connectionId, long clientId, long requestId) {
    return new Event.ClientRequest(connectionId, CoreKit.put(clientId, requestId, "k"));
  }

  @Test
  void shouldLetARetryOfAWriteInFlightWaitForTheSameReply() {
    Event.ClientRequest w = write(1, 7, 1);
    Entry e = Intake.entryFor(w.request(), 1, 0, 0, config);
    intake.admitted(e, e.getSerializedSize(), w);
    assertTrue(intake.joinInFlight(write(2, 7, 1)));
    assertFalse(intake.joinInFlight(write(3, 0, 1)), "writes without a client id are never matched");
    Effects out = new Effects();
    intake.applied(e, Response.newBuilder().setRequestId(1).build(), out);
    assertEquals(List.of(1L, 2L), out.replies().stream().map(Effects.Reply::connectionId).toList());
    assertFalse(intake.joinInFlight(write(4, 7, 1)), "once applied, a retry gets a new entry");
  }

  @Test
  void shouldQueueWhileTheWindowIsFullAndResumeOnceItIsHalfEmpty() {
    assertTrue(intake.mustQueue(4));
    Effects out = new Effects();
    intake.queue(write(1, 0, 1), counters, out);
    assertEquals(Optional.of(true), out.intakePaused());
    intake.queue(write(2, 0, 2), counters, new Effects());
    assertEquals(1, counters.busy, "max_queued_requests 1");
    assertNull(intake.nextQueued(4), "the window is still full");
    assertEquals(1, intake.nextQueued(3).connectionId());
    Effects resumed = new Effects();
    intake.maybeResume(3, resumed);
    assertEquals(Optional.empty(), resumed.intakePaused(), "3 of 4 in flight is more than half");
    intake.maybeResume(2, resumed);
    assertEquals(Optional.of(false), resumed.intakePaused());
  }
}
