package io.choir.server.storage;

/**
 * StorageException is an unchecked failure of a {@link Storage} (a RocksDB error, a corrupt record, a
 * use after close). The storage stage treats it as fatal: a replica that cannot persist must stop
 * acknowledging rather than pretend its writes are durable.
 */
public final class StorageException extends RuntimeException {
  public StorageException(String message) {
    super(message);
  }

  public StorageException(String message, Throwable cause) {
    super(message, cause);
  }
}
