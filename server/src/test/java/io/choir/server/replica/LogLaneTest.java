package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.server.core.Event;
import io.choir.server.storage.MemoryStorage;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LogLaneTest steps the log lane unit by unit: persists of one epoch become one log write, then one
 * fsync, then one Persisted (group commit); nothing is reported before it is durable, except with
 * fsync off (buffered durability, or the ack-before-fsync breakage), which must report without one.
 */
class LogLaneTest {
  private MemoryStorage storage = new MemoryStorage();
  private final List<Event> events = new ArrayList<>();

  private LogLane lane(boolean fsync, boolean combinedSync, int maxBatchEntries) {
    return new LogLane(storage, fsync, combinedSync, maxBatchEntries, events::add);
  }

  private static StorageLanes.Persist persist(long from, long to, long epoch) {
    return new StorageLanes.Persist(RecoveryTest.entries(from, to), epoch);
  }

  /** Steps until idle, returning the units done in order. */
  private static List<StorageLanes.Unit> drain(LogLane lane) {
    List<StorageLanes.Unit> units = new ArrayList<>();
    while (lane.hasWork()) {
      units.add(lane.next());
      lane.step();
    }
    return units;
  }

  @Test
  void shouldWriteThenSyncThenReportOneGroupPerEpoch() {
    LogLane lane = lane(true, false, 100);
    lane.take(List.of(persist(1, 2, 0), persist(3, 3, 0), persist(4, 5, 1)));

    assertEquals(StorageLanes.Unit.WRITE, lane.next());
    lane.step();
    assertEquals(RecoveryTest.entries(1, 3), storage.readLog(1, 10, Integer.MAX_VALUE));
    assertEquals(1, storage.unsyncedWriteCount(), "written, not yet durable");
    assertEquals(List.of(), events, "nothing is reported before its fsync");
    assertEquals(StorageLanes.Unit.SYNC, lane.next());
    lane.step();
    assertEquals(0, storage.unsyncedWriteCount());
    assertEquals(StorageLanes.Unit.REPORT, lane.next());
    lane.step();
    assertEquals(List.of(new Event.Persisted(3, 0)), events);

    assertEquals(List.of(StorageLanes.Unit.WRITE, StorageLanes.Unit.SYNC, StorageLanes.Unit.REPORT), drain(lane));
    assertEquals(List.of(new Event.Persisted(3, 0), new Event.Persisted(5, 1)), events);
    assertEquals(2, lane.fsyncs());
  }

  @Test
  void shouldSplitAGroupAtMaxBatchEntries() {
    LogLane lane = lane(true, false, 3);
    lane.take(List.of(persist(1, 2, 0), persist(3, 4, 0), persist(5, 5, 0)));

    drain(lane);

    assertEquals(List.of(new Event.Persisted(2, 0), new Event.Persisted(5, 0)), events);
  }

  @Test
  void shouldLoseAWrittenButUnsyncedGroupOnPowerLossWithoutHavingReportedIt() {
    LogLane lane = lane(true, false, 100);
    lane.take(List.of(persist(1, 3, 0)));
    lane.step(); // WRITE

    storage = storage.powerLossKeeping(0);

    assertEquals(0, storage.lastLogOp());
    assertEquals(List.of(), events);
  }

  @Test
  void shouldReportWithoutAnFsyncWhenFsyncIsOff() {
    // test_break_protocol: ack-before-fsync, and durability: buffered.
    LogLane lane = lane(false, false, 100);
    lane.take(List.of(persist(1, 3, 0)));

    assertEquals(List.of(StorageLanes.Unit.WRITE, StorageLanes.Unit.REPORT), drain(lane));

    assertEquals(List.of(new Event.Persisted(3, 0)), events);
    assertEquals(1, storage.unsyncedWriteCount(), "reported persisted, yet a power loss loses it");
    assertEquals(0, lane.fsyncs());
  }

  @Test
  void shouldWriteAndSyncAsOneSyncedWriteWhenCombined() {
    LogLane lane = lane(true, true, 100);
    lane.take(List.of(persist(1, 3, 0)));

    assertEquals(StorageLanes.Unit.WRITE, lane.next());
    lane.step();
    assertEquals(0, storage.unsyncedWriteCount());
    assertEquals(List.of(StorageLanes.Unit.REPORT), drain(lane));
    assertEquals(1, lane.fsyncs());
  }

  @Test
  void shouldRunTasksInTheirPlaceAmongTheWrites() {
    LogLane lane = lane(true, false, 100);
    List<String> order = new ArrayList<>();
    lane.take(List.of(persist(1, 3, 0),
        new StorageLanes.Run("truncate", () -> order.add("run after " + storage.lastLogOp())),
        persist(4, 4, 0)));

    drain(lane);

    assertEquals(List.of("run after 3"), order);
    assertEquals(List.of(new Event.Persisted(3, 0), new Event.Persisted(4, 0)), events);
    assertFalse(lane.hasWork());
    assertTrue(storage.readLog(1, 4, Integer.MAX_VALUE).size() == 4);
  }
}
