package io.choir.client;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * VersionedValue is a value together with its version (the op number of the key's last change), so a
 * caller can pass the version to {@link ChoirClient#compareAndSetVersion} for an optimistic update.
 *
 * @param value the value; owned by the caller (not copied)
 * @param version the op number of the key's last change, always positive
 */
public record VersionedValue(byte[] value, long version) {
  /**
   * The value decoded as UTF-8, for keys that hold text.
   *
   * @return the value as a string
   */
  public String valueAsString() {
    return new String(value, StandardCharsets.UTF_8);
  }

  /** Equal when both the value bytes and the version are equal (records compare arrays by identity). */
  @Override
  public boolean equals(Object o) {
    return o instanceof VersionedValue v && version == v.version && Arrays.equals(value, v.value);
  }

  /** Hash over the value bytes and the version, consistent with {@link #equals}. */
  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(value) + Long.hashCode(version);
  }

  /** Shows the size of the value and its version, not its bytes (values may be large or secret). */
  @Override
  public String toString() {
    return "VersionedValue[" + value.length + " bytes, version=" + version + "]";
  }
}
