package io.choir.bench.engine;

import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * BenchDriver is the one thing a benchmarked store has to provide: asynchronous single-key writes and
 * reads. The engine never blocks on a future; it issues a worker's next operation when the previous
 * one completes, so a driver must not block the calling thread either (queue instead).
 */
public interface BenchDriver extends AutoCloseable {
  /** Writes value under key; completes when the store has acknowledged the write. */
  CompletableFuture<?> write(byte[] key, byte[] value);

  /** Reads key; completes with anything (not found is a result, not an error). */
  CompletableFuture<?> read(byte[] key);

  /** Short name of the target, e.g. "choir" or "etcd"; goes into the result. */
  String name();

  /** Free-form facts about the target's setup (endpoints, connections...) recorded in the result. */
  default Map<String, Object> describe() {
    return Map.of();
  }

  /** Releases the connections; throws no checked exception. */
  @Override
  void close();
}
