package io.choir.server.core;

import io.choir.proto.AddLearner;
import io.choir.proto.Entry;
import io.choir.proto.EpochChange;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MemberChange;
import io.choir.proto.MemberRole;
import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.Membership.Member;
import io.choir.server.core.ReplicaCore.Mode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * MembershipPath owns membership changes while serving (DESIGN.md "Membership"; VR Revisited section
 * 7, epochs): the primary's checks of a change request and its configuration entry (AddLearner, or an
 * EpochChange for a promotion, removal or replacement), the switch when a committed configuration entry
 * is applied (a learner joins the peers; an EpochChange moves every replica that applies it, in log
 * order, to the new epoch's first view in normal status with the same log, no view change needed), and
 * the rules for messages of other epochs: an older epoch's are dropped, but the old primary tells a
 * laggard of its epoch that the epoch's last op committed; a later epoch's make this replica catch up
 * (by the old primary's commit, or else by a state transfer from a replica already there). A primary
 * quiet for want of a quorum tells the members it has not heard that its epoch exists.
 */
final class MembershipPath {
  private final CoreConfig config;
  private final int self;
  private final ViewState views;
  private final Members members;
  private final ReplicaLog log;
  private final Completeness completeness;
  private final QuorumTracker quorum;
  private final Resender resender;
  private final ViewChangePath viewChanges;
  private final JoinViewPath joins;
  private final WritePath writes;
  private final BackupPath backups;
  private final Redirect redirect;
  private final CatchUp catchUp;
  private final Counters counters;
  /** When this replica first heard of a later epoch than its own (empty: it has not, since its switch). */
  private OptionalLong laterEpochSinceNs = OptionalLong.empty();
  private long lastLaggardAskNs = Long.MIN_VALUE / 2;
  /** The last replica heard in a later epoch: where a state transfer comes from. */
  private int laterEpochSource;
  /** The replies of the last applied changes of sessions, for their retries. */
  private final SavedChanges saved = new SavedChanges();
  /** When this replica last told each laggard of the old epoch's end (at most once per heartbeat interval). */
  private final Map<Integer, Long> toldLaggardNs = new HashMap<>();
  /** The notices to former members and, from a quiet primary, to the members it has not heard. */
  private final EpochNotices notices;

  MembershipPath(CoreConfig config, ViewState views, ReplicaLog log, Completeness completeness,
      QuorumTracker quorum, Resender resender, ViewChangePath viewChanges, JoinViewPath joins, WritePath writes,
      BackupPath backups, Redirect redirect, CatchUp catchUp, Counters counters) {
    this.config = config;
    this.self = config.replicaId();
    this.views = views;
    this.members = views.members();
    this.log = log;
    this.completeness = completeness;
    this.quorum = quorum;
    this.resender = resender;
    this.viewChanges = viewChanges;
    this.joins = joins;
    this.writes = writes;
    this.backups = backups;
    this.redirect = redirect;
    this.catchUp = catchUp;
    this.counters = counters;
    this.notices = new EpochNotices(config, views, quorum, counters);
    saved.remember(members.current(), views.view(), info()); // the durable row's recent changes
  }

  // ---------------------------------------------------------------- change requests (the primary)

  void onMemberChange(Event.ClientRequest event, long nowNs, Effects out) {
    Request request = event.request();
    if (!views.isPrimary()) {
      out.reply(event.connectionId(), redirect.notPrimary(request, nowNs));
      return;
    }
    // A retry first (as for any write): the attempt in flight answers it, or the saved reply of one
    // applied; checked against the membership it already changed, it would be refused, "not executed".
    if (writes.joinInFlight(event)) {
      return;
    }
    Response reply = saved.get(request.getClientId(), request.getRequestId());
    if (reply != null) {
      counters.duplicates++;
      out.reply(event.connectionId(), reply);
      return;
    }
    MemberChange c = request.getMemberChange();
    Membership now = members.current();
    if (c.getExpectedEpoch() != 0 && c.getExpectedEpoch() != now.epoch()) {
      refuse(event, Status.CAS_FAILED, "the epoch is " + now.epoch() + ", not the expected " + c.getExpectedEpoch(), out);
      return;
    }
    String refusal = MemberChanges.refusal(c, now, log.pendingConfigOp());
    Entry.Builder command = refusal == null ? command(c, now) : null;
    if (refusal == null) {
      refusal = caughtUp(c, command, nowNs);
    }
    if (refusal != null) {
      refuse(event, Status.INVALID, refusal, out);
      return;
    }
    counters.memberChanges++;
    writes.admitConfiguration(event, command, nowNs, out);
  }

  private void refuse(Event.ClientRequest event, Status status, String why, Effects out) {
    counters.memberChangesRefused++;
    out.reply(event.connectionId(), RequestValidator.refuse(event.request(), status, why));
  }

  /** The configuration entry's command for change c (checked) of membership now. */
  private Entry.Builder command(MemberChange c, Membership now) {
    List<Member> voters = new ArrayList<>(now.voters());
    List<Member> learners = new ArrayList<>(now.learners());
    switch (c.getKind()) {
      case ADD_LEARNER -> {
        Member added = new Member(c.getId(), c.getClientAddress(), c.getPeerAddress());
        learners.add(added);
        return Entry.newBuilder().setAddLearner(AddLearner.newBuilder().setLearner(Membership.toProto(added))
            .setEpoch(now.epoch()).addAllVoters(Membership.toProto(voters)).addAllLearners(Membership.toProto(learners))
            .setStartView(now.startView()));
      }
      case PROMOTE -> {
        Member learner = now.member(c.getId()).orElseThrow();
        learners.remove(learner);
        voters.add(learner);
      }
      case REMOVE -> {
        voters.removeIf(m -> m.id() == c.getId());
        learners.removeIf(m -> m.id() == c.getId());
      }
      case REPLACE -> {
        Member learner = now.member(c.getId()).orElseThrow();
        learners.remove(learner);
        voters.replaceAll(m -> m.id() == c.getReplacedId() ? learner : m);
      }
      default -> throw new IllegalStateException("unchecked member change " + c.getKind());
    }
    long epoch = now.epoch() + 1;
    return Entry.newBuilder().setEpochChange(EpochChange.newBuilder().setEpoch(epoch)
        .addAllVoters(Membership.toProto(voters)).addAllLearners(Membership.toProto(learners))
        .setStartView(Membership.nextStartView(epoch, voters, self)));
  }

  /**
   * Null when the new voters of command hold a majority caught up (acknowledged up to near the commit
   * number) and alive (heard within the election timeout), a promoted learner among them, else why not.
   */
  private String caughtUp(MemberChange c, Entry.Builder command, long nowNs) {
    if (!command.hasEpochChange()) {
      return null; // a learner counts for nothing until promoted
    }
    List<Integer> next = command.getEpochChange().getVotersList().stream().map(m -> m.getId()).toList();
    long commit = log.commitOp();
    // Near the commit number: within a batch, and within a sixteenth of the log for a short one.
    long near = commit - Math.min(Math.max(1, config.maxBatchEntries), commit / 16);
    int ready = 0;
    List<String> behind = new ArrayList<>();
    for (int id : next) {
      boolean alive = quorum.heardRecently(id, nowNs);
      long acked = id == self ? log.persistedOp() : quorum.ackedBy(id);
      if (alive && acked >= near) {
        ready++;
      } else {
        behind.add("replica " + id + (alive ? " has op " + acked + " of " + commit : " has not been heard from lately"));
      }
    }
    boolean promoted = c.getKind() == MemberChange.Kind.PROMOTE || c.getKind() == MemberChange.Kind.REPLACE;
    if (promoted && !behind.isEmpty() && behind.stream().anyMatch(b -> b.startsWith("replica " + c.getId() + " "))) {
      return "learner " + c.getId() + " has not caught up yet: " + String.join(", ", behind) + "; retry once it has";
    }
    int majority = next.size() / 2 + 1;
    if (ready < majority) {
      return "would leave no majority: " + String.join(", ", behind) + " (" + ready + " of " + next.size()
          + " new voters caught up and alive, needs " + majority + ")";
    }
    return null;
  }

  /** ListMembers: any replica answers from its own membership. */
  void onListMembers(Event.ClientRequest event, Effects out) {
    out.reply(event.connectionId(), Response.newBuilder().setRequestId(event.request().getRequestId())
        .setStatus(Status.OK).setView(views.view()).setOp(log.appliedOp()).setMembership(info()).build());
  }

  /** This replica's membership, with what its primary knows of each member's progress. */
  MembershipInfo info() {
    Membership m = members.current();
    MembershipInfo.Builder b = MembershipInfo.newBuilder().setEpoch(m.epoch()).setStartView(m.startView());
    for (Member v : m.voters()) {
      b.addMembers(status(v, MemberRole.VOTER));
    }
    for (Member l : m.learners()) {
      b.addMembers(status(l, MemberRole.LEARNER));
    }
    long pending = log.pendingConfigOp();
    if (pending != 0) {
      b.setChangeInProgress(true).setChange("configuration entry at op " + pending + " not applied yet");
    } else if (!m.learners().isEmpty()) {
      b.setChangeInProgress(true).setChange("learner " + m.learners().get(0).id() + " not promoted yet");
    }
    return b.build();
  }

  private MemberStatus status(Member m, MemberRole role) {
    long acked = m.id() == self ? log.persistedOp() : views.isPrimary() ? quorum.ackedBy(m.id()) : 0;
    return MemberStatus.newBuilder().setId(m.id()).setClientAddress(m.clientAddress()).setPeerAddress(m.peerAddress())
        .setRole(role).setAckedOp(acked).build();
  }

  /** This replica's own role: VOTER, LEARNER, or RETIRED when it is no member of its epoch. */
  MemberRole selfRole() {
    return switch (members.selfRole()) {
      case VOTER -> MemberRole.VOTER;
      case LEARNER -> MemberRole.LEARNER;
      case NONE -> MemberRole.RETIRED;
    };
  }

  // ---------------------------------------------------------------- the switch (every replica)

  /** Configuration entry e was applied (in log order): the membership follows it, if it fits. */
  void applied(Entry e, long nowNs, Effects out) {
    Membership now = members.current();
    Membership next = now.after(e).orElse(null);
    if (next == null) {
      counters.configurationEntriesRefused++; // the state machine answered INVALID too
      saved.save(e, Response.newBuilder().setRequestId(e.getRequestId()).setOp(e.getOp()).setStatus(Status.INVALID)
          .setError("configuration entry at op " + e.getOp() + " does not fit epoch " + now.epoch()).build());
      return;
    }
    if (next.epoch() == now.epoch()) {
      List<Integer> oldIds = members.ids();
      members.switchTo(next);
      peersFollow(oldIds, nowNs, out);
    } else {
      switchEpoch(next, e.getOp(), nowNs, out);
    }
    saved.save(e, Response.newBuilder().setRequestId(e.getRequestId()).setOp(e.getOp()).setVersion(e.getOp())
        .setStatus(Status.OK).setView(views.view()).setMembership(info()).build());
  }

  /**
   * Switches to epoch next after its EpochChange at op n was applied: n is committed, and no op follows
   * it in the old epoch, so this replica's log through n is every member's that switches.
   */
  private void switchEpoch(Membership next, long n, long nowNs, Effects out) {
    boolean wasPrimary = views.isPrimary();
    long oldView = views.view();
    long startView = next.startView();
    boolean staysPrimary = wasPrimary && next.primaryOf(startView) == self;
    List<Integer> oldIds = members.ids();
    members.switchEpoch(next, oldView, n);
    toldLaggardNs.clear();
    if (!staysPrimary) {
      writes.stepDown(startView, wasPrimary, nowNs, out);
    }
    if (wasPrimary) {
      // The epoch's end, once more in its own view: a backup that missed the commit switches now.
      out.send(Effects.MULTICAST, oldView, MessageType.HEARTBEAT, endOfEpoch(n));
    }
    if (log.lastOp() > n) {
      backups.truncateAfter(n, out); // nothing of the old epoch follows n (never there, or abandoned)
    }
    views.enterEpoch(startView);
    // Its log holds every op of the old epoch, all committed (it applied the last): complete in the new
    // epoch's first view, so a replica that had to catch up has (storage clears its marker).
    views.logComplete();
    out.caughtUp();
    laterEpochSinceNs = OptionalLong.empty();
    peersFollow(oldIds, nowNs, out);
    counters.epochSwitches++;
    if (views.isPrimary()) {
      viewChanges.startEpochAsPrimary(wasPrimary, nowNs, out);
      writes.resumeAfterSwitch(nowNs, out);
    } else {
      joins.startEpochAsBackup(nowNs, out);
    }
  }

  private void peersFollow(List<Integer> oldIds, long nowNs, Effects out) {
    notices.membersChanged();
    resender.membersChanged(oldIds, members.ids());
    quorum.membersChanged(nowNs);
    out.peersChanged(members.current());
  }

  /** The old epoch's last word in its view: everything through n, committed. */
  private Heartbeat endOfEpoch(long n) {
    return Heartbeat.newBuilder().setLastOp(n).setCommit(n).setLowWatermark(Math.min(n, log.appliedOp())).build();
  }

  /** A state transfer installed a state whose membership row is installed (empty: none sent). */
  void installed(Membership installed, long nowNs, Effects out) {
    Membership now = members.current();
    if (installed == null || installed.epoch() < now.epoch()) {
      return;
    }
    saved.remember(installed, views.view(), info());
    if (installed.equals(now)) {
      members.switchTo(installed); // the same configuration; its recent changes are the row's
      return;
    }
    if (installed.epoch() == now.epoch()) {
      List<Integer> oldIds = members.ids();
      members.switchTo(installed);
      peersFollow(oldIds, nowNs, out);
      return;
    }
    List<Integer> oldIds = members.ids();
    boolean recovering = views.mode() == Mode.RECOVERING;
    writes.stepDown(installed.startView(), nowNs, out);
    members.switchEpoch(installed, views.view(), log.appliedOp());
    views.enterEpoch(Math.max(views.view(), installed.startView()));
    if (recovering) {
      // It may have lost what it acknowledged in that epoch too: it rejoins as recovery would, a backup
      // that neither votes nor acknowledges until its log is complete (VR 4.3 step 3).
      views.rejoinAfterRecovery(views.view());
    }
    laterEpochSinceNs = OptionalLong.empty();
    peersFollow(oldIds, nowNs, out);
    counters.epochSwitches++;
    joins.startEpochAsBackup(nowNs, out);
    completeness.unknown(); // what the epoch's primary has beyond the snapshot is learned from it
  }

  // ---------------------------------------------------------------- messages of other epochs

  /**
   * A message of an older epoch: dropped (counted), but the primary of the old epoch's last view tells
   * the sender, a member of that epoch still in it, that the epoch's last op committed, and when the
   * sender is a member of this epoch, that this epoch exists.
   */
  void onOlderEpoch(Event.Peer p, long nowNs, Effects out) {
    counters.droppedOldEpoch++;
    Membership previous = members.previous();
    long lastView = members.previousLastView();
    if (previous != null && previous.contains(p.from()) && Membership.epochOfView(p.view()) == previous.epoch()
        && p.view() <= lastView && previous.primaryOf(lastView) == self
        && nowNs - toldLaggardNs.getOrDefault(p.from(), Long.MIN_VALUE / 2) >= config.heartbeatIntervalNs) {
      toldLaggardNs.put(p.from(), nowNs); // the laggard answers the heartbeat: no ping-pong
      out.send(p.from(), lastView, MessageType.HEARTBEAT, endOfEpoch(members.previousEndOp()));
      if (members.current().contains(p.from())) {
        // A member whose log lacks the end may hear nothing of this epoch (a primary short of its quorum
        // goes quiet): one message of this epoch starts its laggard timer, so a state transfer.
        out.send(p.from(), views.view(), MessageType.HEARTBEAT_OK, HeartbeatOk.getDefaultInstance());
      }
    }
  }

  /**
   * A message of an epoch before the current one from a replica removed from the membership since:
   * dropped (counted), and the sender told that a later epoch exists (see {@link EpochNotices}).
   */
  void onFormerMember(Event.Peer p, long nowNs, Effects out) {
    notices.onFormerMember(p, nowNs, out);
  }

  /**
   * A message of a later epoch: this replica is left behind. It asks the sender (its old primary
   * answers with the epoch's end, see onOlderEpoch), and when that does not bring it over within two
   * election timeouts, it fetches a state transfer from the sender, a replica already in the later epoch.
   */
  void onLaterEpoch(Event.Peer p, long nowNs, Effects out) {
    counters.heardLaterEpoch++;
    if (laterEpochSinceNs.isEmpty()) {
      laterEpochSinceNs = OptionalLong.of(nowNs);
    }
    laterEpochSource = p.from();
    if (views.mode() == Mode.RECOVERING) {
      // Recovering (VR 4.3) in an epoch that is over: no answer of that epoch's voters can finish the
      // recovery, the old primary's commit is not heard while recovering, and the log may lack what
      // this replica acknowledged. A state transfer brings it over, at once.
      fetchFromLaterEpoch(nowNs, out);
      return;
    }
    if (nowNs - lastLaggardAskNs >= config.heartbeatIntervalNs) {
      lastLaggardAskNs = nowNs;
      out.send(p.from(), views.view(), MessageType.HEARTBEAT_OK, HeartbeatOk.getDefaultInstance());
    }
    // Only the old primary of this replica's own epoch can bring it over by a commit; when the sender is
    // more than one epoch ahead, or that does not happen within two election timeouts, a state transfer.
    boolean farBehind = Membership.epochOfView(p.view()) > members.epoch() + 1;
    if (farBehind) {
      fetchFromLaterEpoch(nowNs, out);
    }
    tick(nowNs, out);
  }

  /**
   * The laggard's timer (two election timeouts after it first heard of a later epoch, a state transfer),
   * and a quiet primary's notices to the members it has not heard.
   */
  void tick(long nowNs, Effects out) {
    notices.tick(nowNs, out);
    if (laterEpochSinceNs.isEmpty()) {
      return;
    }
    long dueNs = laterEpochSinceNs.getAsLong() + 2 * config.quorumTimeoutNs;
    if (nowNs >= dueNs) {
      fetchFromLaterEpoch(nowNs, out);
    } else {
      out.tickBy(dueNs);
    }
  }

  private void fetchFromLaterEpoch(long nowNs, Effects out) {
    if (catchUp.start(nowNs)) {
      counters.stateTransfers++;
      out.fetchStateFrom(laterEpochSource);
    }
  }
}
