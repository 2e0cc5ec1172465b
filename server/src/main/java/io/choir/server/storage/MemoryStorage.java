package io.choir.server.storage;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;
import java.util.random.RandomGenerator;

/**
 * MemoryStorage is the in-memory twin of {@link RocksDbStorage} for tests and the deterministic
 * simulator: the same contract (one contract test runs over both), keys in the same unsigned byte
 * order, plus a model of durability with two kinds of crash.
 *
 * <p>Durability model. RocksDB has one write-ahead log for all its column families: every write (of
 * either storage lane, log or state) is one atomic record appended to it in call order, and an fsync
 * of the WAL (a synced write, or {@link #sync()}) makes that record and every earlier one durable.
 * This class keeps the current state, the durable state (everything up to the last fsync) and the
 * unsynced records since then, in call order (the WAL's tail), and offers the two crashes:
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
 * <p>Threads: one writer per lane and any number of readers; a read-write lock makes every call
 * atomic, so concurrent writers' records enter the WAL in one order, as they do in RocksDB.
 * Arrays are copied on the way in and out, so callers may reuse or change theirs.
 */
public final class MemoryStorage implements Storage {
  /** The three key spaces; the current and the durable state are two of these. */
  private static final class State {
    final TreeMap<Long, Entry> log = new TreeMap<>();
    final TreeMap<byte[], Versioned> data = new TreeMap<>(Bytes.UNSIGNED);
    final TreeMap<byte[], byte[]> meta = new TreeMap<>(Bytes.UNSIGNED);

    State copy() {
      // Arrays stored here are never mutated (copied on the way in and out), so sharing is safe.
      State copy = new State();
      copy.log.putAll(log);
      copy.data.putAll(data);
      copy.meta.putAll(meta);
      return copy;
    }
  }

  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private final State current;
  private final State durable;
  /** Writes applied to current but not yet to durable, in call order: the WAL's unsynced tail. */
  private final List<Consumer<State>> pending;

  private boolean closed; // guarded by lock

  /** MemoryStorage creates an empty storage. */
  public MemoryStorage() {
    this(new State(), new State(), new ArrayList<>());
  }

  private MemoryStorage(State durable, State current, List<Consumer<State>> pending) {
    this.durable = durable;
    this.current = current;
    this.pending = pending;
  }

  /**
   * Simulates kill -9 of the process: returns a new storage holding every completed write (they
   * reached the OS), with the same unsynced tail still unsynced, and closes this one (a crashed
   * process writes nothing more; a stale reference fails loudly).
   */
  public MemoryStorage processCrash() {
    lock.writeLock().lock();
    try {
      ensureOpen("crash");
      closed = true;
      return new MemoryStorage(durable.copy(), current.copy(), new ArrayList<>(pending));
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Simulates a power loss: returns a new storage holding the durable state plus a prefix of the
   * unsynced writes whose length random chooses uniformly in [0, {@link #unsyncedWriteCount()}], and
   * closes this one.
   */
  public MemoryStorage powerLoss(RandomGenerator random) {
    lock.writeLock().lock();
    try {
      ensureOpen("crash");
      return powerLossKeeping(random.nextInt(pending.size() + 1));
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Simulates a power loss in which the first {@code keptUnsyncedWrites} unsynced writes happened to
   * reach the disk (at most {@link #unsyncedWriteCount()}): returns a new storage with the durable
   * state plus that prefix, all of it durable now (it is on the disk), and closes this one.
   */
  public MemoryStorage powerLossKeeping(int keptUnsyncedWrites) {
    lock.writeLock().lock();
    try {
      ensureOpen("crash");
      if (keptUnsyncedWrites < 0 || keptUnsyncedWrites > pending.size()) {
        throw new IllegalArgumentException(
            "keptUnsyncedWrites must be in [0, " + pending.size() + "]: " + keptUnsyncedWrites);
      }
      State survivor = durable.copy();
      for (Consumer<State> write : pending.subList(0, keptUnsyncedWrites)) {
        write.accept(survivor);
      }
      closed = true;
      return new MemoryStorage(survivor, survivor.copy(), new ArrayList<>());
    } finally {
      lock.writeLock().unlock();
    }
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
    lock.readLock().lock();
    try {
      ensureOpen("read the durable state");
      if (durable.log.containsKey(op)) {
        return true;
      }
      byte[] applied = durable.meta.get(MetaKeys.bytes(MetaKeys.APPLIED));
      return applied != null && Bytes.bytesToLong(applied) >= op;
    } finally {
      lock.readLock().unlock();
    }
  }

  /** The number of writes a power loss may lose now (writes made since the last synced one). */
  public int unsyncedWriteCount() {
    lock.readLock().lock();
    try {
      return pending.size();
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    if (entries.isEmpty()) {
      if (sync) {
        sync();
      }
      return;
    }
    List<Entry> copy = List.copyOf(entries);
    mutate(
        "append to the log",
        state -> {
          for (Entry entry : copy) {
            state.log.put(entry.getOp(), entry);
          }
        },
        sync);
  }

  @Override
  public List<Entry> readLog(long fromOp, long toOp, int maxBytes) {
    lock.readLock().lock();
    try {
      ensureOpen("read the log");
      List<Entry> out = new ArrayList<>();
      if (fromOp > toOp) {
        return out;
      }
      long bytes = 0;
      for (Entry entry : current.log.subMap(fromOp, true, toOp, true).values()) {
        int size = entry.getSerializedSize();
        if (!out.isEmpty() && bytes + size > maxBytes) {
          break;
        }
        out.add(entry);
        bytes += size;
      }
      return out;
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public long firstLogOp() {
    lock.readLock().lock();
    try {
      ensureOpen("read the first log op");
      return current.log.isEmpty() ? 0 : current.log.firstKey();
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public long lastLogOp() {
    lock.readLock().lock();
    try {
      ensureOpen("read the last log op");
      return current.log.isEmpty() ? 0 : current.log.lastKey();
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public void truncateLogBefore(long op, boolean sync) {
    mutate("truncate the log", state -> state.log.headMap(op, false).clear(), sync);
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    if (op < 0) {
      throw new IllegalArgumentException("op must not be negative: " + op);
    }
    mutate("truncate the log", state -> state.log.tailMap(op, false).clear(), sync);
  }

  @Override
  public Versioned get(byte[] key) {
    lock.readLock().lock();
    try {
      ensureOpen("get a key");
      Versioned stored = current.data.get(key);
      return stored == null ? null : new Versioned(stored.value().clone(), stored.version());
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes) {
    lock.readLock().lock();
    try {
      ensureOpen("scan the data");
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
        bytes += Storage.pairBytes(kv);
      }
      return out;
    } finally {
      lock.readLock().unlock();
    }
  }

  /** The exact number of keys (the RocksDB twin only estimates it). */
  @Override
  public long approximateKeyCount() {
    lock.readLock().lock();
    try {
      ensureOpen("count the keys");
      return current.data.size();
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public byte[] getMeta(byte[] key) {
    lock.readLock().lock();
    try {
      ensureOpen("get a meta row");
      byte[] value = current.meta.get(key);
      return value == null ? null : value.clone();
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix) {
    lock.readLock().lock();
    try {
      ensureOpen("scan the meta rows");
      List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
      for (Map.Entry<byte[], byte[]> pair : current.meta.tailMap(prefix, true).entrySet()) {
        if (!Bytes.startsWith(pair.getKey(), prefix)) {
          break;
        }
        out.add(
            new AbstractMap.SimpleImmutableEntry<>(
                pair.getKey().clone(), pair.getValue().clone()));
      }
      return out;
    } finally {
      lock.readLock().unlock();
    }
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
    mutate(
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
    lock.writeLock().lock();
    try {
      ensureOpen("sync");
      makeDurable();
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Copies the data and meta maps under the read lock: O(keys) time and references, no value copies
   * (stored arrays are never mutated). Like RocksDB's, the snapshot fails once this storage is closed
   * (or crashed).
   */
  @Override
  public StorageSnapshot snapshot() {
    lock.readLock().lock();
    try {
      ensureOpen("take a snapshot");
      return new Snapshot(new TreeMap<>(current.data), new TreeMap<>(current.meta));
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public void beginInstall() {
    byte[] installing = MetaKeys.bytes(MetaKeys.INSTALLING);
    byte[] applied = MetaKeys.bytes(MetaKeys.APPLIED);
    byte[] checksum = MetaKeys.bytes(MetaKeys.CHECKSUM);
    byte[] clients = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
    mutate(
        "begin an install",
        state -> {
          state.data.clear();
          state.meta.remove(applied);
          state.meta.remove(checksum);
          state.meta.subMap(clients, true, Bytes.prefixEnd(clients), false).clear();
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
    mutate(
        "install data",
        state -> {
          for (Map.Entry<byte[], Versioned> pair : copy) {
            state.data.put(pair.getKey(), pair.getValue());
          }
        },
        false);
  }

  /**
   * Closes this storage; idempotent. The instance's state goes with it: a restart after a clean
   * shutdown (RocksDB's close syncs the WAL) is {@code powerLossKeeping(unsyncedWriteCount())} before
   * the close, a restart after kill -9 is {@link #processCrash()}.
   */
  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      closed = true;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Snapshot is a private copy of the data and meta maps; reads copy arrays on the way out. */
  private final class Snapshot implements StorageSnapshot {
    private final TreeMap<byte[], Versioned> data;
    private final TreeMap<byte[], byte[]> meta;
    private volatile boolean closed;

    Snapshot(TreeMap<byte[], Versioned> data, TreeMap<byte[], byte[]> meta) {
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
      List<Map.Entry<byte[], byte[]>> out = new ArrayList<>();
      for (Map.Entry<byte[], byte[]> pair : meta.tailMap(prefix, true).entrySet()) {
        if (!Bytes.startsWith(pair.getKey(), prefix)) {
          break;
        }
        out.add(
            new AbstractMap.SimpleImmutableEntry<>(pair.getKey().clone(), pair.getValue().clone()));
      }
      return out;
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
      lock.readLock().lock();
      try {
        MemoryStorage.this.ensureOpen("read a snapshot");
      } finally {
        lock.readLock().unlock();
      }
    }
  }

  /** Applies write to the current state now and to the durable state once synced. */
  private void mutate(String what, Consumer<State> write, boolean sync) {
    lock.writeLock().lock();
    try {
      ensureOpen(what);
      write.accept(current);
      pending.add(write);
      if (sync) {
        makeDurable();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  private void makeDurable() {
    for (Consumer<State> write : pending) {
      write.accept(durable);
    }
    pending.clear();
  }

  private void ensureOpen(String what) {
    if (closed) {
      throw new StorageException("cannot " + what + ": memory storage is closed");
    }
  }
}
