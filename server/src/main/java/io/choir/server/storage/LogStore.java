package io.choir.server.storage;

import io.choir.proto.Entry;
import java.util.List;

/**
 * LogStore is the replica's durable log: op number to entry, what the storage stage's log lane writes
 * (appends and the two truncations). It shares one write-ahead log with the {@link StateStore} of the
 * same {@link Storage}, so the durability contract there holds across both: a sync of either makes
 * every earlier write of both durable, and a power loss keeps a prefix of their writes in call order.
 *
 * <p>The protocol's own small rows (the view, the last normal view, the catching-up marker, the
 * datagram epoch) are meta rows of the state store's key space, written by the replica loop and the
 * log lane through {@link StateStore#write} (see the replica's ReplicaMeta): on disk they always lived
 * in the meta column family, and the format does not change.
 */
public interface LogStore {
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

  /** Makes every earlier write durable (of this store and of the state store sharing its WAL). */
  void sync();
}
