package io.choir.server.storage;

/**
 * Storage is the replica's durable state: a {@link LogStore} (the log: op number to entry) and a
 * {@link StateStore} (the data: key to value and version; meta: applied number, checksum, client
 * table, view) over one database, so that both share one write-ahead log. Two implementations pass
 * one contract test: {@code RocksDbStorage} (one RocksDB, three column families, opened and tuned by
 * {@code RocksDatabase}) and the in-memory twin {@code MemoryStorage}, which also models the two
 * crashes (a killed process keeps every completed write; a power loss keeps what was synced and a
 * prefix of the rest).
 *
 * <p>Durability contract: every write is one atomic record of one write-ahead log shared by the three
 * key spaces, in call order. A call with {@code sync = true} returns only once that write and every
 * earlier write are durable (fsync of the write-ahead log); {@link #sync()} makes every earlier write
 * durable; an unsynced write becomes durable with the next sync. After a power loss the storage holds
 * the synced writes plus a prefix of the unsynced ones, never a later write without an earlier one.
 *
 * <p>Threads: several threads write, each its own kind of record (the replica loop the view, the
 * storage stage's log lane the log and the last normal view, its apply lane the state and installs);
 * every call is atomic and calls are applied in the order they happen. Reads (get, scan, readLog,
 * getMeta) may come from any thread and see a consistent state. Ordering between the writers is the
 * callers' (see StorageStage).
 */
public interface Storage extends LogStore, StateStore, AutoCloseable {
  /** Makes every earlier write durable, of the log and the state alike. */
  @Override
  void sync();

  @Override
  void close();
}
