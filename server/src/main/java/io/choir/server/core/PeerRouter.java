package io.choir.server.core;

import io.choir.proto.DoViewChange;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.StartView;
import io.choir.server.core.ReplicaCore.Mode;
import java.util.OptionalLong;

/**
 * PeerRouter owns the rules every peer message meets before a handler acts on it, and hands it to the
 * role that handles it: the checks of the message itself (PeerMessageChecks), the mode (a RECOVERING
 * replica hears only RECOVERY_RESPONSE, VR Revisited 4.3), the view rules of VR Revisited 4.2 (a
 * message of an older view never acts: fencing; one of a newer view moves this replica to it, unless
 * its primary is alive and the message is a proposal: leader stickiness, Raft thesis 4.2.3) and who may
 * send what (only a view's primary PREPAREs and heartbeats in it). It also owns the notice that frees
 * a replica stuck in a newer view than the others: it tells the old primary, which then follows it up
 * (at most once per heartbeat interval).
 */
final class PeerRouter {
  private final CoreConfig config;
  private final int self;
  private final ViewState views;
  private final PeerMessageChecks checks;
  private final Resender resender;
  private final QuorumTracker quorum;
  private final ReplicaLog log;
  private final LogFill fill;
  private final WritePath writes;
  private final ReadPath reads;
  private final BackupPath backups;
  private final PreVotePath preVotes;
  private final ViewChangePath viewChanges;
  private final JoinViewPath joins;
  private final RecoveryPath recoveries;
  private final MembershipPath membership;
  private final Counters counters;
  /** When this replica last told an old primary that it is in a newer view; empty: never. */
  private OptionalLong lastUnstickNs = OptionalLong.empty();

  PeerRouter(CoreConfig config, ViewState views, PeerMessageChecks checks, Resender resender,
      QuorumTracker quorum, ReplicaLog log, LogFill fill, WritePath writes, ReadPath reads,
      BackupPath backups, PreVotePath preVotes, ViewChangePath viewChanges, JoinViewPath joins,
      RecoveryPath recoveries, MembershipPath membership, Counters counters) {
    this.membership = membership;
    this.config = config;
    this.self = config.replicaId();
    this.views = views;
    this.checks = checks;
    this.resender = resender;
    this.quorum = quorum;
    this.log = log;
    this.fill = fill;
    this.writes = writes;
    this.reads = reads;
    this.backups = backups;
    this.preVotes = preVotes;
    this.viewChanges = viewChanges;
    this.joins = joins;
    this.recoveries = recoveries;
    this.counters = counters;
  }

  void onPeer(Event.Peer p, long nowNs, Effects out) {
    int fromIndex = views.members().indexOf(p.from());
    if (fromIndex < 0 && p.from() != self && Membership.epochOfView(p.view()) > views.members().epoch()
        && checks.admit(p, views.view())) {
      // A replica this one does not know, in a later epoch: members were added since this one's epoch,
      // so it is behind (and learns that only from them when its own epoch's members are gone).
      membership.onLaterEpoch(p, nowNs, out);
      return;
    }
    if (fromIndex < 0 && views.members().isFormer(p.from()) && checks.admit(p, views.view())) {
      // A replica removed since: it may not know (cut off or down when the change committed).
      membership.onFormerMember(p, nowNs, out);
      return;
    }
    if (fromIndex < 0 || p.from() == self) {
      counters.droppedUnexpected++;
      return;
    }
    // Every message in a replica's name earns it resend credit on a cluster without a key (ResendBudget).
    resender.received(fromIndex, ReplicaCore.DATAGRAM_HEADER_BYTES + p.body().getSerializedSize());
    if (!checks.admit(p, views.view())) {
      counters.peerRejected = checks.total();
      return;
    }
    // Views carry their epoch (Membership): another epoch's message never acts in this one.
    long epoch = Membership.epochOfView(p.view());
    if (epoch < views.members().epoch()) {
      membership.onOlderEpoch(p, nowNs, out);
      return;
    }
    if (epoch > views.members().epoch()) {
      membership.onLaterEpoch(p, nowNs, out);
      return;
    }
    if (!takesPart(p)) {
      counters.droppedUnexpected++;
      return;
    }
    if (views.mode() == Mode.RECOVERING) {
      if (p.type() == MessageType.RECOVERY_RESPONSE) {
        recoveries.onRecoveryResponse(p.from(), p.view(), (RecoveryResponse) p.body(), nowNs, out);
      } else {
        counters.droppedUnexpected++;
      }
      return;
    }
    if (p.type() == MessageType.RECOVERY) {
      recoveries.onRecovery(p.from(), (Recovery) p.body(), out);
      return;
    }
    if (p.type() == MessageType.RECOVERY_RESPONSE) {
      counters.droppedUnexpected++;
      return;
    }
    if (p.type() == MessageType.PRE_VIEW_CHANGE || p.type() == MessageType.PRE_VIEW_CHANGE_OK) {
      onPreVote(p, fromIndex, nowNs, out);
      return;
    }
    if (p.view() < views.view()) {
      onStaleView(p, nowNs, out);
      return;
    }
    quorum.heard(fromIndex, nowNs);
    boolean fromPrimaryOfItsView = p.from() == views.members().primaryOf(p.view());
    if (p.view() > views.view() && !moveToNewerView(p, fromPrimaryOfItsView, nowNs, out)) {
      return;
    }
    switch (p.type()) {
      case START_VIEW_CHANGE -> viewChanges.onStartViewChange(p.from(), nowNs, out);
      case DO_VIEW_CHANGE -> viewChanges.onDoViewChange(p.from(), (DoViewChange) p.body(), nowNs, out);
      case START_VIEW -> {
        if (fromPrimaryOfItsView) {
          joins.onStartView((StartView) p.body(), p.view(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case PREPARE -> {
        if (views.mode() == Mode.VIEW_CHANGE && fill.isFrom(p.from())) {
          viewChanges.onFillEntries((Prepare) p.body(), nowNs, out);
        } else if (fromPrimaryOfItsView && !views.isPrimary()) {
          if (!checks.entriesFit(p, (Prepare) p.body(), log.verifiedOp(), log.commitOp(), log.window())) {
            counters.peerRejected = checks.total();
            return;
          }
          if (views.mode() == Mode.VIEW_CHANGE) {
            joins.adoptView(views.view(), nowNs, out); // we missed START_VIEW of this view
          }
          backups.onPrepare((Prepare) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case HEARTBEAT -> {
        if (fromPrimaryOfItsView && !views.isPrimary()) {
          if (views.mode() == Mode.VIEW_CHANGE) {
            joins.adoptView(views.view(), nowNs, out);
          }
          backups.onHeartbeat((Heartbeat) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case PREPARE_OK -> {
        if (views.isPrimary()) {
          long op = ((PrepareOk) p.body()).getOp();
          if (!checks.ackWithin(p, op, 0, log.lastOp(), quorum.round())) {
            counters.peerRejected = checks.total();
            return;
          }
          writes.onAck(fromIndex, op, nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case HEARTBEAT_OK -> {
        if (views.isPrimary()) {
          HeartbeatOk ok = (HeartbeatOk) p.body();
          if (!checks.ackWithin(p, ok.getOp(), ok.getRound(), log.lastOp(), quorum.round())) {
            counters.peerRejected = checks.total();
            return;
          }
          quorum.roundAnswered(fromIndex, ok.getRound());
          writes.onAck(fromIndex, ok.getOp(), nowNs, out);
          reads.releaseReads(out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      case NACK -> {
        if (views.isPrimary()
            || (views.mode() == Mode.VIEW_CHANGE && !views.restartLimbo() && p.from() == views.primary())) {
          // In a view change the new primary may fetch committed entries it lacks from the chosen log.
          writes.onNack(p.from(), (Nack) p.body(), nowNs, out);
        } else {
          counters.droppedUnexpected++;
        }
      }
      default -> counters.droppedUnexpected++;
    }
  }

  /**
   * Only voters form views: a non-voter's pre-votes and view-change messages are dropped, and a learner,
   * a joiner not yet added or a retired replica takes no part in them. It still follows the log (a
   * joiner learns from it that it was added; the primary answers only members' NACKs).
   */
  private boolean takesPart(Event.Peer p) {
    Membership.Role role = views.members().selfRole();
    return switch (p.type()) {
      case START_VIEW_CHANGE, DO_VIEW_CHANGE, PRE_VIEW_CHANGE, PRE_VIEW_CHANGE_OK ->
          role == Membership.Role.VOTER && views.members().isVoter(p.from());
      default -> true;
    };
  }

  /** Pre-votes change nothing at the receiver and are answered whatever view their sender is in. */
  private void onPreVote(Event.Peer p, int fromIndex, long nowNs, Effects out) {
    if (p.view() >= views.view()) {
      quorum.heard(fromIndex, nowNs); // a quiet primary (no quorum) hears its backups again
    }
    if (p.view() > views.view()) {
      // The sender is in a newer view, which a majority once supported (views only rise behind a
      // pre-vote): this replica is behind. It follows it up, unless it keeps to its primary (a backup
      // that hears it, or a replica just started): that primary may hold a lease this replica's answers
      // earned, so it must not help form a newer view before it has gone silent (DESIGN.md "Lease reads
      // (issue 14)"). The sender's pre-votes reach that primary too, which moves up and takes it along.
      if (preVotes.keepsToPrimary(nowNs)) {
        counters.droppedNewerViewWhileSticky++;
      } else {
        viewChanges.startViewChange(p.view(), nowNs, out);
      }
    }
    if (p.type() == MessageType.PRE_VIEW_CHANGE) {
      preVotes.onPreViewChange(p.from(), ((PreViewChange) p.body()).getView(), nowNs, out);
    } else {
      long proposed = ((PreViewChangeOk) p.body()).getView();
      if (preVotes.onPreViewChangeOk(p.from(), proposed, nowNs)) {
        viewChanges.startViewChange(proposed, nowNs, out); // f others and this replica: a majority wants it
      }
    }
  }

  /** A message of an older view never acts (fencing), but one from an old primary may earn it a notice. */
  private void onStaleView(Event.Peer p, long nowNs, Effects out) {
    counters.droppedStaleView++;
    boolean fromOldPrimary = p.from() == views.members().primaryOf(p.view())
        && (p.type() == MessageType.PREPARE || p.type() == MessageType.HEARTBEAT
            || p.type() == MessageType.START_VIEW);
    if (fromOldPrimary && views.isPrimary()) {
      // A deposed primary still talking in its old view: tell it where the cluster is.
      out.send(p.from(), views.view(), MessageType.HEARTBEAT, writes.heartbeat());
    } else if (fromOldPrimary && unstickDue(nowNs)) {
      // We moved to a newer view (a majority once granted it) but the others stayed with a primary
      // of an older one, which stickiness keeps them to. Views never go back, so tell that primary
      // we are in a newer view: it moves up and takes the cluster with it (etcd-io/raft frees a
      // node stuck in a higher term the same way, at the price of one election).
      lastUnstickNs = OptionalLong.of(nowNs);
      counters.unstickNotices++;
      out.send(p.from(), views.view(), MessageType.HEARTBEAT_OK,
          HeartbeatOk.getDefaultInstance());
    }
  }

  private boolean unstickDue(long nowNs) {
    return lastUnstickNs.isEmpty() || nowNs - lastUnstickNs.getAsLong() >= config.heartbeatIntervalNs;
  }

  /**
   * A message of a newer view than ours: moves this replica to it where the message may (VR 4.2), and
   * says whether the message is then handled in it (false: dropped).
   */
  private boolean moveToNewerView(Event.Peer p, boolean fromPrimaryOfItsView, long nowNs, Effects out) {
    switch (p.type()) {
      case START_VIEW_CHANGE, DO_VIEW_CHANGE -> {
        if ((preVotes.hearsLivePrimary(nowNs) || preVotes.justStarted(nowNs)) && p.from() != views.primary()) {
          // Leader stickiness (Raft thesis 4.2.3): while our primary is alive, a proposal for a newer
          // view comes from a replica that cannot hear it, and must not depose it. A replica just
          // started does not know when it last heard its primary, which may hold a lease (issue 14).
          counters.droppedSticky++;
          return false;
        }
        viewChanges.startViewChange(p.view(), nowNs, out);
        return true;
      }
      case START_VIEW -> {
        return true;
      }
      case HEARTBEAT_OK, PREPARE_OK -> {
        if (!views.isPrimary()) {
          counters.droppedFutureView++;
          return false;
        }
        // A member answers our primary in a newer view: it is stuck there (see the stale-view case
        // above). Not a proposal, so no stickiness: follow it up, and our backups follow us.
        viewChanges.startViewChange(p.view(), nowNs, out);
        return false;
      }
      case PREPARE, HEARTBEAT -> {
        if (!fromPrimaryOfItsView) {
          counters.droppedUnexpected++;
          return false;
        }
        joins.adoptView(p.view(), nowNs, out);
        return true;
      }
      default -> {
        counters.droppedFutureView++;
        return false;
      }
    }
  }
}
