package io.choir.server.replica;

import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import io.choir.server.storage.WriteSet;
import java.util.List;
import java.util.Map;

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
public final class ApplyLaneStorage implements Storage {
  /** Runs an action on the log lane after what is queued there, and returns once it ran. */
  public interface LogLaneRunner {
    void runAndWait(String what, Runnable action);
  }

  private final Storage delegate;
  private volatile LogLaneRunner logLane;

  public ApplyLaneStorage(Storage delegate) {
    this.delegate = delegate;
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

  @Override
  public List<Entry> readLog(long fromOp, long toOp, int maxBytes) {
    return delegate.readLog(fromOp, toOp, maxBytes);
  }

  @Override
  public long firstLogOp() {
    return delegate.firstLogOp();
  }

  @Override
  public long lastLogOp() {
    return delegate.lastLogOp();
  }

  @Override
  public io.choir.server.storage.Versioned get(byte[] key) {
    return delegate.get(key);
  }

  @Override
  public List<KeyValue> scan(byte[] start, byte[] end, int limit) {
    return delegate.scan(start, end, limit);
  }

  @Override
  public long approximateKeyCount() {
    return delegate.approximateKeyCount();
  }

  @Override
  public byte[] getMeta(byte[] key) {
    return delegate.getMeta(key);
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    return delegate.scanMeta(prefix);
  }

  @Override
  public void write(WriteSet set, boolean sync) {
    delegate.write(set, sync);
  }

  @Override
  public void sync() {
    delegate.sync();
  }

  @Override
  public StorageSnapshot snapshot() {
    return delegate.snapshot();
  }

  @Override
  public void beginInstall() {
    delegate.beginInstall();
  }

  @Override
  public void installData(List<KeyValue> kvs) {
    delegate.installData(kvs);
  }

  /** Closes nothing: the replica closes the storage itself. */
  @Override
  public void close() {}
}
