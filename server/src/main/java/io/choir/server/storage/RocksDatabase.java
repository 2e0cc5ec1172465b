package io.choir.server.storage;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * RocksDatabase is the one open RocksDB of a replica, and the one place that knows how it is opened and
 * tuned: the options ({@link RocksDbTuning}), the three column families as stored on disk, the write
 * options (every write goes through the WAL; a synced one fsyncs it) and the native objects to close.
 * The {@link RocksLogStore} and the {@link RocksStateStore} both write through it, so their writes
 * share one WAL in call order.
 *
 * <ul>
 *   <li>{@code log}: key = op as 8 bytes big-endian (so op order is key order under the default
 *       bytewise comparator), value = the serialized {@code Entry}.
 *   <li>{@code data}: key = the user key, value = version as 8 bytes big-endian followed by the value.
 *   <li>{@code meta}: small rows of the state machine and the protocol (applied, checksum, client
 *       table, view).
 * </ul>
 *
 * <p>Threads: every call runs under a read lock that {@link #close} takes exclusively, so a read racing
 * with close fails with a StorageException instead of touching freed native memory.
 */
final class RocksDatabase {
  private static final Logger LOG = LoggerFactory.getLogger(RocksDbStorage.class);

  /** Column family names, as stored on disk. */
  static final String LOG_FAMILY = "log";

  static final String DATA_FAMILY = "data";
  static final String META_FAMILY = "meta";

  static {
    RocksDB.loadLibrary();
  }

  /** A RocksDB call that may throw RocksDBException. */
  @FunctionalInterface
  interface RocksCall<T> {
    T call() throws RocksDBException;
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

  private RocksDatabase(
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

  /** RocksDatabase.open opens (creating when missing) the database in dir, directories included. */
  static RocksDatabase open(Path dir, RocksDbTuning tuning) {
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
      return new RocksDatabase(dir, natives, db, handles, syncWrite, bufferedWrite);
    } catch (RocksDBException | RuntimeException e) {
      for (ColumnFamilyHandle handle : handles) {
        handle.close();
      }
      closeAll(natives);
      throw new StorageException("cannot open RocksDB in " + dir + ": " + e.getMessage(), e);
    }
  }

  Path dir() {
    return dir;
  }

  RocksDB db() {
    return db;
  }

  ColumnFamilyHandle log() {
    return log;
  }

  ColumnFamilyHandle data() {
    return data;
  }

  ColumnFamilyHandle meta() {
    return meta;
  }

  /** The write options of a write: synced (fsync of the WAL before it returns) or buffered. */
  WriteOptions writeOptions(boolean sync) {
    return sync ? syncWrite : bufferedWrite;
  }

  /** Writes batch as one atomic WAL record, fsynced before returning when sync. */
  void write(WriteBatch batch, boolean sync) throws RocksDBException {
    db.write(writeOptions(sync), batch);
  }

  /** Makes every earlier write durable: an fsync of the one WAL. */
  void sync() {
    run(
        "sync the write-ahead log",
        () -> {
          db.flushWal(true);
          return null;
        });
  }

  /** Runs call under the read lock, turning RocksDB errors into StorageExceptions that name what. */
  <T> T run(String what, RocksCall<T> call) {
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

  /** Runs action under the read lock unless the database is closed (then it does nothing). */
  void ifOpen(Runnable action) {
    closeLock.readLock().lock();
    try {
      if (!closed) {
        action.run();
      }
    } finally {
      closeLock.readLock().unlock();
    }
  }

  /**
   * Closes the database, its column family handles and every native option object; idempotent. The
   * WAL is synced first, so a clean shutdown keeps unsynced writes even across an OS crash;
   * beforeClosing (the release of open snapshots: a database must not close with any) runs after the
   * sync, with the database still open.
   */
  void close(Runnable beforeClosing) {
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
      beforeClosing.run();
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
