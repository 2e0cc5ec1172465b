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
 * <p>Where a log change runs depends on the replica's phase, which the {@link LogLaneRunner} keeps:
 * while the replica starts (the state machine's load) no lane runs yet, so it goes straight to the
 * storage too.
 */
public final class ApplyLaneStorage extends ForwardingStorage {
  private final LogLaneRunner logLane;

  public ApplyLaneStorage(Storage delegate, LogLaneRunner logLane) {
    super(delegate);
    this.logLane = logLane;
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    logLane.runAndWait("append to the log", () -> delegate.appendLog(entries, sync));
  }

  @Override
  public void truncateLogBefore(long op, boolean sync) {
    logLane.runAndWait("truncate the log before " + op, () -> delegate.truncateLogBefore(op, sync));
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    logLane.runAndWait("truncate the log after " + op, () -> delegate.truncateLogAfter(op, sync));
  }

  /** Closes nothing: the replica closes the storage it opened itself. */
  @Override
  public void close() {}
}
