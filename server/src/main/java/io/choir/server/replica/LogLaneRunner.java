package io.choir.server.replica;

/**
 * LogLaneRunner runs the state machine's own log changes (an install's truncation of the whole log,
 * see {@link ApplyLaneStorage}) where the replica's phase says they belong: while the replica starts
 * (recovery, the state machine's load) no lane runs yet, so a change runs on the caller's thread;
 * once the log lane has started, a change is queued on it behind the log writes queued before it and
 * waited for. It is built first, before the state machine that uses it and the storage stage whose
 * log lane it hands changes to, because each of those needs it when it is built; the storage stage
 * (in the simulator, the log lane's actor) tells it when the lane starts.
 */
public final class LogLaneRunner {
  /** Runs an action on the log lane after what is queued there, and returns once it ran. */
  public interface Lane {
    void runAndWait(String what, Runnable action);
  }

  /** Where log changes run now. */
  private sealed interface Phase permits Starting, OnLane {}

  /** The replica is starting: no lane runs, a log change runs on the caller's thread. */
  private record Starting() implements Phase {}

  /** The log lane runs: a log change runs on it, in order with its writes. */
  private record OnLane(Lane lane) implements Phase {}

  /** Starting until {@link #laneStarted}; read by the apply lane's thread, hence volatile. */
  private volatile Phase phase = new Starting();

  /** The log lane has started: from now on, log changes run on it. Happens once. */
  public void laneStarted(Lane lane) {
    if (phase instanceof OnLane) {
      throw new IllegalStateException("the log lane has started already");
    }
    phase = new OnLane(lane);
  }

  /** Runs action where log changes belong now (see the class comment), and returns once it ran. */
  public void runAndWait(String what, Runnable action) {
    if (phase instanceof OnLane onLane) {
      onLane.lane().runAndWait(what, action);
    } else {
      action.run();
    }
  }
}
