package io.choir.server.storage;

/**
 * RocksDbTuning holds the few RocksDB knobs worth setting for a write-heavy, small-value workload; the
 * rest stay at RocksDB's defaults (level compaction with dynamic level sizes). {@link RocksDatabase}
 * is the one place that turns them into options.
 *
 * @param blockCacheBytes the LRU block cache shared by all column families (bounds read memory)
 * @param writeBufferBytes the memtable size of each column family before it is flushed
 * @param backgroundJobs flush and compaction threads
 * @param maxTotalWalBytes WAL size that forces a flush of the column families holding old WAL files
 *     (with three families, a quiet one would otherwise keep every WAL file alive)
 */
public record RocksDbTuning(
    long blockCacheBytes, long writeBufferBytes, int backgroundJobs, long maxTotalWalBytes) {
  public RocksDbTuning {
    if (blockCacheBytes < 1 << 20) {
      throw new IllegalArgumentException(
          "blockCacheBytes must be at least 1 MiB: " + blockCacheBytes);
    }
    if (writeBufferBytes < 1 << 20) {
      throw new IllegalArgumentException(
          "writeBufferBytes must be at least 1 MiB: " + writeBufferBytes);
    }
    if (backgroundJobs < 1) {
      throw new IllegalArgumentException("backgroundJobs must be at least 1: " + backgroundJobs);
    }
    if (maxTotalWalBytes < writeBufferBytes) {
      throw new IllegalArgumentException(
          "maxTotalWalBytes must be at least writeBufferBytes: " + maxTotalWalBytes);
    }
  }

  /** RocksDbTuning.defaults: 64 MiB cache, 32 MiB memtables, 2 background jobs, 256 MiB of WAL. */
  public static RocksDbTuning defaults() {
    return new RocksDbTuning(64L << 20, 32L << 20, 2, 256L << 20);
  }
}
