package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.core.Event;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** ApplyLaneTest: consecutive applies become one state-machine apply and one Applied, in order. */
class ApplyLaneTest {
  private final MemoryStorage storage = new MemoryStorage();
  private final KvStateMachine stateMachine = new KvStateMachine(storage, 100, 10);
  private final List<Event> events = new ArrayList<>();

  @Test
  void shouldApplyConsecutiveGroupsAsOneUpToMaxBatchEntriesAndRunTasksBetween() {
    ApplyLane lane = new ApplyLane(stateMachine, 3, events::add);
    List<Long> appliedWhenRun = new ArrayList<>();
    lane.take(List.of(
        new StorageLanes.Apply(RecoveryTest.entries(1, 1)),
        new StorageLanes.Apply(RecoveryTest.entries(2, 3)),
        new StorageLanes.Apply(RecoveryTest.entries(4, 4)),
        new StorageLanes.Run("install step", () -> appliedWhenRun.add(stateMachine.applied())),
        new StorageLanes.Apply(RecoveryTest.entries(5, 5))));

    while (lane.hasWork()) {
      lane.step();
    }

    List<String> reported = events.stream().map(e -> {
      Event.Applied a = (Event.Applied) e;
      return a.firstOp() + ".." + a.op() + "/" + a.replies().size();
    }).toList();
    assertEquals(List.of("1..3/3", "4..4/1", "5..5/1"), reported);
    assertEquals(List.of(4L), appliedWhenRun);
    assertEquals(5, stateMachine.applied());
    assertTrue(storage.unsyncedWriteCount() > 0, "applies are not synced: the log above applied replays");
  }
}
