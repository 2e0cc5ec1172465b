package io.choir.client;

import java.nio.charset.StandardCharsets;

/**
 * CasFailedException means a compare-and-set (alone or inside a batch) found the key in another state
 * than expected, so nothing was written. It carries the key's current value and version so the caller
 * can decide what to do next without another read.
 */
public final class CasFailedException extends ChoirException {
  private static final long serialVersionUID = 1L;

  /** The key's value when the expectation failed, or null when the key was absent. */
  private final byte[] currentValue;
  /** The key's version when the expectation failed, 0 when absent. */
  private final long currentVersion;
  /** The failed operation's index in a batch, or -1. */
  private final int failedIndex;

  /**
   * CasFailedException for a failed expectation.
   *
   * @param message what went wrong
   * @param currentValue the key's current value, or null when the key is absent
   * @param currentVersion the key's current version, 0 when the key is absent
   * @param failedIndex the index of the failed operation in a batch, or -1 outside a batch
   */
  public CasFailedException(String message, byte[] currentValue, long currentVersion, int failedIndex) {
    super(message);
    this.currentValue = currentValue;
    this.currentVersion = currentVersion;
    this.failedIndex = failedIndex;
  }

  /**
   * The key's current value, or null when the key is absent. The array is not copied.
   *
   * @return the current value or null
   */
  public byte[] currentValue() {
    return currentValue;
  }

  /**
   * The key's current value decoded as UTF-8, or null when the key is absent.
   *
   * @return the current value as a string or null
   */
  public String currentValueAsString() {
    return currentValue == null ? null : new String(currentValue, StandardCharsets.UTF_8);
  }

  /**
   * The key's current version (op number of its last change), 0 when the key is absent.
   *
   * @return the current version
   */
  public long currentVersion() {
    return currentVersion;
  }

  /**
   * Whether the key exists now; false means the expectation failed because the key is absent.
   *
   * @return true when the key exists
   */
  public boolean keyExists() {
    return currentVersion != 0;
  }

  /**
   * The index of the failed operation in the batch, or -1 when the failure was a single
   * compare-and-set.
   *
   * @return the failed batch index or -1
   */
  public int failedIndex() {
    return failedIndex;
  }
}
