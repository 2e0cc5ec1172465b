package io.choir.client;

/**
 * Watch is a running watch ({@link ChoirClient#watch}). It survives lost connections and failovers:
 * it resumes on any replica from the revision after the last one it delivered, so no event is lost
 * or repeated. Close it to stop.
 */
public interface Watch extends AutoCloseable {
  /**
   * The revision the next event will have at least: the last delivered + 1 (the start before any).
   *
   * @return the next revision, 0 while the first replica has not yet said where "now" is
   */
  long nextRevision();

  /**
   * Whether it still runs (not closed, not ended by an error).
   *
   * @return true while running
   */
  boolean isActive();

  /** Stops the watch and closes its connection; idempotent. No event is delivered after it returns. */
  @Override
  void close();
}
