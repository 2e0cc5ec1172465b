package io.choir.client;

/**
 * WatchCompactedException means a watch asked for a revision older than the replica keeps in its
 * watch history (or the replica's state was replaced past it by a state transfer): the changes in
 * between cannot be delivered one by one, so the watch ends rather than skip them. Read the current
 * state (a get or a scan, whose op tells the revision) and watch again from that op + 1, or from
 * {@link #oldestRevision()} if the gap does not matter.
 */
public final class WatchCompactedException extends ChoirException {
  private static final long serialVersionUID = 1L;
  private final long oldestRevision;

  /**
   * WatchCompactedException with the replica's explanation.
   *
   * @param message what was asked and what is kept
   * @param oldestRevision the oldest revision the replica accepted as a start then
   */
  public WatchCompactedException(String message, long oldestRevision) {
    super(message);
    this.oldestRevision = oldestRevision;
  }

  /** @return the oldest revision the replica accepted as a start when it refused */
  public long oldestRevision() {
    return oldestRevision;
  }
}
