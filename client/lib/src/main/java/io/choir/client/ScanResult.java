package io.choir.client;

import java.util.List;

/**
 * ScanResult is one page of a range scan. When {@code more} is true the limit, or the replica's byte bound
 * on one reply ({@code max_scan_reply_bytes}), cut the range short;
 * continue from the last key plus a zero byte to read the next page.
 *
 * @param entries the pairs in key order (unmodifiable)
 * @param more true when the range holds more pairs than were returned
 */
public record ScanResult(List<KeyValueVersion> entries, boolean more) {
  /**
   * ScanResult; the entries are copied into an unmodifiable list.
   *
   * @param entries the pairs in key order
   * @param more true when the range holds more pairs than were returned
   */
  public ScanResult {
    entries = List.copyOf(entries);
  }
}
