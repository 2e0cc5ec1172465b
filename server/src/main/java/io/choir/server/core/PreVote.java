package io.choir.server.core;

import io.choir.proto.MessageType;
import io.choir.proto.PreViewChange;
import java.util.HashSet;
import java.util.Set;

/**
 * PreVote owns this replica's request for support of a view change (Raft thesis 9.6, in front of VR
 * Revisited 4.2 step 1): the view it asks for, who granted it, and when it last multicast
 * PRE_VIEW_CHANGE (resent every two heartbeat intervals until f others grant or the primary is heard
 * again). A replica that alone cannot hear the primary then never raises its view (issue 9, 2d).
 * Whether to grant another's request is the view change's decision (it depends on the mode).
 */
final class PreVote {
  private final long resendNs;
  private final Members members;
  /** True while asking for proposedView. */
  private boolean asking;
  private long proposedView;
  private final Set<Integer> grants = new HashSet<>();
  private long lastSentNs = Long.MIN_VALUE / 2;

  PreVote(CoreConfig config, Members members) {
    this.resendNs = 2 * config.heartbeatIntervalNs;
    this.members = members;
  }

  /** Asks (or goes on asking) for support of view proposed, from view; resends when due. */
  void ask(long proposed, long view, long nowNs, Counters counters, Effects out) {
    if (!asking || proposedView != proposed) {
      asking = true;
      proposedView = proposed;
      grants.clear();
      lastSentNs = Long.MIN_VALUE / 2;
      counters.preVotesStarted++;
    }
    if (nowNs - lastSentNs >= resendNs) {
      lastSentNs = nowNs;
      out.send(Effects.MULTICAST, view, MessageType.PRE_VIEW_CHANGE,
          PreViewChange.newBuilder().setView(proposed).build());
    }
    out.tickBy(lastSentNs + resendNs);
  }

  /** True while asking for support of view proposed. */
  boolean asksFor(long proposed) {
    return asking && proposedView == proposed;
  }

  /** Replica from granted; true once f others have (with this replica, a majority). */
  boolean granted(int from) {
    grants.add(from);
    return grants.size() >= members.f();
  }

  /** Stops asking (the primary spoke again, or a view change began). */
  void clear() {
    asking = false;
    proposedView = 0;
    grants.clear();
  }

  int grants() {
    return grants.size();
  }
}
