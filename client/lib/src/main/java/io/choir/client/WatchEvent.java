package io.choir.client;

import java.nio.charset.StandardCharsets;

/**
 * WatchEvent is one change a watch delivers: its revision (the op number of the write; a put's new
 * version), whether the key was put or deleted, the key, the new value (empty for a delete) and, when
 * the watch asked for it, the value and version before (null and 0 when the key was absent, or not
 * asked for). Several events share a revision when one Batch changed several keys.
 *
 * @param revision the op number of the change
 * @param kind put or delete
 * @param key the key
 * @param value the new value (empty for a delete)
 * @param prevValue the value before, or null (absent, or not asked for)
 * @param prevVersion the version before, or 0
 */
public record WatchEvent(long revision, Kind kind, byte[] key, byte[] value, byte[] prevValue, long prevVersion) {
  /** Kind is what happened to the key. */
  public enum Kind {
    /** The key was written (created or changed). */
    PUT,
    /** The key was deleted. */
    DELETE
  }

  /** @return the key as UTF-8 text */
  public String keyAsString() {
    return new String(key, StandardCharsets.UTF_8);
  }

  /** @return the new value as UTF-8 text (empty for a delete) */
  public String valueAsString() {
    return new String(value, StandardCharsets.UTF_8);
  }

  /** @return the previous value as UTF-8 text, or null */
  public String prevValueAsString() {
    return prevValue == null ? null : new String(prevValue, StandardCharsets.UTF_8);
  }

  @Override
  public String toString() {
    return revision + " " + kind + " " + keyAsString() + (kind == Kind.PUT ? "=" + valueAsString() : "");
  }
}
