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
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** What the event loops may answer without the core (LeaseReadGate, LeaseReadWindow). */
class LeaseReadGateTest {
  private final AtomicLong now = new AtomicLong(1_000);
  private final AtomicLong applied = new AtomicLong(10);
  private final SimpleMeterRegistry metrics = new SimpleMeterRegistry();
  private final LeaseReadGate gate = new LeaseReadGate(16, applied::get, now::get, metrics);

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
    assertEquals(1, counted("choir.lease_gate.applied_behind"));
    assertEquals(1, counted("choir.lease_gate.window_ended"));
    assertEquals(0, counted("choir.lease_gate.no_window"));
  }

  @Test
  void shouldLeaveEverythingButAValidLinearizableGetToTheCore() {
    gate.publish(new LeaseReadWindow(2_000, 0));
    assertFalse(gate.admits(get("k").toBuilder().setConsistency(ReadConsistency.SEQUENTIAL).build()));
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
        + counted("choir.lease_gate.applied_behind"), "what the window could never serve is not counted");
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
}
