package io.choir.client;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * WatchOptions says what a watch follows: one key, or every key with a prefix (the empty prefix: every
 * key), from which revision, and whether each event carries the previous value. Immutable; the
 * {@code with} methods return a copy.
 *
 * <pre>{@code
 * WatchOptions.prefix("config/").fromRevision(1200).withPrevValue()
 * }</pre>
 */
public final class WatchOptions {
  private final byte[] key;
  private final boolean prefix;
  private final long startRevision;
  private final boolean prevValue;

  private WatchOptions(byte[] key, boolean prefix, long startRevision, boolean prevValue) {
    this.key = key;
    this.prefix = prefix;
    this.startRevision = startRevision;
    this.prevValue = prevValue;
  }

  /**
   * A watch of one key, from now.
   *
   * @param key the key, not empty
   * @return the options
   */
  public static WatchOptions key(byte[] key) {
    if (key.length == 0) {
      throw new IllegalArgumentException("a watched key is not empty (watch the prefix \"\" for every key)");
    }
    return new WatchOptions(key.clone(), false, 0, false);
  }

  /**
   * A watch of one key (UTF-8), from now.
   *
   * @param key the key, not empty
   * @return the options
   */
  public static WatchOptions key(String key) {
    return key(key.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * A watch of every key that starts with prefix (empty: every key), from now.
   *
   * @param prefix the prefix
   * @return the options
   */
  public static WatchOptions prefix(byte[] prefix) {
    return new WatchOptions(prefix.clone(), true, 0, false);
  }

  /**
   * A watch of every key that starts with prefix (UTF-8; empty: every key), from now.
   *
   * @param prefix the prefix
   * @return the options
   */
  public static WatchOptions prefix(String prefix) {
    return prefix(prefix.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The same watch, delivering every change from revision on (inclusive); 0: from now. A revision
   * older than the replicas keep ends the watch with {@link WatchCompactedException}.
   *
   * @param revision the first revision (op number) to deliver, or 0
   * @return a copy with that start
   */
  public WatchOptions fromRevision(long revision) {
    if (revision < 0) {
      throw new IllegalArgumentException("a revision is not negative: " + revision);
    }
    return new WatchOptions(key, prefix, revision, prevValue);
  }

  /**
   * The same watch, with each event's previous value ({@link WatchEvent#prevValue()}).
   *
   * @return a copy that asks for previous values
   */
  public WatchOptions withPrevValue() {
    return new WatchOptions(key, prefix, startRevision, true);
  }

  /** @return the key or prefix (a copy) */
  public byte[] key() {
    return key.clone();
  }

  byte[] keyBytes() {
    return key;
  }

  /** @return whether this watches a prefix */
  public boolean isPrefix() {
    return prefix;
  }

  /** @return the first revision to deliver, 0 for "from now" */
  public long startRevision() {
    return startRevision;
  }

  /** @return whether events carry the previous value */
  public boolean prevValue() {
    return prevValue;
  }

  @Override
  public String toString() {
    return (prefix ? "prefix " : "key ") + new String(key, StandardCharsets.UTF_8)
        + (startRevision == 0 ? "" : " from " + startRevision) + (prevValue ? " with previous values" : "");
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof WatchOptions w && Arrays.equals(key, w.key) && prefix == w.prefix
        && startRevision == w.startRevision && prevValue == w.prevValue;
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(key) * 31 + Long.hashCode(startRevision) + (prefix ? 1 : 0) + (prevValue ? 2 : 0);
  }
}
