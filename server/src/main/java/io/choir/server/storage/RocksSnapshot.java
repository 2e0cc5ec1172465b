package io.choir.server.storage;

import com.google.protobuf.UnsafeByteOperations;
import io.choir.proto.KeyValue;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksIterator;
import org.rocksdb.Snapshot;

/**
 * RocksSnapshot reads through ReadOptions pinned to one RocksDB snapshot. Its reads run under the
 * database's close lock like every other call; {@link #close} and the storage's close both release
 * it, whichever comes first (the state store's set of open snapshots decides who does).
 */
final class RocksSnapshot implements StorageSnapshot {
  private final RocksDatabase database;
  private final Snapshot snapshot;
  private final ReadOptions options;
  /** Removes this snapshot from the open set; true when it was there (so this close releases it). */
  private final Predicate<RocksSnapshot> forget;
  private boolean released; // guarded by this

  RocksSnapshot(
      RocksDatabase database, Snapshot snapshot, ReadOptions options, Predicate<RocksSnapshot> forget) {
    this.database = database;
    this.snapshot = snapshot;
    this.options = options;
    this.forget = forget;
  }

  @Override
  public byte[] getMeta(byte[] key) {
    return read(
        "get a meta row from a snapshot", () -> database.db().get(database.meta(), options, key));
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    return read(
        "scan the meta rows of a snapshot",
        () -> {
          List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
          try (RocksIterator it = database.db().newIterator(database.meta(), options)) {
            for (it.seek(prefix); it.isValid(); it.next()) {
              byte[] key = it.key();
              if (!Bytes.startsWith(key, prefix)) {
                break;
              }
              out.add(new AbstractMap.SimpleImmutableEntry<>(key, it.value()));
            }
            it.status();
          }
          return out;
        });
  }

  @Override
  public List<KeyValue> scanData(byte[] startInclusive, int maxPairs, int maxBytes) {
    if (maxPairs < 1) {
      throw new IllegalArgumentException("maxPairs must be at least 1: " + maxPairs);
    }
    return read(
        "scan the data of a snapshot",
        () -> {
          List<KeyValue> out = new ArrayList<>();
          long bytes = 0;
          try (RocksIterator it = database.db().newIterator(database.data(), options)) {
            for (it.seek(startInclusive); it.isValid() && out.size() < maxPairs; it.next()) {
              byte[] key = it.key();
              byte[] stored = it.value();
              long size = (long) key.length + stored.length - Long.BYTES;
              if (!out.isEmpty() && bytes + size > maxBytes) {
                break;
              }
              out.add(
                  KeyValue.newBuilder()
                      .setKey(UnsafeByteOperations.unsafeWrap(key))
                      .setValue(
                          UnsafeByteOperations.unsafeWrap(
                              stored, Long.BYTES, stored.length - Long.BYTES))
                      .setVersion(Bytes.getLong(stored, 0))
                      .build());
              bytes += size;
            }
            it.status();
          }
          return out;
        });
  }

  @Override
  public void close() {
    // When the storage closed first, it released this snapshot already.
    database.ifOpen(
        () -> {
          if (forget.test(this)) {
            release();
          }
        });
  }

  /** Releases the native snapshot and options once; the database must still be open. */
  synchronized void release() {
    if (released) {
      return;
    }
    released = true;
    database.db().releaseSnapshot(snapshot);
    options.close();
  }

  private <T> T read(String what, RocksDatabase.RocksCall<T> call) {
    return database.run(
        what,
        () -> {
          synchronized (this) {
            if (released) {
              throw new StorageException("cannot " + what + ": the snapshot is closed");
            }
            return call.call();
          }
        });
  }
}
