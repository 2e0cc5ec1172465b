package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.address;
import static io.choir.server.core.CoreKit.applied;
import static io.choir.server.core.CoreKit.builder;
import static io.choir.server.core.CoreKit.deliver;
import static io.choir.server.core.CoreKit.fresh;
import static io.choir.server.core.CoreKit.only;
import static io.choir.server.core.CoreKit.ops;
import static io.choir.server.core.CoreKit.put;
import static io.choir.server.core.CoreKit.sendsOf;
import static io.choir.server.core.CoreKit.step;
import static io.choir.server.core.CoreKit.tick;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.StartViewChange;
import io.choir.proto.Status;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * What clients are told around a change of primary, and when a committed entry may be applied: the
 * step-down answers of issue 9, 2a (outcome unknown for what was logged), the apply order of 2f, and the
 * hints of 2i (a backup does not send clients to a primary it has not heard from lately).
 */
class StepDownCoreTest {
  private static Event.Peer heartbeatOfView(int from, long view) {
    return heartbeatOfView(from, view, 0);
  }

  private static Event.Peer heartbeatOfView(int from, long view, long lastOp) {
    return new Event.Peer(from, view, MessageType.HEARTBEAT,
        Heartbeat.newBuilder().setLastOp(lastOp).setCommit(0).setLowWatermark(1).build());
  }

  /**
   * Issue 9, 2a: the entries of the requests a primary has logged were multicast (or are flushed as it
   * steps down) and may commit in the next view, so their answer says outcome unknown; a request that
   * only waited in the queue (the flow-control window was full) never got an entry and is plainly
   * NOT_PRIMARY. Both carry the new view and the new primary's address. On the code before the fix the
   * logged ones were told plain NOT_PRIMARY, which a client takes for "not executed".
   */
  @Test
  void shouldAnswerLoggedRequestsOutcomeUnknownAndQueuedOnesNotPrimaryWhenItStepsDown_issue9_2a() {
    ReplicaCore a = new ReplicaCore(builder(1, 3).maxInFlightOps(3).build(), RecoveredState.empty());
    tick(a, 0);
    step(a, new Event.ClientRequest(11, put(1, 1, "a")), MS);
    step(a, new Event.ClientRequest(12, put(1, 2, "b")), MS);
    Effects flushed = tick(a, MS);
    assertEquals(List.of(1L, 2L), ops(flushed.toPersist()));
    assertEquals(1, sendsOf(flushed, MessageType.PREPARE).size(), "ops 1..2 are multicast");
    // Op 3 is admitted but waits in the batch behind the unfinished log write of ops 1..2.
    step(a, new Event.ClientRequest(13, put(1, 3, "c")), 2 * MS);
    assertTrue(tick(a, 2 * MS).toPersist().isEmpty());
    // The window (3 ops) is full: request 4 waits in the queue, no entry.
    Effects paused = step(a, new Event.ClientRequest(14, put(1, 4, "d")), 3 * MS);
    assertEquals(Optional.of(true), paused.intakePaused());
    // A retry of request 1 (same id) waits for op 1.
    step(a, new Event.ClientRequest(15, put(1, 1, "a")), 3 * MS);

    // View 1 formed with this replica's log (its primary, replica 2, has ops 1..3).
    Effects down = step(a, heartbeatOfView(2, 1, 3), 4 * MS);
    assertEquals(1, a.view());
    assertFalse(a.isPrimary());
    assertEquals(List.of(3L), ops(down.toPersist()), "the batched entry is logged as the replica steps down");
    Map<Long, Response> byConnection = new HashMap<>();
    down.replies().forEach(r -> byConnection.put(r.connectionId(), r.responses().get(0)));
    assertEquals(5, byConnection.size(), "every waiting client is answered");
    for (long conn : List.of(11L, 12L, 13L, 15L)) {
      Response r = byConnection.get(conn);
      assertEquals(Status.NOT_PRIMARY, r.getStatus(), "connection " + conn);
      assertTrue(r.getOutcomeUnknown(), "connection " + conn + ": its entry is logged and may still commit");
      assertEquals(1, r.getView());
      assertEquals(address(2), r.getPrimaryAddress());
    }
    Response queued = byConnection.get(14L);
    assertEquals(Status.NOT_PRIMARY, queued.getStatus());
    assertFalse(queued.getOutcomeUnknown(), "it never had an entry: certainly not executed");
    assertEquals(1, queued.getView());
    assertEquals(address(2), queued.getPrimaryAddress());
    assertEquals(Optional.of(false), down.intakePaused(), "intake resumes (the clients go elsewhere)");
  }

  @Test
  void shouldAnswerOutcomeUnknownWhenItStepsDownIntoAViewChange_issue9_2a() {
    ReplicaCore a = fresh(1, 3);
    tick(a, 0);
    step(a, new Event.ClientRequest(11, put(1, 1, "a")), MS);
    tick(a, MS);
    // Its primary asks for view 1 (it followed a stuck replica up): the waiting write may commit there.
    Effects down = step(a, new Event.Peer(2, 1, MessageType.HEARTBEAT_OK,
        HeartbeatOk.getDefaultInstance()), 2 * MS);
    assertEquals(ReplicaCore.Mode.VIEW_CHANGE, a.mode());
    Response r = down.replies().get(0).responses().get(0);
    assertEquals(Status.NOT_PRIMARY, r.getStatus());
    assertTrue(r.getOutcomeUnknown());
    assertEquals(1, r.getView());
    assertEquals(1, sendsOf(down, MessageType.START_VIEW_CHANGE).size());
  }

  /**
   * Issue 9, 2f at the primary: the backups' acknowledgements may arrive before the primary's own log
   * write is done, making the entry committed; it is applied (and the client answered) only once this
   * replica's own Persisted event for it has come, so the apply lane never overtakes the log lane.
   */
  @Test
  void shouldApplyACommittedEntryOnlyAfterThePrimarysOwnLogWrite_issue9_2f() {
    ReplicaCore[] r = {null, fresh(1, 3), fresh(2, 3), fresh(3, 3)};
    for (int id = 1; id <= 3; id++) {
      tick(r[id], 0);
    }
    step(r[1], new Event.ClientRequest(9, put(1, 1, "a")), MS);
    Effects flushed = tick(r[1], MS);
    Effects.Send prepare = only(flushed, MessageType.PREPARE);
    for (int id = 2; id <= 3; id++) {
      deliver(prepare, 1, r[id], id, 2 * MS);
      Effects ok = step(r[id], new Event.Persisted(1), 3 * MS);
      Effects atPrimary = deliver(only(ok, MessageType.PREPARE_OK), id, r[1], 1, 4 * MS);
      assertTrue(atPrimary.toApply().isEmpty(), "not applied before its own log write (ack of " + id + ")");
    }
    assertEquals(1, r[1].commitOp(), "two backups have it: committed");
    assertEquals(0, r[1].persistedOp());
    Effects own = step(r[1], new Event.Persisted(1), 5 * MS);
    assertEquals(List.of(1L), ops(own.toApply()), "applied once it is in its own log");
    Effects reply = step(r[1], applied(own.toApply()), 6 * MS);
    assertEquals(9, reply.replies().get(0).connectionId());
  }

  /**
   * Issue 9, 2i: a backup points a client at its primary only while it hears that primary; once the
   * primary has been silent for a while (max(3 heartbeats, T/2)) it answers UNAVAILABLE with its view
   * and no address, so the client tries another replica instead of waiting on a silent one.
   */
  @Test
  void shouldPointClientsAtALivePrimaryAndAnswerUnavailableWhileItIsSilent_issue9_2i() {
    ReplicaCore b = fresh(2, 3);
    tick(b, 0);
    step(b, heartbeatOfView(1, 0), 10 * MS);
    Response live = step(b, new Event.ClientRequest(1, put(1, 1, "a")), 100 * MS).replies().get(0).responses().get(0);
    assertEquals(Status.NOT_PRIMARY, live.getStatus());
    assertEquals(address(1), live.getPrimaryAddress());
    assertEquals(0, live.getView());
    assertFalse(live.getOutcomeUnknown(), "a backup logs nothing");
    Request read = Request.newBuilder().setClientId(1).setRequestId(2)
        .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("a"))).build();
    assertEquals(Status.NOT_PRIMARY, step(b, new Event.ClientRequest(2, read), 100 * MS).replies().get(0)
        .responses().get(0).getStatus(), "a linearizable read too");
    Response silent = step(b, new Event.ClientRequest(1, put(1, 3, "a")), 10 * MS + T / 2 + MS)
        .replies().get(0).responses().get(0);
    assertEquals(Status.UNAVAILABLE, silent.getStatus());
    assertEquals("", silent.getPrimaryAddress(), "no address of a primary it has not heard from");
    assertEquals(0, silent.getView());
    step(b, new Event.Peer(3, 1, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()), 2 * T);
    Response changing = step(b, new Event.ClientRequest(1, put(1, 4, "a")), 2 * T + MS).replies().get(0).responses().get(0);
    assertEquals(Status.UNAVAILABLE, changing.getStatus(), "in a view change the next primary is not known");
    assertEquals(1, changing.getView());
  }
}
