package io.choir.server.core;

import java.util.ArrayDeque;

/**
 * PrimaryLease owns the primary's lease for linearizable reads (DESIGN.md "Lease reads (issue 14)"):
 * when the primary decided to send each heartbeat round of its current view, and from that, how long
 * the newest round that f backups have answered keeps it the only primary. A backup that answered round
 * r heard the primary after the primary decided to send r, and keeps to it (grants no pre-vote, joins
 * no view change of anyone else) until it has heard nothing for the election timeout on its own clock;
 * so while nowNs is below start(r) + duration no newer view can have formed, and a read needs no round.
 *
 * <p>The rounds are kept only for the view they were sent in: a view change, a step-down or an epoch
 * switch (a new view number) ends the lease, and the next one comes only from a round of the new view.
 * At most {@link #MAX_ROUNDS} rounds are remembered; when a confirmed round is older than all of them,
 * there is simply no lease (a read then takes a round).
 */
final class PrimaryLease {
  static final int MAX_ROUNDS = 64;

  private record Round(long round, long sentNs) {}

  private final long durationNs;
  /** The view the rounds were sent in. */
  private long view = -1;
  /** Rounds of that view, oldest first, with the nowNs at which the primary decided to send each. */
  private final ArrayDeque<Round> rounds = new ArrayDeque<>();
  /** The lease end already known (from a round answered earlier in the same view), or MIN_VALUE. */
  private long endNs = Long.MIN_VALUE;
  /** When the newest round of the view was decided, or MIN_VALUE. */
  private long lastSentNs = Long.MIN_VALUE;

  PrimaryLease(long durationNs) {
    this.durationNs = durationNs;
  }

  long durationNs() {
    return durationNs;
  }

  /** The primary of view decided at nowNs to send heartbeat round. */
  void roundSent(long view, long round, long nowNs) {
    if (view != this.view) {
      forget();
      this.view = view;
    }
    if (!rounds.isEmpty() && rounds.peekLast().round() >= round) {
      return; // a copy of a round already numbered: its first decision counts (the earliest start)
    }
    if (rounds.size() == MAX_ROUNDS) {
      rounds.pollFirst();
    }
    rounds.addLast(new Round(round, nowNs));
    lastSentNs = nowNs;
  }

  /**
   * True when a lease read at nowNs should ask for a round to renew the lease: even the newest round
   * sent, once answered, would leave less than half a lease (under writes PREPAREs stand in for
   * heartbeats, so no round goes out by itself). A round already under way that would renew it is
   * waited for.
   */
  boolean renewalDue(long view, long nowNs) {
    return view != this.view || lastSentNs == Long.MIN_VALUE || lastSentNs + durationNs - nowNs < durationNs / 2;
  }

  /** The lease ends now (a view left, a step-down): nothing sent before counts any more. */
  void forget() {
    rounds.clear();
    endNs = Long.MIN_VALUE;
    lastSentNs = Long.MIN_VALUE;
    view = -1;
  }

  /**
   * When the lease of view ends, given that f backups answered rounds up to confirmedRound in it; MIN_VALUE
   * when there is none (no round of this view is known to be answered).
   */
  long endNs(long view, long confirmedRound) {
    if (view != this.view) {
      return Long.MIN_VALUE;
    }
    // Rounds up to the confirmed one say no more than it (their start is earlier): drop them.
    Round confirmed = null;
    while (!rounds.isEmpty() && rounds.peekFirst().round() <= confirmedRound) {
      confirmed = rounds.pollFirst();
    }
    if (confirmed != null) {
      endNs = Math.max(endNs, confirmed.sentNs() + durationNs);
    }
    return endNs;
  }

  /** True while the lease of view holds at nowNs. */
  boolean holds(long view, long confirmedRound, long nowNs) {
    return nowNs < endNs(view, confirmedRound);
  }
}
