package io.choir.server.core;

import io.choir.proto.MessageType;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * RecoveryProtocol owns a restarted replica's recovery (VR Revisited 4.3): a replica restarted with
 * buffered durability may have lost entries it acknowledged, so it multicasts RECOVERY with a nonce
 * once per heartbeat interval and collects the answers, until f+1 other voters have answered with
 * that nonce (of an even count n of voters, n/2), the primary of the newest view among them included.
 * The outcome is the view to rejoin and the primary's answer (its last op and commit). It also builds
 * the answer a normal replica gives.
 */
final class RecoveryProtocol {
  /** Enough answers came: rejoin view as a backup; fromPrimary holds that view's primary's log state. */
  record Outcome(long view, RecoveryResponse fromPrimary) {}

  private final CoreConfig config;
  private final Members members;
  private long nonce;
  private long lastSentNs = Long.MIN_VALUE / 2;
  private final Map<Integer, RecoveryResponse> responses = new HashMap<>();
  private final Map<Integer, Long> views = new HashMap<>();

  RecoveryProtocol(CoreConfig config, Members members) {
    this.config = config;
    this.members = members;
  }

  /** Starts recovering with nonce (odd, from the seeded source: it tells this attempt's answers apart). */
  void begin(long nonce) {
    this.nonce = nonce;
  }

  /** Multicasts RECOVERY once per heartbeat interval, and asks for the tick of the next one. */
  void tick(long nowNs, long view, Effects out) {
    if (nowNs - lastSentNs >= config.heartbeatIntervalNs) {
      lastSentNs = nowNs;
      out.send(Effects.MULTICAST, view, MessageType.RECOVERY,
          Recovery.newBuilder().setNonce(nonce).build());
    }
    out.tickBy(lastSentNs + config.heartbeatIntervalNs);
  }

  /**
   * Replica from answered in view v; the outcome once the answers suffice (they are then forgotten).
   * Only voters of this replica's epoch count: a learner takes no part in forming views, so its answer
   * says nothing of the newest one (DESIGN.md "Membership").
   */
  Optional<Outcome> answered(int from, long v, RecoveryResponse r) {
    if (r.getNonce() != nonce || !members.isVoter(from)) {
      return Optional.empty();
    }
    responses.put(from, r);
    views.put(from, v);
    long maxView = views.values().stream().mapToLong(Long::longValue).max().orElse(0);
    int primary = members.primaryOf(maxView);
    RecoveryResponse fromPrimary = responses.get(primary);
    // VR 4.3: f+1 answers from other voters with our nonce, one of them from the primary of the newest
    // view they name.
    if (responses.size() < needed() || fromPrimary == null || !fromPrimary.getFromPrimary()
        || views.get(primary) != maxView) {
      return Optional.empty();
    }
    responses.clear();
    views.clear();
    return Optional.of(new Outcome(maxView, fromPrimary));
  }

  /**
   * How many other voters must answer: enough that they include a member of every quorum besides this
   * replica (answers + (quorum - 1) > voters - 1), so the newest view any quorum formed is among theirs.
   * VR's f+1 of 2f+1 voters; of an even count n, n/2 (f+1 would need more answers than a quorum, of 2
   * voters more than there are).
   */
  private int needed() {
    return members.voterCount() - members.quorum() + 1;
  }

  /** The answer of a replica in normal status to RECOVERY r: a primary adds its last op and commit. */
  static RecoveryResponse answer(Recovery r, boolean primary, long lastOp, long commitOp) {
    RecoveryResponse.Builder b = RecoveryResponse.newBuilder().setNonce(r.getNonce()).setFromPrimary(primary);
    if (primary) {
      b.setLastOp(lastOp).setCommit(commitOp);
    }
    return b.build();
  }

  /** The most answers held at once (bounded by the members). */
  int size() {
    return Math.max(responses.size(), views.size());
  }
}
