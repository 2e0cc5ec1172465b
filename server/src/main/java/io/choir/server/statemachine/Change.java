package io.choir.server.statemachine;

/**
 * Change is one applied change of one key, what a watch delivers: the revision (the op of the entry
 * that made it), the key, the new value (null: the key was deleted) and the value and version before
 * (null and 0: the key was absent). A Batch gives one Change per key it changed, in the order the keys
 * were first changed; a delete of an absent key and a failed compare-and-set give none.
 *
 * <p>The arrays are the state machine's own and are never changed after the Change is made; readers
 * must not change them either.
 */
public record Change(long revision, byte[] key, byte[] value, byte[] prevValue, long prevVersion) {
  /** Whether the key was deleted (else put). */
  public boolean deleted() {
    return value == null;
  }
}
