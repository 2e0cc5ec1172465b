package io.choir.server.storage;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.BloomFilter;
import org.rocksdb.Cache;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.CompressionType;
import org.rocksdb.DBOptions;
import org.rocksdb.InfoLogLevel;
import org.rocksdb.LRUCache;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.Slice;
import org.rocksdb.Snapshot;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * RocksDbStorage is the {@link Storage} of a real replica: one RocksDB database with three column
 * families, so that one WriteBatch can change the log, the data and the meta rows atomically.
 *
 * <ul>
 *   <li>{@code log}: key = op as 8 bytes big-endian (so op order is key order under the default
 *       bytewise comparator), value = the serialized {@link Entry}.
 *   <li>{@code data}: key = the user key, value = version as 8 bytes big-endian followed by the value.
 *   <li>{@code meta}: small rows of the state machine and the protocol (applied, checksum, client
 *       table, view).
 * </ul>
 *
 * <p>Durability: a write with {@code sync = true} uses {@code WriteOptions.sync}, so it returns once
 * the write-ahead log is fsynced (group commit is the caller's: one call is one WriteBatch and one
 * fsync). An unsynced write still goes through the WAL, so a killed process loses nothing; only an OS
 * crash or power loss may drop it (RocksDB then recovers a consistent prefix of the writes).
 *
 * <p>Threads: writers and readers on any thread (RocksDB serializes the writes into its one WAL in
 * call order; the replica writes from its loop and its two storage lanes). Every call holds a read lock that {@link #close}
 * takes exclusively, so a read racing with close fails with a StorageException instead of touching
 * freed native memory.
 */
public final class RocksDbStorage implements Storage {
  private static final Logger LOG = LoggerFactory.getLogger(RocksDbStorage.class);

  /** Column family names, as stored on disk. */
  static final String LOG_FAMILY = "log";

  static final String DATA_FAMILY = "data";
  static final String META_FAMILY = "meta";

  /** A key above every 8-byte op key: the exclusive end of "the rest of the log". */
  private static final byte[] ABOVE_EVERY_OP = {
    (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF,
    (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF
  };

  static {
    RocksDB.loadLibrary();
  }

  /**
   * Tuning holds the few RocksDB knobs worth setting for a write-heavy, small-value workload; the rest
   * stay at RocksDB's defaults (level compaction with dynamic level sizes).
   *
   * @param blockCacheBytes the LRU block cache shared by all column families (bounds read memory)
   * @param writeBufferBytes the memtable size of each column family before it is flushed
   * @param backgroundJobs flush and compaction threads
   * @param maxTotalWalBytes WAL size that forces a flush of the column families holding old WAL files
   *     (with three families, a quiet one would otherwise keep every WAL file alive)
   */
  public record Tuning(
      long blockCacheBytes, long writeBufferBytes, int backgroundJobs, long maxTotalWalBytes) {
    public Tuning {
      if (blockCacheBytes < 1 << 20) {
        throw new IllegalArgumentException(
            "blockCacheBytes must be at least 1 MiB: " + blockCacheBytes);
      }
      if (writeBufferBytes < 1 << 20) {
        throw new IllegalArgumentException(
            "writeBufferBytes must be at least 1 MiB: " + writeBufferBytes);
      }
      if (backgroundJobs < 1) {
        throw new IllegalArgumentException("backgroundJobs must be at least 1: " + backgroundJobs);
      }
      if (maxTotalWalBytes < writeBufferBytes) {
        throw new IllegalArgumentException(
            "maxTotalWalBytes must be at least writeBufferBytes: " + maxTotalWalBytes);
      }
    }

    /** Tuning.defaults: 64 MiB cache, 32 MiB memtables, 2 background jobs, 256 MiB of WAL. */
    public static Tuning defaults() {
      return new Tuning(64L << 20, 32L << 20, 2, 256L << 20);
    }
  }

  private final Path dir;
  /** Native objects in creation order; closed in reverse order by close(). */
  private final List<AutoCloseable> natives;

  private final RocksDB db;
  private final List<ColumnFamilyHandle> handles;
  private final ColumnFamilyHandle log;
  private final ColumnFamilyHandle data;
  private final ColumnFamilyHandle meta;
  private final WriteOptions syncWrite;
  private final WriteOptions bufferedWrite;
  private final ReentrantReadWriteLock closeLock = new ReentrantReadWriteLock();
  private boolean closed; // guarded by closeLock's write lock
  /** Snapshots not yet closed; close() releases them before closing the database. */
  private final Set<RocksSnapshot> openSnapshots = ConcurrentHashMap.newKeySet();

  private RocksDbStorage(
      Path dir,
      List<AutoCloseable> natives,
      RocksDB db,
      List<ColumnFamilyHandle> handles,
      WriteOptions syncWrite,
      WriteOptions bufferedWrite) {
    this.dir = dir;
    this.natives = natives;
    this.db = db;
    this.handles = handles;
    // handles follow the descriptor order of open(): default, log, data, meta.
    this.log = handles.get(1);
    this.data = handles.get(2);
    this.meta = handles.get(3);
    this.syncWrite = syncWrite;
    this.bufferedWrite = bufferedWrite;
  }

  /** RocksDbStorage.open opens (creating when missing) the database in dir with default tuning. */
  public static RocksDbStorage open(Path dir) {
    return open(dir, Tuning.defaults());
  }

  /** RocksDbStorage.open opens (creating when missing) the database in dir, directories included. */
  public static RocksDbStorage open(Path dir, Tuning tuning) {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new StorageException("cannot create storage directory " + dir + ": " + e.getMessage(), e);
    }
    List<AutoCloseable> natives = new ArrayList<>();
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    try {
      Cache cache = track(natives, new LRUCache(tuning.blockCacheBytes()));
      BloomFilter bloom = track(natives, new BloomFilter(10));
      DBOptions dbOptions =
          track(natives, new DBOptions())
              .setCreateIfMissing(true)
              .setCreateMissingColumnFamilies(true)
              .setMaxBackgroundJobs(tuning.backgroundJobs())
              .setMaxTotalWalSize(tuning.maxTotalWalBytes())
              // Spread SST writeback instead of one large burst at file close.
              .setBytesPerSync(1L << 20)
              .setKeepLogFileNum(4)
              .setInfoLogLevel(InfoLogLevel.WARN_LEVEL);
      // Data and meta are read by key: a bloom filter saves disk reads for absent keys.
      ColumnFamilyOptions keyed =
          track(natives, new ColumnFamilyOptions())
              .setWriteBufferSize(tuning.writeBufferBytes())
              .setCompressionType(CompressionType.LZ4_COMPRESSION)
              .setTableFormatConfig(
                  new BlockBasedTableConfig()
                      .setBlockCache(cache)
                      .setFilterPolicy(bloom)
                      .setCacheIndexAndFilterBlocks(true)
                      .setPinL0FilterAndIndexBlocksInCache(true));
      // The log is appended and read in ranges, never probed by key: no filter.
      ColumnFamilyOptions sequential =
          track(natives, new ColumnFamilyOptions())
              .setWriteBufferSize(tuning.writeBufferBytes())
              .setCompressionType(CompressionType.LZ4_COMPRESSION)
              .setTableFormatConfig(new BlockBasedTableConfig().setBlockCache(cache));
      List<ColumnFamilyDescriptor> descriptors =
          List.of(
              new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, keyed),
              new ColumnFamilyDescriptor(LOG_FAMILY.getBytes(StandardCharsets.US_ASCII), sequential),
              new ColumnFamilyDescriptor(DATA_FAMILY.getBytes(StandardCharsets.US_ASCII), keyed),
              new ColumnFamilyDescriptor(META_FAMILY.getBytes(StandardCharsets.US_ASCII), keyed));
      WriteOptions syncWrite = track(natives, new WriteOptions().setSync(true));
      WriteOptions bufferedWrite =
          track(natives, new WriteOptions().setSync(false).setDisableWAL(false));
      RocksDB db = RocksDB.open(dbOptions, dir.toString(), descriptors, handles);
      return new RocksDbStorage(dir, natives, db, handles, syncWrite, bufferedWrite);
    } catch (RocksDBException | RuntimeException e) {
      for (ColumnFamilyHandle handle : handles) {
        handle.close();
      }
      closeAll(natives);
      throw new StorageException("cannot open RocksDB in " + dir + ": " + e.getMessage(), e);
    }
  }

  /** The directory of this database. */
  public Path dir() {
    return dir;
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    if (entries.isEmpty()) {
      if (sync) {
        sync();
      }
      return;
    }
    run(
        "append to the log",
        () -> {
          try (WriteBatch batch = new WriteBatch()) {
            for (Entry entry : entries) {
              batch.put(log, Bytes.longToBytes(entry.getOp()), entry.toByteArray());
            }
            db.write(sync ? syncWrite : bufferedWrite, batch);
          }
          return null;
        });
  }

  @Override
  public List<Entry> readLog(long fromOp, long toOp, int maxBytes) {
    long from = Math.max(fromOp, 0);
    if (from > toOp) {
      return List.of();
    }
    return run(
        "read the log",
        () -> {
          List<Entry> out = new ArrayList<>();
          long bytes = 0;
          try (RocksIterator it = db.newIterator(log)) {
            for (it.seek(Bytes.longToBytes(from)); it.isValid(); it.next()) {
              long op = Bytes.bytesToLong(it.key());
              if (op > toOp) {
                break;
              }
              byte[] value = it.value();
              if (!out.isEmpty() && bytes + value.length > maxBytes) {
                break;
              }
              out.add(parseEntry(op, value));
              bytes += value.length;
            }
            it.status();
          }
          return out;
        });
  }

  @Override
  public long firstLogOp() {
    return run(
        "read the first log op",
        () -> {
          try (RocksIterator it = db.newIterator(log)) {
            it.seekToFirst();
            long op = it.isValid() ? Bytes.bytesToLong(it.key()) : 0;
            it.status();
            return op;
          }
        });
  }

  @Override
  public long lastLogOp() {
    return run(
        "read the last log op",
        () -> {
          try (RocksIterator it = db.newIterator(log)) {
            it.seekToLast();
            long op = it.isValid() ? Bytes.bytesToLong(it.key()) : 0;
            it.status();
            return op;
          }
        });
  }

  @Override
  public void truncateLogBefore(long op, boolean sync) {
    if (op <= 0) {
      return;
    }
    run(
        "truncate the log before " + op,
        () -> {
          db.deleteRange(log, sync ? syncWrite : bufferedWrite, new byte[0], Bytes.longToBytes(op));
          return null;
        });
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    if (op < 0) {
      throw new IllegalArgumentException("op must not be negative: " + op);
    }
    if (op == Long.MAX_VALUE) {
      return;
    }
    run(
        "truncate the log after " + op,
        () -> {
          db.deleteRange(
              log, sync ? syncWrite : bufferedWrite, Bytes.longToBytes(op + 1), ABOVE_EVERY_OP);
          return null;
        });
  }

  @Override
  public Versioned get(byte[] key) {
    return run(
        "get a key",
        () -> {
          byte[] stored = db.get(data, key);
          return stored == null
              ? null
              : new Versioned(
                  Arrays.copyOfRange(stored, Long.BYTES, stored.length),
                  Bytes.getLong(stored, 0));
        });
  }

  @Override
  public List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes) {
    if (limit <= 0 || (end.length > 0 && Arrays.compareUnsigned(start, end) >= 0)) {
      return List.of();
    }
    return run(
        "scan the data",
        () -> {
          List<KeyValue> out = new ArrayList<>(Math.min(limit, 1024));
          // The upper bound lets RocksDB stop at end instead of reading past it (and its tombstones).
          try (Slice upper = end.length > 0 ? new Slice(end) : null;
              ReadOptions options = new ReadOptions()) {
            if (upper != null) {
              options.setIterateUpperBound(upper);
            }
            try (RocksIterator it = db.newIterator(data, options)) {
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
                bytes += Storage.pairBytes(pair);
              }
              it.status();
            }
          }
          return out;
        });
  }

  @Override
  public long approximateKeyCount() {
    return run(
        "estimate the key count", () -> db.getLongProperty(data, "rocksdb.estimate-num-keys"));
  }

  @Override
  public byte[] getMeta(byte[] key) {
    return run("get a meta row", () -> db.get(meta, key));
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    return run(
        "scan the meta rows",
        () -> {
          List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
          try (RocksIterator it = db.newIterator(meta)) {
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
    run(
        "write a write set",
        () -> {
          try (WriteBatch batch = new WriteBatch()) {
            for (WriteSet.Change change : set.changes()) {
              ColumnFamilyHandle family = change.space() == WriteSet.Space.DATA ? data : meta;
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
            db.write(sync ? syncWrite : bufferedWrite, batch);
          }
          return null;
        });
  }

  @Override
  public void sync() {
    run(
        "sync the write-ahead log",
        () -> {
          db.flushWal(true);
          return null;
        });
  }

  /**
   * Takes a RocksDB snapshot (a sequence number: no copy) and reads through ReadOptions pinned to it.
   * Until it is closed, RocksDB keeps every version the snapshot can see, so compaction reclaims less.
   */
  @Override
  public StorageSnapshot snapshot() {
    return run(
        "take a snapshot",
        () -> {
          Snapshot snapshot = db.getSnapshot();
          ReadOptions options = new ReadOptions().setSnapshot(snapshot);
          RocksSnapshot taken = new RocksSnapshot(snapshot, options);
          openSnapshots.add(taken);
          return taken;
        });
  }

  /**
   * One WriteBatch, synced: the marker, a range deletion of the whole data space (from the empty key
   * to the current last key, plus that key: user keys have no upper bound to name otherwise; only the
   * caller's thread, the apply lane, writes the data space, so no key appears meanwhile), a range
   * deletion of the client rows, and the applied and checksum rows.
   */
  @Override
  public void beginInstall() {
    byte[] clients = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
    run(
        "begin an install",
        () -> {
          try (WriteBatch batch = new WriteBatch()) {
            byte[] lastKey;
            try (RocksIterator it = db.newIterator(data)) {
              it.seekToLast();
              lastKey = it.isValid() ? it.key() : null;
              it.status();
            }
            if (lastKey != null) {
              batch.deleteRange(data, new byte[0], lastKey);
              batch.delete(data, lastKey);
            }
            batch.deleteRange(meta, clients, Bytes.prefixEnd(clients));
            batch.delete(meta, MetaKeys.bytes(MetaKeys.APPLIED));
            batch.delete(meta, MetaKeys.bytes(MetaKeys.CHECKSUM));
            batch.put(meta, MetaKeys.bytes(MetaKeys.INSTALLING), new byte[] {1});
            db.write(syncWrite, batch);
          }
          return null;
        });
  }

  @Override
  public void installData(List<KeyValue> kvs) {
    if (kvs.isEmpty()) {
      return;
    }
    run(
        "install data",
        () -> {
          try (WriteBatch batch = new WriteBatch()) {
            for (KeyValue kv : kvs) {
              byte[] stored = new byte[Long.BYTES + kv.getValue().size()];
              Bytes.putLong(stored, 0, kv.getVersion());
              kv.getValue().copyTo(stored, Long.BYTES);
              batch.put(data, kv.getKey().toByteArray(), stored);
            }
            db.write(bufferedWrite, batch);
          }
          return null;
        });
  }

  /**
   * Closes the database, its column family handles and every native option object; idempotent. The
   * WAL is synced first, so a clean shutdown keeps unsynced writes even across an OS crash.
   */
  @Override
  public void close() {
    closeLock.writeLock().lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      try {
        db.flushWal(true);
      } catch (RocksDBException e) {
        LOG.warn("cannot sync the WAL of {} on close: {}", dir, e.getMessage());
      }
      // A database must not close with unreleased snapshots.
      for (RocksSnapshot snapshot : openSnapshots) {
        snapshot.release();
      }
      openSnapshots.clear();
      // Handles before the database, the database before the options it was opened with.
      for (ColumnFamilyHandle handle : handles) {
        handle.close();
      }
      db.close();
      closeAll(natives);
    } finally {
      closeLock.writeLock().unlock();
    }
  }

  /**
   * RocksSnapshot reads through ReadOptions pinned to one RocksDB snapshot. Its reads run under the
   * storage's close lock like every other call; {@link #close} and the storage's close both release
   * it, whichever comes first (the set of open snapshots decides who does).
   */
  private final class RocksSnapshot implements StorageSnapshot {
    private final Snapshot snapshot;
    private final ReadOptions options;
    private boolean released; // guarded by this

    RocksSnapshot(Snapshot snapshot, ReadOptions options) {
      this.snapshot = snapshot;
      this.options = options;
    }

    @Override
    public byte[] getMeta(byte[] key) {
      return read("get a meta row from a snapshot", () -> db.get(meta, options, key));
    }

    @Override
    public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
      return read(
          "scan the meta rows of a snapshot",
          () -> {
            List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
            try (RocksIterator it = db.newIterator(meta, options)) {
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
            try (RocksIterator it = db.newIterator(data, options)) {
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
      closeLock.readLock().lock();
      try {
        // When the storage closed first, it released this snapshot already.
        if (!closed && openSnapshots.remove(this)) {
          release();
        }
      } finally {
        closeLock.readLock().unlock();
      }
    }

    /** Releases the native snapshot and options once; the database must still be open. */
    synchronized void release() {
      if (released) {
        return;
      }
      released = true;
      db.releaseSnapshot(snapshot);
      options.close();
    }

    private <T> T read(String what, RocksCall<T> call) {
      return run(
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

  /** A RocksDB call that may throw RocksDBException. */
  @FunctionalInterface
  private interface RocksCall<T> {
    T call() throws RocksDBException;
  }

  /** Runs call under the read lock, turning RocksDB errors into StorageExceptions that name what. */
  private <T> T run(String what, RocksCall<T> call) {
    closeLock.readLock().lock();
    try {
      if (closed) {
        throw new StorageException("cannot " + what + ": storage " + dir + " is closed");
      }
      return call.call();
    } catch (RocksDBException e) {
      throw new StorageException(
          "cannot " + what + " in " + dir + ": " + describe(e), e);
    } finally {
      closeLock.readLock().unlock();
    }
  }

  private Entry parseEntry(long op, byte[] value) {
    try {
      return Entry.parseFrom(value);
    } catch (InvalidProtocolBufferException e) {
      throw new StorageException("corrupt log entry at op " + op + " in " + dir, e);
    }
  }

  private static String describe(RocksDBException e) {
    return e.getStatus() != null
        ? e.getStatus().getCodeString() + ": " + e.getMessage()
        : String.valueOf(e.getMessage());
  }

  private static <T extends AutoCloseable> T track(List<AutoCloseable> natives, T object) {
    natives.add(object);
    return object;
  }

  private static void closeAll(List<AutoCloseable> natives) {
    for (int i = natives.size() - 1; i >= 0; i--) {
      try {
        natives.get(i).close();
      } catch (Exception e) {
        LOG.warn("cannot close a RocksDB object: {}", e.getMessage());
      }
    }
  }
}
