package io.choir.server.storage;

import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import java.util.List;
import java.util.Map;

/**
 * Storage is the replica's durable state, in three key spaces (RocksDB column families): the log (op
 * number to entry), the data (key to value and version) and meta (applied number, checksum, client
 * table, view). Two implementations pass one contract test: {@code RocksDbStorage} and the in-memory
 * twin {@code MemoryStorage}, which also models the two crashes (a killed process keeps every
 * completed write; a power loss keeps what was synced and a prefix of the rest).
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
public interface Storage extends AutoCloseable {
  /** Appends entries to the log (op order, no gaps expected by callers) as one atomic write. */
  void appendLog(List<Entry> entries, boolean sync);

  /**
   * Returns the log entries with fromOp <= op <= toOp in op order, stopping before the total serialized
   * size would exceed maxBytes (at least one entry is returned when there is one in range).
   */
  List<Entry> readLog(long fromOp, long toOp, int maxBytes);

  /** Lowest op in the log, or 0 when the log is empty. */
  long firstLogOp();

  /** Highest op in the log, or 0 when the log is empty. */
  long lastLogOp();

  /** Removes every log entry with op < op (log compaction below the low watermark). */
  void truncateLogBefore(long op, boolean sync);

  /** Removes every log entry with op > op (a new view discards an uncommitted suffix). */
  void truncateLogAfter(long op, boolean sync);

  /** Returns the value and version of key, or null when absent. */
  Versioned get(byte[] key);

  /**
   * Returns up to limit pairs with start <= key < end in unsigned byte order; an empty end means no
   * upper bound.
   */
  default List<KeyValue> scan(byte[] start, byte[] end, int limit) {
    return scan(start, end, limit, Long.MAX_VALUE);
  }

  /**
   * Like {@link #scan(byte[], byte[], int)}, but stops once the pairs returned hold maxBytes or more
   * ({@link #pairBytes} each): the last pair may cross the bound, so one pair is returned whenever the
   * range holds one, and a caller that needs a hard bound drops the pair that crossed it.
   */
  List<KeyValue> scan(byte[] start, byte[] end, int limit, long maxBytes);

  /** What one scanned pair counts towards a scan's byte bound: key, value and 32 bytes of framing. */
  static long pairBytes(KeyValue pair) {
    return pair.getKey().size() + (long) pair.getValue().size() + 32;
  }

  /** Number of keys in the data space (may be an estimate for RocksDB). */
  long approximateKeyCount();

  /** Returns the meta value of key, or null. */
  byte[] getMeta(byte[] key);

  /** Returns every meta pair whose key starts with prefix, in key order. */
  List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix);

  /** Applies every change of set atomically. */
  void write(WriteSet set, boolean sync);

  /** Makes every earlier write durable. */
  void sync();

  /**
   * Returns a consistent point-in-time view of the data and meta spaces (see {@link StorageSnapshot}),
   * for streaming a state transfer while writes go on. Any thread; the caller closes it.
   */
  StorageSnapshot snapshot();

  /**
   * Starts installing a state transfer: in one atomic, synced write, sets the meta row {@link
   * MetaKeys#INSTALLING} to 1 and deletes every data pair, every client table row ({@link
   * MetaKeys#CLIENT_PREFIX}), {@link MetaKeys#APPLIED} and {@link MetaKeys#CHECKSUM}. Other meta rows
   * (the persisted view and vote) and the log are kept. Synced so that a crash from here on finds the
   * marker and never mistakes a partial snapshot for a state. Calling it again while installing
   * restarts the install from empty.
   */
  void beginInstall();

  /**
   * Writes snapshot pairs (key, value, version) into the data space as one atomic, unsynced write: the
   * state machine's finishing write is synced and makes them durable. Meant only between {@link
   * #beginInstall()} and the end of the install; the storage does not check that.
   */
  void installData(List<KeyValue> kvs);

  @Override
  void close();
}
