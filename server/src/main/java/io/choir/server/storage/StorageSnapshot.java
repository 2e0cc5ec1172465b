package io.choir.server.storage;

import io.choir.proto.KeyValue;
import java.util.List;
import java.util.Map;

/**
 * StorageSnapshot is a consistent point-in-time view of a {@link Storage}'s data and meta spaces, so
 * that a state transfer can stream the whole state (applied number, checksum, data, client table) as
 * of one op while the replica keeps applying: writes made after {@link Storage#snapshot()} returned
 * are invisible to it.
 *
 * <p>A snapshot pins resources (RocksDB keeps every version it can see), so it must be closed promptly;
 * closing the storage also releases it, after which its reads fail with a StorageException. One
 * thread at a time uses a snapshot.
 */
public interface StorageSnapshot extends AutoCloseable {
  /** Returns the meta value of key as of the snapshot, or null. */
  byte[] getMeta(byte[] key);

  /** Returns every meta pair whose key starts with prefix, in key order, as of the snapshot. */
  List<Map.Entry<byte[], byte[]>> scanMeta(byte[] prefix);

  /**
   * Returns the data pairs with key >= startInclusive in unsigned byte order, with their versions: at
   * most maxPairs, stopping before the total key and value bytes would exceed maxBytes (at least one
   * pair is returned when there is one, so a large value cannot stall a scan). An empty result means
   * there is no key at or above startInclusive.
   */
  List<KeyValue> scanData(byte[] startInclusive, int maxPairs, int maxBytes);

  /** Releases the snapshot; idempotent. */
  @Override
  void close();
}
