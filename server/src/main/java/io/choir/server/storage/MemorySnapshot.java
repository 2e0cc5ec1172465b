package io.choir.server.storage;

import com.google.protobuf.ByteString;
import io.choir.proto.KeyValue;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * MemorySnapshot is the in-memory twin of {@link RocksSnapshot}: a private copy of the data and meta
 * maps of a {@link MemoryWal}; reads copy arrays on the way out and fail once the snapshot or its
 * storage is closed (or crashed).
 */
final class MemorySnapshot implements StorageSnapshot {
  private final MemoryWal wal;
  private final TreeMap<byte[], Versioned> data;
  private final TreeMap<byte[], byte[]> meta;
  private volatile boolean closed;

  MemorySnapshot(MemoryWal wal, TreeMap<byte[], Versioned> data, TreeMap<byte[], byte[]> meta) {
    this.wal = wal;
    this.data = data;
    this.meta = meta;
  }

  @Override
  public byte[] getMeta(byte[] key) {
    ensureOpen();
    byte[] value = meta.get(key);
    return value == null ? null : value.clone();
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    ensureOpen();
    return MemoryStateStore.scanMeta(meta, prefix);
  }

  @Override
  public List<KeyValue> scanData(byte[] startInclusive, int maxPairs, int maxBytes) {
    ensureOpen();
    if (maxPairs < 1) {
      throw new IllegalArgumentException("maxPairs must be at least 1: " + maxPairs);
    }
    List<KeyValue> out = new ArrayList<>();
    long bytes = 0;
    for (Map.Entry<byte[], Versioned> pair : data.tailMap(startInclusive, true).entrySet()) {
      if (out.size() >= maxPairs) {
        break;
      }
      long size = (long) pair.getKey().length + pair.getValue().value().length;
      if (!out.isEmpty() && bytes + size > maxBytes) {
        break;
      }
      out.add(
          KeyValue.newBuilder()
              .setKey(ByteString.copyFrom(pair.getKey()))
              .setValue(ByteString.copyFrom(pair.getValue().value()))
              .setVersion(pair.getValue().version())
              .build());
      bytes += size;
    }
    return out;
  }

  @Override
  public void close() {
    closed = true;
  }

  private void ensureOpen() {
    if (closed) {
      throw new StorageException("cannot read a closed memory storage snapshot");
    }
    wal.read("read a snapshot", current -> null);
  }
}
