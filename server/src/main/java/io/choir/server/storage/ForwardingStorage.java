package io.choir.server.storage;

import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import java.util.List;
import java.util.Map;

/**
 * ForwardingStorage passes every call to a delegate; a subclass overrides the calls it changes (the
 * replica's ApplyLaneStorage sends log changes to the log lane; tests count writes or fail them like a
 * dying machine).
 */
public abstract class ForwardingStorage implements Storage {
  protected final Storage delegate;

  protected ForwardingStorage(Storage delegate) {
    this.delegate = delegate;
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    delegate.appendLog(entries, sync);
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
  public void truncateLogBefore(long op, boolean sync) {
    delegate.truncateLogBefore(op, sync);
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    delegate.truncateLogAfter(op, sync);
  }

  @Override
  public Versioned get(byte[] key) {
    return delegate.get(key);
  }

  @Override
  public Versioned getIfInMemory(byte[] key) {
    return delegate.getIfInMemory(key);
  }

  @Override
  public List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes) {
    return delegate.scan(start, end, limit, maxBytes);
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

  @Override
  public void close() {
    delegate.close();
  }
}
