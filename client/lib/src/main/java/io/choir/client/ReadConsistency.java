package io.choir.client;

/**
 * ReadConsistency chooses how a read (get, scan) is served, trading freshness for latency and load.
 * Writes are always linearizable and ignore it.
 */
public enum ReadConsistency {
  /**
   * The primary confirms it still leads a majority before answering, so the read sees every write
   * acknowledged before it started (the default).
   */
  LINEARIZABLE,
  /**
   * Any replica answers from its applied state, but never older than the highest op this client has
   * already seen: the session reads its own writes and never goes back in time, at lower cost than a
   * linearizable read.
   */
  SEQUENTIAL;

  // The wire enum is named in full: it has this enum's name.
  io.choir.proto.ReadConsistency toProto() {
    return this == SEQUENTIAL
        ? io.choir.proto.ReadConsistency.SEQUENTIAL
        : io.choir.proto.ReadConsistency.LINEARIZABLE;
  }
}
