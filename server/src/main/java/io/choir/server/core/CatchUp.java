package io.choir.server.core;

import java.util.OptionalLong;

/**
 * CatchUp owns a backup's state transfer (DESIGN.md "Loss, repair and flow"; VR Revisited 5.2): once the
 * ops a backup lacks are below what the primary's log still holds, it fetches the primary's applied
 * state instead of repairing by NACK. From then on the transfer is pending, and nothing is placed or
 * applied, until one install succeeds (storage may hold a partial one); a failed fetch is retried after
 * a pause. The caller runs the fetch (Effects.fetchStateFrom) and reports StateInstalled or
 * StateTransferFailed.
 */
final class CatchUp {
  private final long retryPauseNs;
  /** Set once this backup needs a state transfer; cleared only by a successful install. */
  private boolean pending;
  /** A fetch is under way (the caller reports StateInstalled or StateTransferFailed). */
  private boolean inFlight;
  /** After a failed fetch: not before this time again. */
  private OptionalLong retryAtNs = OptionalLong.empty();

  CatchUp(long retryPauseNs) {
    this.retryPauseNs = retryPauseNs;
  }

  /** True from the first fetch until an install succeeds: nothing is placed or applied meanwhile. */
  boolean pending() {
    return pending;
  }

  /** True when a fetch should start now (none under way, no retry pause running); it counts as started. */
  boolean start(long nowNs) {
    if (inFlight || (retryAtNs.isPresent() && nowNs < retryAtNs.getAsLong())) {
      return false;
    }
    pending = true;
    inFlight = true;
    retryAtNs = OptionalLong.empty();
    return true;
  }

  /** The fetch failed: still pending; returns the time to retry at. */
  long failed(long nowNs) {
    inFlight = false;
    retryAtNs = OptionalLong.of(nowNs + retryPauseNs);
    return retryAtNs.getAsLong();
  }

  /** An install succeeded. */
  void installed() {
    pending = false;
    inFlight = false;
    retryAtNs = OptionalLong.empty();
  }

  /** When a failed fetch may be retried, if one failed. */
  OptionalLong retryAtNs() {
    return retryAtNs;
  }
}
