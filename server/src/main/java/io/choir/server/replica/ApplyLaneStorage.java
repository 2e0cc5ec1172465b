package io.choir.server.replica;

import io.choir.proto.Entry;
import io.choir.server.storage.ForwardingStorage;
import io.choir.server.storage.Storage;
import java.util.List;

/**
 * ApplyLaneStorage is the storage as the state machine on the apply lane sees it: every change to the
 * log it makes (installSnapshot's truncation of the whole log) is handed to the log lane and waited
 * for, so it takes its place after every log write queued before it instead of racing them (issue 9,
 * hole 2f: a log append still queued on the log lane could otherwise land after the install emptied
 * the log, leaving stale entries below the installed op and a hole above them). Everything else goes
 * straight to the storage.
 *
 * <p>Until {@link #attach} (while the replica starts: the state machine's load), log changes go
 * straight to the storage too: no lane runs yet.
 */
public final class ApplyLaneStorage extends ForwardingStorage {
  /** Runs an action on the log lane after what is queued there, and returns once it ran. */
  public interface LogLaneRunner {
    void runAndWait(String what, Runnable action);
  }

  private volatile LogLaneRunner logLane;

  public ApplyLaneStorage(Storage delegate) {
    super(delegate);
  }

  /** From now on, log changes run on the log lane. */
  public void attach(LogLaneRunner logLane) {
    this.logLane = logLane;
  }

  private void onLogLane(String what, Runnable action) {
    LogLaneRunner lane = logLane;
    if (lane == null) {
      action.run();
    } else {
      lane.runAndWait(what, action);
    }
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    onLogLane("append to the log", () -> delegate.appendLog(entries, sync));
  }

  @Override
  public void truncateLogBefore(long op, boolean sync) {
    onLogLane("truncate the log before " + op, () -> delegate.truncateLogBefore(op, sync));
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    onLogLane("truncate the log after " + op, () -> delegate.truncateLogAfter(op, sync));
  }

  /** Closes nothing: the replica closes the storage it opened itself. */
  @Override
  public void close() {}
}
