package io.choir.server.storage;

import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import java.util.List;
import java.util.Map;
import java.util.random.RandomGenerator;

/**
 * MemoryStorage is the in-memory twin of {@link RocksDbStorage} for tests and the deterministic
 * simulator: the same contract (one contract test runs over both), split the same way into a {@link
 * MemoryLogStore} and a {@link MemoryStateStore} over one {@link MemoryWal}, plus the two kinds of
 * crash. This class routes each call to its store and offers the crashes.
 *
 * <p>Durability model ({@link MemoryWal}). RocksDB has one write-ahead log for all its column
 * families: every write (of either storage lane, log or state) is one atomic record appended to it in
 * call order, and an fsync of the WAL (a synced write, or {@link #sync()}) makes that record and every
 * earlier one durable. The crashes:
 *
 * <ul>
 *   <li>{@link #processCrash()} (kill -9): every completed write had reached the OS, so the new
 *       instance holds the current state. The tail is still unsynced (it sits in the page cache): a
 *       later power loss may still drop it, unless something syncs first.
 *   <li>{@link #powerLoss(RandomGenerator)} (the machine loses power): only the durable state
 *       survives, plus any prefix of the unsynced tail (RocksDB's point-in-time WAL recovery replays
 *       the WAL up to the first record that did not fully reach the disk; what reached it is always a
 *       prefix), the prefix's length chosen by the given seeded random source; {@link
 *       #powerLossKeeping(int)} names the length.
 * </ul>
 *
 * <p>Threads: one writer per lane and any number of readers; every call is atomic, so concurrent
 * writers' records enter the WAL in one order, as they do in RocksDB. Arrays are copied on the way in
 * and out, so callers may reuse or change theirs.
 */
public final class MemoryStorage implements Storage {
  private final MemoryWal wal;
  private final MemoryLogStore log;
  private final MemoryStateStore state;

  /** MemoryStorage creates an empty storage. */
  public MemoryStorage() {
    this(new MemoryWal());
  }

  private MemoryStorage(MemoryWal wal) {
    this.wal = wal;
    this.log = new MemoryLogStore(wal);
    this.state = new MemoryStateStore(wal);
  }

  /**
   * Simulates kill -9 of the process: returns a new storage holding every completed write (they
   * reached the OS), with the same unsynced tail still unsynced, and closes this one (a crashed
   * process writes nothing more; a stale reference fails loudly).
   */
  public MemoryStorage processCrash() {
    return new MemoryStorage(wal.processCrash());
  }

  /**
   * Simulates a power loss: returns a new storage holding the durable state plus a prefix of the
   * unsynced writes whose length random chooses uniformly in [0, {@link #unsyncedWriteCount()}], and
   * closes this one.
   */
  public MemoryStorage powerLoss(RandomGenerator random) {
    return new MemoryStorage(wal.powerLoss(random));
  }

  /**
   * Simulates a power loss in which the first {@code keptUnsyncedWrites} unsynced writes happened to
   * reach the disk (at most {@link #unsyncedWriteCount()}): returns a new storage with the durable
   * state plus that prefix, all of it durable now (it is on the disk), and closes this one.
   */
  public MemoryStorage powerLossKeeping(int keptUnsyncedWrites) {
    return new MemoryStorage(wal.powerLossKeeping(keptUnsyncedWrites));
  }

  /**
   * The harshest power loss: nothing unsynced survives ({@code powerLossKeeping(0)}). Kept for the
   * callers written before the two crash models; prefer {@link #powerLoss} or {@link #processCrash}.
   */
  public MemoryStorage crash() {
    return powerLossKeeping(0);
  }

  /** {@link #powerLossKeeping(int)} under its older name, for the callers written before it. */
  public MemoryStorage crashKeeping(int keptUnsyncedWrites) {
    return powerLossKeeping(keptUnsyncedWrites);
  }

  /**
   * True when a power loss now would keep op: the durable log holds it or the durable applied number
   * ({@link MetaKeys#APPLIED}) is at least op (the simulator's check that an acknowledged write is on
   * disk at a majority).
   */
  public boolean durablyHolds(long op) {
    return wal.durablyHolds(op);
  }

  /** The number of writes a power loss may lose now (writes made since the last synced one). */
  public int unsyncedWriteCount() {
    return wal.unsyncedWriteCount();
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
  public List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes) {
    return state.scan(start, end, limit, maxBytes);
  }

  /** The exact number of keys (the RocksDB twin only estimates it). */
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
    wal.sync();
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
   * Closes this storage; idempotent. The instance's state goes with it: a restart after a clean
   * shutdown (RocksDB's close syncs the WAL) is {@code powerLossKeeping(unsyncedWriteCount())} before
   * the close, a restart after kill -9 is {@link #processCrash()}.
   */
  @Override
  public void close() {
    wal.close();
  }
}
