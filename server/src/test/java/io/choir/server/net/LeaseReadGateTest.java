package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.Scan;
import io.choir.server.core.LeaseReadWindow;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** What the event loops may answer without the core (LeaseReadGate, LeaseReadWindow). */
class LeaseReadGateTest {
  private final AtomicLong now = new AtomicLong(1_000);
  private final AtomicLong applied = new AtomicLong(10);
  private final SimpleMeterRegistry metrics = new SimpleMeterRegistry();
  private final LeaseReadGate gate = new LeaseReadGate(16, applied::get, now::get, metrics, 2, 500);
  /** What the gate handed on: "released id" or "refused id: why". */
  private final List<String> routed = new ArrayList<>();

  LeaseReadGateTest() {
    gate.route(new LeaseReadGate.Route() {
      @Override
      public void release(ClientConnection c, Request request) {
        routed.add("released " + request.getRequestId());
      }

      @Override
      public void refuse(ClientConnection c, Request request, String why) {
        routed.add("refused " + request.getRequestId() + ": " + why);
      }
    });
  }

  private static Request get(long id, String key) {
    return get(key).toBuilder().setRequestId(id).build();
  }

  private double counted(String name) {
    return metrics.counter(name).count();
  }

  private static Request get(String key) {
    return Request.newBuilder().setRequestId(1).setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8(key))).build();
  }

  @Test
  void shouldAdmitNothingBeforeAWindowIsPublished() {
    assertFalse(gate.admits(get("k")));
    assertEquals(0, gate.takeServed());
  }

  @Test
  void shouldAdmitALinearizableGetInsideTheWindowFromAStateAtItsReadIndex() {
    gate.publish(new LeaseReadWindow(2_000, 10));
    assertTrue(gate.admits(get("k")));
    applied.set(9);
    assertFalse(gate.admits(get("k")), "the state is behind the read index");
    applied.set(12);
    now.set(1_999);
    assertTrue(gate.admits(get("k")));
    now.set(2_000);
    assertFalse(gate.admits(get("k")), "the lease ended");
    assertEquals(2, gate.takeServed());
    assertEquals(0, gate.takeServed(), "taken once");
    assertEquals(1, counted("choir.lease_gate.no_room_to_wait"), "admits has no connection to wait for");
    assertEquals(1, counted("choir.lease_gate.window_ended"));
    assertEquals(0, counted("choir.lease_gate.no_window"));
  }

  @Test
  void shouldLeaveEverythingButAValidLinearizableGetToTheCore() {
    gate.publish(new LeaseReadWindow(2_000, 0));
    assertFalse(gate.admits(get("k").toBuilder().setConsistency(ReadConsistency.SEQUENTIAL).setMinOp(11).build()),
        "a sequential read the applied number (10) has not reached: the core queues it");
    assertFalse(gate.admits(get("k").toBuilder().setConsistencyValue(7).build()), "an unknown consistency");
    assertFalse(gate.admits(Request.newBuilder().setRequestId(1).setScan(Scan.getDefaultInstance()).build()));
    assertFalse(gate.admits(get("")), "an empty key: the core refuses it");
    assertFalse(gate.admits(get("k".repeat(17))), "over max_key_bytes: the core refuses it");
    assertTrue(gate.admits(get("k".repeat(16))));
    assertFalse(gate.admits(get("k").toBuilder().setClientId(5).setRequestId(0).build()), "INVALID at the core");
    assertFalse(gate.admits(get("k").toBuilder().setFirstIncomplete(2).build()), "INVALID at the core");
    assertFalse(gate.admits(Request.newBuilder().setRequestId(1).build()), "no operation");
    assertEquals(1, gate.takeServed());
    assertEquals(0, counted("choir.lease_gate.no_window") + counted("choir.lease_gate.window_ended")
        + counted("choir.lease_gate.no_room_to_wait"), "what the window could never serve is not counted");
  }

  @Test
  void shouldAdmitASequentialGetOnceTheAppliedNumberReachesTheOpItsClientSaw() {
    Request seq = get("k").toBuilder().setConsistency(ReadConsistency.SEQUENTIAL).setMinOp(10).build();
    assertFalse(gate.admits(seq), "nothing before a window is published");
    gate.publish(LeaseReadWindow.SEQUENTIAL_ONLY); // a backup
    assertTrue(gate.admits(seq));
    assertFalse(gate.admits(get("k")), "no lease part: linearizable reads go to the core");
    assertFalse(gate.admits(seq.toBuilder().setMinOp(11).build()));
    assertFalse(gate.admits(seq.toBuilder().setGet(Get.newBuilder()).build()), "an empty key: the core refuses it");
    assertEquals(1, gate.takeSequentialServed());
    assertEquals(0, gate.takeServed(), "counted apart from the lease reads");
    gate.publish(LeaseReadWindow.NONE); // recovering
    assertFalse(gate.admits(seq));
  }

  @Test
  void shouldAdmitNothingOnceClosedWhateverIsPublishedAfter() {
    gate.publish(new LeaseReadWindow(2_000, 0));
    gate.close();
    assertFalse(gate.admits(get("k")));
    gate.publish(new LeaseReadWindow(5_000, 0));
    assertFalse(gate.admits(get("k")), "a window published after close is ignored");
  }

  @Test
  void shouldAdmitNothingUnderTheNoneWindow() {
    gate.publish(new LeaseReadWindow(2_000, 0));
    gate.publish(LeaseReadWindow.NONE);
    assertFalse(gate.admits(get("k")));
    assertEquals(1, counted("choir.lease_gate.no_window"));
    assertFalse(LeaseReadWindow.NONE.admits(Long.MIN_VALUE + 1, Long.MAX_VALUE));
  }

  @Test
  void shouldLetAReadInsideTheWindowWaitForTheAppliedNumberAndHandItOnInOrder() {
    gate.publish(new LeaseReadWindow(2_000, 12));
    ClientConnection c = null; // the gate only carries it
    assertEquals(LeaseReadGate.Admission.WAITS, gate.admit(c, get(1, "a")));
    gate.publish(new LeaseReadWindow(2_000, 14));
    assertEquals(LeaseReadGate.Admission.WAITS, gate.admit(c, get(2, "b")));
    assertEquals(LeaseReadGate.Admission.CORE, gate.admit(c, get(3, "c")), "no room: max 2 wait");
    assertEquals(1, counted("choir.lease_gate.no_room_to_wait"));

    applied.set(11);
    gate.appliedTo(11);
    assertEquals(List.of(), routed, "11 is below both read indexes");
    applied.set(13);
    gate.appliedTo(13);
    assertEquals(List.of("released 1"), routed);
    applied.set(20);
    gate.appliedTo(20);
    assertEquals(List.of("released 1", "released 2"), routed);
    assertEquals(0, gate.waiting());
    assertEquals(2, gate.takeServed(), "both are lease reads the core counts");
    assertEquals(2, counted("choir.lease_gate.waited"));

    now.set(2_000);
    applied.set(0);
    assertEquals(LeaseReadGate.Admission.CORE, gate.admit(c, get(4, "d")), "after the window's end nothing waits");
  }

  @Test
  void shouldRefuseAReadThatWaitedPastTheTimeoutOrIsStillWaitingAtClose() {
    gate.publish(new LeaseReadWindow(10_000, 12));
    assertEquals(LeaseReadGate.Admission.WAITS, gate.admit(null, get(1, "a")));
    now.addAndGet(400);
    assertEquals(LeaseReadGate.Admission.WAITS, gate.admit(null, get(2, "b")));
    now.addAndGet(101); // read 1 has waited 501 ns, over the 500 ns timeout; read 2 101 ns
    gate.publish(new LeaseReadWindow(10_000, 12));
    assertEquals(List.of("refused 1: the read timed out waiting for the applied state (read_timeout_ms)"), routed);
    assertEquals(1, counted("choir.lease_gate.wait_expired"));

    gate.close();
    assertEquals("refused 2: the replica stopped serving requests", routed.get(1));
    applied.set(99);
    gate.appliedTo(99);
    assertEquals(2, routed.size(), "nothing left to release");
    assertEquals(LeaseReadGate.Admission.CORE, gate.admit(null, get(3, "c")));
  }
}
