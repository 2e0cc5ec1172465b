package io.choir.server.storage;

import io.choir.proto.KeyValue;
import java.util.List;
import java.util.Map;

/**
 * StateStore is the replica's durable applied state: the data (key to value and version) and the meta
 * rows (applied number, checksum, client table, and the protocol's small rows), what the storage
 * stage's apply lane writes, plus the point-in-time snapshot a state transfer streams and the two
 * steps that install one. It shares one write-ahead log with the {@link LogStore} of the same {@link
 * Storage} (see the durability contract there).
 */
public interface StateStore {
  /** Returns the value and version of key, or null when absent. */
  Versioned get(byte[] key);

  /** What {@link #getIfInMemory} returns when only a read that may wait for the disk can tell. */
  Versioned NOT_IN_MEMORY = new Versioned(new byte[0], Long.MIN_VALUE);

  /**
   * Like {@link #get}, but answers only from memory and never waits for I/O: the value and version of
   * key, null when key is known to be absent, or {@link #NOT_IN_MEMORY} when finding out needs the disk
   * (a caller on an event loop then hands the read to a thread that may wait). This default knows nothing.
   */
  default Versioned getIfInMemory(byte[] key) {
    return NOT_IN_MEMORY;
  }

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

  /** Makes every earlier write durable (of this store and of the log store sharing its WAL). */
  void sync();

  /**
   * Returns a consistent point-in-time view of the data and meta spaces (see {@link StorageSnapshot}),
   * for streaming a state transfer while writes go on. Any thread; the caller closes it.
   */
  StorageSnapshot snapshot();

  /**
   * Starts installing a state transfer: in one atomic, synced write, sets the meta row {@link
   * MetaKeys#INSTALLING} to 1 and deletes every data pair, every client table row ({@link
   * MetaKeys#CLIENT_PREFIX}), every lease row ({@link MetaKeys#LEASE_PREFIX}), {@link MetaKeys#APPLIED}
   * and {@link MetaKeys#CHECKSUM}. Other meta rows (the persisted view and vote) and the log are kept. Synced so that a crash from here on finds the
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
}
