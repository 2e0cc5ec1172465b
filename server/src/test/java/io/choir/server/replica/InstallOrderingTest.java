package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.KeyValue;
import io.choir.server.core.RecoveredState;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * InstallOrderingTest: a state-transfer install on the apply lane empties the log, while the log lane
 * may still hold appends queued before the replica asked for the transfer (issue 9, hole 2f). If the
 * truncation ran on the apply lane, such an append would land after it, below the installed op: a
 * log that no longer meets the applied state, which recovery refuses. With the truncation on the log
 * lane behind those appends ({@link ApplyLaneStorage}), a crash at every point of the install (kill -9,
 * or a power loss keeping any prefix of the unsynced writes) leaves a state recovery accepts: the
 * wiped install (catching up) or the installed snapshot with an empty log.
 *
 * <p>The two lanes are stepped by hand in the order that used to break it: the apply lane first,
 * the log lane's queued append after.
 */
class InstallOrderingTest {
  private static final long INSTALLED_OP = 100;

  /** Thrown at the crash point. */
  private static final class Crash extends RuntimeException {
    private static final long serialVersionUID = 1L;
  }

  /** One replica's two lanes, stepped by hand, crashing after a given number of units. */
  private static final class Replica {
    MemoryStorage storage = new MemoryStorage();
    final LogLaneRunner logChanges = new LogLaneRunner();
    final KvStateMachine stateMachine = new KvStateMachine(new ApplyLaneStorage(storage, logChanges), 100, 10);
    final LogLane log = new LogLane(storage, true, false, 100, e -> { });
    final ApplyLane apply = new ApplyLane(stateMachine, 100, e -> { });
    final ArrayDeque<StorageLanes.Task> logInbox = new ArrayDeque<>();
    final ArrayDeque<StorageLanes.Task> applyInbox = new ArrayDeque<>();
    int unitsLeft;
    int units;

    Replica(boolean ordered, int crashAfterUnits) {
      storage.appendLog(RecoveryTest.entries(1, 4), true);
      stateMachine.apply(RecoveryTest.entries(1, 4), false);
      storage.sync();
      if (ordered) {
        logChanges.laneStarted((what, action) -> {
          CompletableFuture<Void> done = new CompletableFuture<>();
          logInbox.add(new StorageLanes.Run(what, () -> {
            action.run();
            done.complete(null);
          }));
          while (!done.isDone()) {
            stepLog();
          }
        });
      }
      unitsLeft = crashAfterUnits;
      // Queued on the log lane before the core asked for the transfer; not written yet.
      logInbox.add(new StorageLanes.Persist(RecoveryTest.entries(5, 6), 0));
      List<KeyValue> kvs = List.of(KeyValue.newBuilder().setKey(ByteString.copyFromUtf8("k"))
          .setValue(ByteString.copyFromUtf8("v")).setVersion(90).build());
      applyInbox.add(new StorageLanes.Run("begin", stateMachine::beginInstall));
      applyInbox.add(new StorageLanes.Run("data", () -> stateMachine.installData(kvs)));
      applyInbox.add(new StorageLanes.Run("finish", () -> stateMachine.installSnapshot(INSTALLED_OP, 77, List.of())));
    }

    private void unit() {
      if (unitsLeft-- == 0) {
        throw new Crash();
      }
      units++;
    }

    void stepLog() {
      unit();
      if (log.hasWork()) {
        log.step();
      } else {
        log.take(new ArrayList<>(logInbox));
        logInbox.clear();
      }
    }

    void stepApply() {
      unit();
      if (apply.hasWork()) {
        apply.step();
      } else {
        apply.take(new ArrayList<>(applyInbox));
        applyInbox.clear();
      }
    }

    /** The apply lane to the end, then the log lane; false when the crash point came first. */
    boolean run() {
      try {
        while (apply.hasWork() || !applyInbox.isEmpty()) {
          stepApply();
        }
        while (log.hasWork() || !logInbox.isEmpty()) {
          stepLog();
        }
        return true;
      } catch (Crash c) {
        return false;
      }
    }
  }

  private static RecoveredState restart(MemoryStorage storage) {
    return Recovery.recover(storage, new KvStateMachine(storage, 100, 10), "test", false, true);
  }

  @Test
  void shouldLeaveALogBelowTheInstalledOpWhenTheTruncationRacesTheLogLane() {
    Replica r = new Replica(false, Integer.MAX_VALUE);
    r.run();

    assertEquals(RecoveryTest.entries(5, 6), r.storage.readLog(1, 200, Integer.MAX_VALUE));
    String message = assertThrows(Recovery.InconsistentDataException.class,
        () -> restart(r.storage.processCrash())).getMessage();
    assertTrue(message.contains("below the applied op " + INSTALLED_OP), message);
  }

  @Test
  void shouldLeaveAStateRecoveryAcceptsAfterACrashAtEveryPointOfTheInstall() {
    int total;
    {
      Replica whole = new Replica(true, Integer.MAX_VALUE);
      assertTrue(whole.run());
      total = whole.units;
      assertEquals(0, whole.storage.lastLogOp(), "the queued append went before the truncation");
      RecoveredState after = restart(whole.storage.processCrash());
      assertEquals(INSTALLED_OP, after.appliedOp());
    }
    int cases = 0;
    for (int crashAt = 0; crashAt <= total; crashAt++) {
      Replica probe = new Replica(true, crashAt);
      probe.run();
      int unsynced = probe.storage.unsyncedWriteCount();
      for (int kept = -1; kept <= unsynced; kept++) {
        Replica r = new Replica(true, crashAt);
        r.run();
        MemoryStorage after = kept < 0 ? r.storage.processCrash() : r.storage.powerLossKeeping(kept);
        String where = "crash after " + crashAt + " units, " + (kept < 0 ? "kill -9" : "power loss keeping " + kept);
        RecoveredState s = restart(after);
        if (s.appliedOp() == INSTALLED_OP) {
          assertEquals(0, after.lastLogOp(), where + ": an installed snapshot has no log below it");
        } else {
          assertTrue(s.appliedOp() == 4 || s.mustCatchUp(), where + ": the old state, or wiped and catching up");
        }
        cases++;
      }
    }
    assertTrue(cases > total, "every crash point, with both crash models");
  }
}
