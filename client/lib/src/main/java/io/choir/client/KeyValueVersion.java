package io.choir.client;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * KeyValueVersion is one pair returned by a scan, with the version (op number of the key's last
 * change) so it can feed a compare-and-set.
 *
 * @param key the key; owned by the caller (not copied)
 * @param value the value; owned by the caller (not copied)
 * @param version the op number of the key's last change
 */
public record KeyValueVersion(byte[] key, byte[] value, long version) {
  /**
   * The key decoded as UTF-8.
   *
   * @return the key as a string
   */
  public String keyAsString() {
    return new String(key, StandardCharsets.UTF_8);
  }

  /**
   * The value decoded as UTF-8.
   *
   * @return the value as a string
   */
  public String valueAsString() {
    return new String(value, StandardCharsets.UTF_8);
  }

  /** Equal when key bytes, value bytes and version are equal (records compare arrays by identity). */
  @Override
  public boolean equals(Object o) {
    return o instanceof KeyValueVersion kv
        && version == kv.version
        && Arrays.equals(key, kv.key)
        && Arrays.equals(value, kv.value);
  }

  /** Hash over key, value and version, consistent with {@link #equals}. */
  @Override
  public int hashCode() {
    return (31 * Arrays.hashCode(key) + Arrays.hashCode(value)) * 31 + Long.hashCode(version);
  }

  /** Shows the key as UTF-8 and only the size of the value. */
  @Override
  public String toString() {
    return "KeyValueVersion[key=" + keyAsString() + ", " + value.length + " bytes, version=" + version + "]";
  }
}
