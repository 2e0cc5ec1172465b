package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LogLaneRunnerTest: a log change runs on the caller's thread while the replica starts, and on the log
 * lane (behind what is queued there) once the lane has started; the lane starts once.
 */
class LogLaneRunnerTest {
  private final List<String> ran = new ArrayList<>();

  @Test
  void shouldRunALogChangeOnTheCallersThreadBeforeTheLaneStarts() {
    LogLaneRunner runner = new LogLaneRunner();
    Thread caller = Thread.currentThread();
    runner.runAndWait("truncate",
        () -> ran.add("truncate on " + (Thread.currentThread() == caller ? "caller" : "other")));
    assertEquals(List.of("truncate on caller"), ran);
  }

  @Test
  void shouldRunALogChangeOnTheLaneOnceItHasStarted() {
    LogLaneRunner runner = new LogLaneRunner();
    runner.laneStarted((what, action) -> {
      ran.add("lane takes " + what);
      action.run();
    });
    runner.runAndWait("truncate", () -> ran.add("truncate"));
    assertEquals(List.of("lane takes truncate", "truncate"), ran);
  }

  @Test
  void shouldRefuseASecondStartOfTheLane() {
    LogLaneRunner runner = new LogLaneRunner();
    runner.laneStarted((what, action) -> action.run());
    assertThrows(IllegalStateException.class, () -> runner.laneStarted((what, action) -> action.run()));
  }
}
