package io.choir.server.storage;

import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * RocksDbStorage is the {@link Storage} of a real replica: one {@link RocksDatabase} (opened and tuned
 * there, three column families, so that one WriteBatch is one atomic record of one WAL) seen as a
 * {@link RocksLogStore} (the {@code log} family) and a {@link RocksStateStore} (the {@code data} and
 * {@code meta} families, snapshots, installs). This class only routes each call to its store and closes
 * the database.
 *
 * <p>Durability: a write with {@code sync = true} uses {@code WriteOptions.sync}, so it returns once
 * the write-ahead log is fsynced (group commit is the caller's: one call is one WriteBatch and one
 * fsync). An unsynced write still goes through the WAL, so a killed process loses nothing; only an OS
 * crash or power loss may drop it (RocksDB then recovers a consistent prefix of the writes).
 *
 * <p>Threads: writers and readers on any thread (RocksDB serializes the writes into its one WAL in
 * call order; the replica writes from its loop and its two storage lanes). Every call holds a read
 * lock that {@link #close} takes exclusively, so a read racing with close fails with a
 * StorageException instead of touching freed native memory.
 */
public final class RocksDbStorage implements Storage {
  private final RocksDatabase database;
  private final RocksLogStore log;
  private final RocksStateStore state;

  private RocksDbStorage(RocksDatabase database) {
    this.database = database;
    this.log = new RocksLogStore(database);
    this.state = new RocksStateStore(database);
  }

  /** RocksDbStorage.open opens (creating when missing) the database in dir with default tuning. */
  public static RocksDbStorage open(Path dir) {
    return open(dir, RocksDbTuning.defaults());
  }

  /** RocksDbStorage.open opens (creating when missing) the database in dir, directories included. */
  public static RocksDbStorage open(Path dir, RocksDbTuning tuning) {
    return new RocksDbStorage(RocksDatabase.open(dir, tuning));
  }

  /** The directory of this database. */
  public Path dir() {
    return database.dir();
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    log.appendLog(entries, sync);
  }

  @Override
  public List<Entry> readLog(long fromOp, long toOp, int maxBytes) {
    return log.readLog(fromOp, toOp, maxBytes);
  }

  @Override
  public long firstLogOp() {
    return log.firstLogOp();
  }

  @Override
  public long lastLogOp() {
    return log.lastLogOp();
  }

  @Override
  public void truncateLogBefore(long op, boolean sync) {
    log.truncateLogBefore(op, sync);
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    log.truncateLogAfter(op, sync);
  }

  @Override
  public Versioned get(byte[] key) {
    return state.get(key);
  }

  @Override
  public Versioned getIfInMemory(byte[] key) {
    return state.getIfInMemory(key);
  }

  @Override
  public List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes) {
    return state.scan(start, end, limit, maxBytes);
  }

  @Override
  public long approximateKeyCount() {
    return state.approximateKeyCount();
  }

  @Override
  public byte[] getMeta(byte[] key) {
    return state.getMeta(key);
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    return state.scanMeta(prefix);
  }

  @Override
  public void write(WriteSet set, boolean sync) {
    state.write(set, sync);
  }

  @Override
  public void sync() {
    database.sync();
  }

  @Override
  public StorageSnapshot snapshot() {
    return state.snapshot();
  }

  @Override
  public void beginInstall() {
    state.beginInstall();
  }

  @Override
  public void installData(List<KeyValue> kvs) {
    state.installData(kvs);
  }

  /**
   * Closes the database, its column family handles and every native option object; idempotent. The
   * WAL is synced first, so a clean shutdown keeps unsynced writes even across an OS crash; open
   * snapshots are released before the database closes.
   */
  @Override
  public void close() {
    database.close(state::releaseSnapshots);
  }
}
