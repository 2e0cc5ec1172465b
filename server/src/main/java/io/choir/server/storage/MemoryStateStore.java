package io.choir.server.storage;

import com.google.protobuf.ByteString;
import io.choir.proto.KeyValue;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;

/**
 * MemoryStateStore is the in-memory twin of {@link RocksStateStore}: the data and meta key spaces of a
 * {@link MemoryWal}, with the same contract, keys in the same unsigned byte order. Arrays are copied
 * on the way in and out, so callers may reuse or change theirs.
 */
final class MemoryStateStore implements StateStore {
  private final MemoryWal wal;

  MemoryStateStore(MemoryWal wal) {
    this.wal = wal;
  }

  @Override
  public Versioned get(byte[] key) {
    return wal.read(
        "get a key",
        current -> {
          Versioned stored = current.data.get(key);
          return stored == null ? null : new Versioned(stored.value().clone(), stored.version());
        });
  }

  @Override
  public List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes) {
    return wal.read(
        "scan the data",
        current -> {
          List<KeyValue> out = new ArrayList<>();
          if (limit <= 0 || (end.length > 0 && Arrays.compareUnsigned(start, end) >= 0)) {
            return out;
          }
          NavigableMap<byte[], Versioned> range =
              end.length == 0
                  ? current.data.tailMap(start, true)
                  : current.data.subMap(start, true, end, false);
          long bytes = 0;
          for (Map.Entry<byte[], Versioned> pair : range.entrySet()) {
            if (out.size() >= limit || bytes >= maxBytes) {
              break;
            }
            KeyValue kv =
                KeyValue.newBuilder()
                    .setKey(ByteString.copyFrom(pair.getKey()))
                    .setValue(ByteString.copyFrom(pair.getValue().value()))
                    .setVersion(pair.getValue().version())
                    .build();
            out.add(kv);
            bytes += StateStore.pairBytes(kv);
          }
          return out;
        });
  }

  /** The exact number of keys (the RocksDB twin only estimates it). */
  @Override
  public long approximateKeyCount() {
    return wal.read("count the keys", current -> (long) current.data.size());
  }

  @Override
  public byte[] getMeta(byte[] key) {
    return wal.read(
        "get a meta row",
        current -> {
          byte[] value = current.meta.get(key);
          return value == null ? null : value.clone();
        });
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    return wal.read("scan the meta rows", current -> scanMeta(current.meta, prefix));
  }

  /** The pairs of meta whose key starts with prefix, in key order, arrays copied. */
  static List<Map.Entry<byte[], byte[]>> scanMeta(TreeMap<byte[], byte[]> meta, byte[] prefix) {
    List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
    for (Map.Entry<byte[], byte[]> pair : meta.tailMap(prefix, true).entrySet()) {
      if (!Bytes.startsWith(pair.getKey(), prefix)) {
        break;
      }
      out.add(new AbstractMap.SimpleImmutableEntry<>(pair.getKey().clone(), pair.getValue().clone()));
    }
    return out;
  }

  @Override
  public void write(WriteSet set, boolean sync) {
    if (set.isEmpty()) {
      if (sync) {
        sync();
      }
      return;
    }
    List<WriteSet.Change> changes = new ArrayList<>(set.changes().size());
    for (WriteSet.Change change : set.changes()) {
      changes.add(
          new WriteSet.Change(
              change.space(),
              change.key().clone(),
              change.value() == null ? null : change.value().clone(),
              change.version()));
    }
    wal.mutate(
        "write a write set",
        state -> {
          for (WriteSet.Change change : changes) {
            if (change.space() == WriteSet.Space.DATA) {
              if (change.value() == null) {
                state.data.remove(change.key());
              } else {
                state.data.put(change.key(), new Versioned(change.value(), change.version()));
              }
            } else if (change.value() == null) {
              state.meta.remove(change.key());
            } else {
              state.meta.put(change.key(), change.value());
            }
          }
        },
        sync);
  }

  @Override
  public void sync() {
    wal.sync();
  }

  /**
   * Copies the data and meta maps under the read lock: O(keys) time and references, no value copies
   * (stored arrays are never mutated). Like RocksDB's, the snapshot fails once this storage is closed
   * (or crashed).
   */
  @Override
  public StorageSnapshot snapshot() {
    return wal.read(
        "take a snapshot",
        current -> new MemorySnapshot(wal, new TreeMap<>(current.data), new TreeMap<>(current.meta)));
  }

  @Override
  public void beginInstall() {
    byte[] installing = MetaKeys.bytes(MetaKeys.INSTALLING);
    byte[] applied = MetaKeys.bytes(MetaKeys.APPLIED);
    byte[] checksum = MetaKeys.bytes(MetaKeys.CHECKSUM);
    byte[] clients = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
    byte[] leases = MetaKeys.bytes(MetaKeys.LEASE_PREFIX);
    wal.mutate(
        "begin an install",
        state -> {
          state.data.clear();
          state.meta.remove(applied);
          state.meta.remove(checksum);
          state.meta.subMap(clients, true, Bytes.prefixEnd(clients), false).clear();
          state.meta.subMap(leases, true, Bytes.prefixEnd(leases), false).clear();
          state.meta.put(installing, new byte[] {1});
        },
        true);
  }

  @Override
  public void installData(List<KeyValue> kvs) {
    if (kvs.isEmpty()) {
      return;
    }
    List<Map.Entry<byte[], Versioned>> copy = new ArrayList<>(kvs.size());
    for (KeyValue kv : kvs) {
      copy.add(
          new AbstractMap.SimpleImmutableEntry<>(
              kv.getKey().toByteArray(),
              new Versioned(kv.getValue().toByteArray(), kv.getVersion())));
    }
    wal.mutate(
        "install data",
        state -> {
          for (Map.Entry<byte[], Versioned> pair : copy) {
            state.data.put(pair.getKey(), pair.getValue());
          }
        },
        false);
  }
}
