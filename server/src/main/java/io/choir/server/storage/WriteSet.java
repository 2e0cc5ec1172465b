package io.choir.server.storage;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * WriteSet is a group of changes to the data and meta key spaces that a {@link Storage} applies
 * atomically (one RocksDB WriteBatch): the state machine puts a batch of entries' data changes, the
 * applied number, the checksum and the client table rows into one WriteSet, so a crash never leaves
 * them out of step.
 */
public final class WriteSet {
  /** One change; value null means delete. */
  public record Change(Space space, byte[] key, byte[] value, long version) {}

  /** Which key space a change goes to. */
  public enum Space {
    DATA,
    META
  }

  private final List<Change> changes = new ArrayList<>();

  public WriteSet putData(byte[] key, byte[] value, long version) {
    changes.add(new Change(Space.DATA, key, value, version));
    return this;
  }

  public WriteSet deleteData(byte[] key) {
    changes.add(new Change(Space.DATA, key, null, 0));
    return this;
  }

  public WriteSet putMeta(byte[] key, byte[] value) {
    changes.add(new Change(Space.META, key, value, 0));
    return this;
  }

  public WriteSet deleteMeta(byte[] key) {
    changes.add(new Change(Space.META, key, null, 0));
    return this;
  }

  public List<Change> changes() {
    return Collections.unmodifiableList(changes);
  }

  public boolean isEmpty() {
    return changes.isEmpty();
  }
}
