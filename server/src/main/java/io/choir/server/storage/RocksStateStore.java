package io.choir.server.storage;

import com.google.protobuf.UnsafeByteOperations;
import io.choir.proto.KeyValue;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.Holder;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksIterator;
import org.rocksdb.Slice;
import org.rocksdb.Snapshot;
import org.rocksdb.WriteBatch;

/**
 * RocksStateStore is the {@link StateStore} of a real replica: the {@code data} and {@code meta}
 * column families of its {@link RocksDatabase} (data value = version as 8 bytes big-endian followed by
 * the value), the snapshots a state transfer streams, and the two install steps. It keeps the set of
 * open snapshots, which the storage's close releases before the database closes.
 */
final class RocksStateStore implements StateStore {
  private final RocksDatabase database;
  /** Snapshots not yet closed; {@link #releaseSnapshots} releases them before the database closes. */
  private final Set<RocksSnapshot> openSnapshots = ConcurrentHashMap.newKeySet();

  RocksStateStore(RocksDatabase database) {
    this.database = database;
  }

  @Override
  public Versioned get(byte[] key) {
    return database.run(
        "get a key",
        () -> {
          byte[] stored = database.db().get(database.data(), key);
          return stored == null
              ? null
              : new Versioned(
                  Arrays.copyOfRange(stored, Long.BYTES, stored.length),
                  Bytes.getLong(stored, 0));
        });
  }

  /**
   * RocksDB's keyMayExist with a value holder: it looks in the memtables and the block cache only
   * (read tier kBlockCacheTier) and says "may exist" without a value when a block it needs is not
   * cached. Its "does not exist" is not trusted: RocksDB also returns it for a failed lookup (a
   * corruption found), so an absent key is left to {@link #get}, which reports a failure.
   */
  @Override
  public Versioned getIfInMemory(byte[] key) {
    return database.run(
        "get a key from memory",
        () -> {
          Holder<byte[]> found = new Holder<>();
          byte[] stored = database.db().keyMayExist(database.data(), key, found) ? found.getValue() : null;
          return stored == null
              ? NOT_IN_MEMORY
              : new Versioned(Arrays.copyOfRange(stored, Long.BYTES, stored.length), Bytes.getLong(stored, 0));
        });
  }

  @Override
  public List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes) {
    if (limit <= 0 || (end.length > 0 && Arrays.compareUnsigned(start, end) >= 0)) {
      return List.of();
    }
    return database.run(
        "scan the data",
        () -> {
          List<KeyValue> out = new ArrayList<>(Math.min(limit, 1024));
          // The upper bound lets RocksDB stop at end instead of reading past it (and its tombstones).
          try (Slice upper = end.length > 0 ? new Slice(end) : null;
              ReadOptions options = new ReadOptions()) {
            if (upper != null) {
              options.setIterateUpperBound(upper);
            }
            try (RocksIterator it = database.db().newIterator(database.data(), options)) {
              long bytes = 0;
              for (it.seek(start); it.isValid() && out.size() < limit && bytes < maxBytes; it.next()) {
                byte[] stored = it.value();
                KeyValue pair =
                    KeyValue.newBuilder()
                        .setKey(UnsafeByteOperations.unsafeWrap(it.key()))
                        .setValue(
                            UnsafeByteOperations.unsafeWrap(
                                stored, Long.BYTES, stored.length - Long.BYTES))
                        .setVersion(Bytes.getLong(stored, 0))
                        .build();
                out.add(pair);
                bytes += StateStore.pairBytes(pair);
              }
              it.status();
            }
          }
          return out;
        });
  }

  @Override
  public long approximateKeyCount() {
    return database.run(
        "estimate the key count",
        () -> database.db().getLongProperty(database.data(), "rocksdb.estimate-num-keys"));
  }

  @Override
  public byte[] getMeta(byte[] key) {
    return database.run("get a meta row", () -> database.db().get(database.meta(), key));
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    return database.run(
        "scan the meta rows",
        () -> {
          List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
          try (RocksIterator it = database.db().newIterator(database.meta())) {
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
  public void write(WriteSet set, boolean sync) {
    if (set.isEmpty()) {
      if (sync) {
        sync();
      }
      return;
    }
    database.run(
        "write a write set",
        () -> {
          ColumnFamilyHandle data = database.data();
          try (WriteBatch batch = new WriteBatch()) {
            for (WriteSet.Change change : set.changes()) {
              ColumnFamilyHandle family =
                  change.space() == WriteSet.Space.DATA ? data : database.meta();
              if (change.value() == null) {
                batch.delete(family, change.key());
              } else if (family == data) {
                byte[] stored = new byte[Long.BYTES + change.value().length];
                Bytes.putLong(stored, 0, change.version());
                System.arraycopy(change.value(), 0, stored, Long.BYTES, change.value().length);
                batch.put(family, change.key(), stored);
              } else {
                batch.put(family, change.key(), change.value());
              }
            }
            database.write(batch, sync);
          }
          return null;
        });
  }

  @Override
  public void sync() {
    database.sync();
  }

  /**
   * Takes a RocksDB snapshot (a sequence number: no copy) and reads through ReadOptions pinned to it.
   * Until it is closed, RocksDB keeps every version the snapshot can see, so compaction reclaims less.
   */
  @Override
  public StorageSnapshot snapshot() {
    return database.run(
        "take a snapshot",
        () -> {
          Snapshot snapshot = database.db().getSnapshot();
          ReadOptions options = new ReadOptions().setSnapshot(snapshot);
          RocksSnapshot taken = new RocksSnapshot(database, snapshot, options, openSnapshots::remove);
          openSnapshots.add(taken);
          return taken;
        });
  }

  /**
   * One WriteBatch, synced: the marker, a range deletion of the whole data space (from the empty key
   * to the current last key, plus that key: user keys have no upper bound to name otherwise; only the
   * caller's thread, the apply lane, writes the data space, so no key appears meanwhile), range
   * deletions of the client and lease rows, and the applied and checksum rows.
   */
  @Override
  public void beginInstall() {
    byte[] clients = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
    byte[] leases = MetaKeys.bytes(MetaKeys.LEASE_PREFIX);
    database.run(
        "begin an install",
        () -> {
          ColumnFamilyHandle data = database.data();
          ColumnFamilyHandle meta = database.meta();
          try (WriteBatch batch = new WriteBatch()) {
            byte[] lastKey;
            try (RocksIterator it = database.db().newIterator(data)) {
              it.seekToLast();
              lastKey = it.isValid() ? it.key() : null;
              it.status();
            }
            if (lastKey != null) {
              batch.deleteRange(data, new byte[0], lastKey);
              batch.delete(data, lastKey);
            }
            batch.deleteRange(meta, clients, Bytes.prefixEnd(clients));
            batch.deleteRange(meta, leases, Bytes.prefixEnd(leases));
            batch.delete(meta, MetaKeys.bytes(MetaKeys.APPLIED));
            batch.delete(meta, MetaKeys.bytes(MetaKeys.CHECKSUM));
            batch.put(meta, MetaKeys.bytes(MetaKeys.INSTALLING), new byte[] {1});
            database.write(batch, true);
          }
          return null;
        });
  }

  @Override
  public void installData(List<KeyValue> kvs) {
    if (kvs.isEmpty()) {
      return;
    }
    database.run(
        "install data",
        () -> {
          try (WriteBatch batch = new WriteBatch()) {
            for (KeyValue kv : kvs) {
              byte[] stored = new byte[Long.BYTES + kv.getValue().size()];
              Bytes.putLong(stored, 0, kv.getVersion());
              kv.getValue().copyTo(stored, Long.BYTES);
              batch.put(database.data(), kv.getKey().toByteArray(), stored);
            }
            database.write(batch, false);
          }
          return null;
        });
  }

  /** Releases every snapshot not yet closed (the database is closing, still open). */
  void releaseSnapshots() {
    for (RocksSnapshot snapshot : openSnapshots) {
      snapshot.release();
    }
    openSnapshots.clear();
  }
}
