package io.choir.server.statemachine;

import io.choir.server.storage.StateStore;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Overlay holds data changes not yet written, on top of its parent overlay or, at the root, of the
 * storage: the changes of one apply call, or of a batch on top of them (a batch reaches its parent
 * only when every op of it succeeded).
 */
final class Overlay {
  private final Overlay parent;
  private final StateStore storage;
  /** Root only: what storage is known to hold for recently used keys, asked before storage. */
  private final RecentValues recent;
  /** Changed keys in change order; a null value marks a deleted key. */
  private final Map<Key, Versioned> changes = new LinkedHashMap<>();
  /**
   * Root only, when watches are served: every change in order, with the value before it, for the
   * watch events ({@link Change}); taken per entry by {@link #takeRecorded}. Null: not recorded.
   */
  private List<Recorded> recorded;

  /** Recorded is one change of the root overlay: the key, its new value (null: deleted), the old one. */
  record Recorded(byte[] key, Versioned value, Versioned prev) {}

  /** The root overlay of an apply call, over storage, without a cache. */
  Overlay(StateStore storage) {
    this(storage, new RecentValues(0));
  }

  /** The root overlay of an apply call, over storage and what recent knows of it. */
  Overlay(StateStore storage, RecentValues recent) {
    this.parent = null;
    this.storage = storage;
    this.recent = recent;
  }

  /** An overlay on top of parent (a batch). */
  Overlay(Overlay parent) {
    this.parent = parent;
    this.storage = parent.storage;
    this.recent = null;
  }

  Versioned get(byte[] key) {
    Key wrapped = new Key(key);
    Versioned changed = changes.get(wrapped);
    if (changed != null || changes.containsKey(wrapped)) {
      return changed;
    }
    if (parent != null) {
      return parent.get(key);
    }
    RecentValues.Looked known = recent.lookup(key);
    if (known.known()) {
      return known.value();
    }
    Versioned stored = storage.get(key);
    recent.learned(key, stored);
    return stored;
  }

  void put(byte[] key, byte[] value, long version) {
    Versioned now = new Versioned(value, version);
    if (recorded != null) {
      recorded.add(new Recorded(key, now, get(key)));
    }
    changes.put(new Key(key), now);
  }

  /** Deletes key; returns whether it existed. */
  boolean delete(byte[] key) {
    Versioned prev = get(key);
    if (prev != null) {
      if (recorded != null) {
        recorded.add(new Recorded(key, null, prev));
      }
      changes.put(new Key(key), null);
    }
    return prev != null;
  }

  /** Merges this batch's changes into the parent: each key's last change once, recorded by the parent. */
  void mergeIntoParent() {
    if (parent.recorded == null) {
      parent.changes.putAll(changes);
      return;
    }
    for (Map.Entry<Key, Versioned> change : changes.entrySet()) {
      Versioned prev = parent.get(change.getKey().bytes());
      if (change.getValue() != null || prev != null) { // a key put and deleted again was never there
        parent.recorded.add(new Recorded(change.getKey().bytes(), change.getValue(), prev));
      }
      parent.changes.put(change.getKey(), change.getValue()); // as putAll: the data are the same either way
    }
  }

  /** Starts recording this root overlay's changes (see {@link #takeRecorded}). */
  void record() {
    recorded = new ArrayList<>();
  }

  /** The changes recorded since the last call (empty when not recording), and forgets them. */
  List<Recorded> takeRecorded() {
    if (recorded == null || recorded.isEmpty()) {
      return List.of();
    }
    List<Recorded> taken = recorded;
    recorded = new ArrayList<>();
    return taken;
  }

  /** Root only: this call's write set is in storage; the cache learns the changed keys' values. */
  void written() {
    for (Map.Entry<Key, Versioned> change : changes.entrySet()) {
      recent.written(change.getKey().bytes(), change.getValue());
    }
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
