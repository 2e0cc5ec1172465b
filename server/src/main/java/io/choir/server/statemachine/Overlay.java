package io.choir.server.statemachine;

import io.choir.server.storage.StateStore;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Overlay holds data changes not yet written, on top of its parent overlay or, at the root, of the
 * storage: the changes of one apply call, or of a batch on top of them (a batch reaches its parent
 * only when every op of it succeeded).
 */
final class Overlay {
  private final Overlay parent;
  private final StateStore storage;
  /** Changed keys in change order; a null value marks a deleted key. */
  private final Map<Key, Versioned> changes = new LinkedHashMap<>();

  /** The root overlay of an apply call, over storage. */
  Overlay(StateStore storage) {
    this.parent = null;
    this.storage = storage;
  }

  /** An overlay on top of parent (a batch). */
  Overlay(Overlay parent) {
    this.parent = parent;
    this.storage = parent.storage;
  }

  Versioned get(byte[] key) {
    Key wrapped = new Key(key);
    if (changes.containsKey(wrapped)) {
      return changes.get(wrapped);
    }
    return parent != null ? parent.get(key) : storage.get(key);
  }

  void put(byte[] key, byte[] value, long version) {
    changes.put(new Key(key), new Versioned(value, version));
  }

  /** Deletes key; returns whether it existed. */
  boolean delete(byte[] key) {
    boolean existed = get(key) != null;
    if (existed) {
      changes.put(new Key(key), null);
    }
    return existed;
  }

  void mergeIntoParent() {
    parent.changes.putAll(changes);
  }

  void writeTo(WriteSet set) {
    for (Map.Entry<Key, Versioned> change : changes.entrySet()) {
      if (change.getValue() == null) {
        set.deleteData(change.getKey().bytes());
      } else {
        set.putData(change.getKey().bytes(), change.getValue().value(), change.getValue().version());
      }
    }
  }

  /** Key wraps a byte[] key with value equality, for hash maps. */
  private record Key(byte[] bytes) {
    @Override
    public boolean equals(Object other) {
      return other instanceof Key key && Arrays.equals(bytes, key.bytes);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
      return Arrays.toString(bytes);
    }
  }
}
