package io.choir.server.storage;

import io.choir.proto.Entry;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.random.RandomGenerator;

/**
 * MemoryWal is the in-memory twin's model of RocksDB's one write-ahead log and of what a crash leaves
 * of it: the current state of the three key spaces, the durable state (everything up to the last
 * fsync) and the unsynced records since then, in call order (the WAL's tail). The {@link
 * MemoryLogStore} and the {@link MemoryStateStore} both write through it, so their writes share one
 * order, as they do in RocksDB. See {@link MemoryStorage} for the two crashes.
 *
 * <p>Threads: a read-write lock makes every call atomic; arrays stored in the state are never mutated
 * (the stores copy them on the way in and out).
 */
final class MemoryWal {
  /** The three key spaces; the current and the durable state are two of these. */
  static final class State {
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

  /** MemoryWal creates an empty log with an empty state. */
  MemoryWal() {
    this(new State(), new State(), new ArrayList<>());
  }

  private MemoryWal(State durable, State current, List<Consumer<State>> pending) {
    this.durable = durable;
    this.current = current;
    this.pending = pending;
  }

  /** What a kill -9 leaves: every completed write, the same tail still unsynced; closes this one. */
  MemoryWal processCrash() {
    lock.writeLock().lock();
    try {
      ensureOpen("crash");
      closed = true;
      return new MemoryWal(durable.copy(), current.copy(), new ArrayList<>(pending));
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** What a power loss leaves: the durable state plus a prefix of the tail of random length. */
  MemoryWal powerLoss(RandomGenerator random) {
    lock.writeLock().lock();
    try {
      ensureOpen("crash");
      return powerLossKeeping(random.nextInt(pending.size() + 1));
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** What a power loss leaves that kept the first keptUnsyncedWrites of the tail; closes this one. */
  MemoryWal powerLossKeeping(int keptUnsyncedWrites) {
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
      return new MemoryWal(survivor, survivor.copy(), new ArrayList<>());
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** True when the durable log holds op or the durable applied number is at least op. */
  boolean durablyHolds(long op) {
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
  int unsyncedWriteCount() {
    lock.readLock().lock();
    try {
      return pending.size();
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Reads the current state under the read lock; fails once closed, naming what. */
  <T> T read(String what, Function<State, T> reader) {
    lock.readLock().lock();
    try {
      ensureOpen(what);
      return reader.apply(current);
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Applies write to the current state now and to the durable state once synced. */
  void mutate(String what, Consumer<State> write, boolean sync) {
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

  /** Makes every earlier write durable (an fsync of the WAL). */
  void sync() {
    lock.writeLock().lock();
    try {
      ensureOpen("sync");
      makeDurable();
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Closes this log; idempotent. */
  void close() {
    lock.writeLock().lock();
    try {
      closed = true;
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
