package io.choir.server.core;

import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import io.choir.server.core.ReplicaCore.Mode;
import java.util.List;

/**
 * ViewChangePath owns the view change (VR Revisited 4.2), once a pre-vote passed (PreVotePath) or a
 * replica learned of a newer view: it moves to view v+1 and multicasts START_VIEW_CHANGE. On f
 * START_VIEW_CHANGEs a replica sends DO_VIEW_CHANGE (its last normal view, last op and commit, and no
 * entries) to the new primary, which on f+1 (its own counted) chooses the log with the largest (last
 * normal view, op), fetches that replica's entries above its own commit by NACK in bounded pieces
 * (LogFill), placing each in order (an entry equal to its own confirms it, a different one replaces it
 * and everything after it), and multicasts START_VIEW (the last op and commit, no entries). Every
 * replica persists its view before it says anything in it. A replica that adopts a newer view keeps its
 * entries above its commit number as unverified (it must not forget what it acknowledged) and repairs
 * from the new primary by NACK (JoinViewPath, BackupPath): each unverified entry is confirmed by an
 * equal one or dropped with everything after it. A primary leaving its view answers its waiting
 * clients first (WritePath.stepDown).
 */
final class ViewChangePath {
  private final CoreConfig config;
  private final int self;
  private final ViewState views;
  private final ReplicaLog log;
  private final Completeness completeness;
  private final LogRetention retention;
  private final ViewChange viewChange;
  private final LogFill fill;
  private final PreVote preVote;
  private final Intake intake;
  private final QuorumTracker quorum;
  private final ReadIndex readIndex;
  private final Resender resender;
  private final GapRepair repair;
  private final ElectionTimeout timeouts;
  private final WritePath writes;
  private final BackupPath backups;
  private final PreVotePath preVotes;
  private final Counters counters;

  ViewChangePath(CoreConfig config, ViewState views, ReplicaLog log, Completeness completeness,
      LogRetention retention, ViewChange viewChange, LogFill fill, PreVote preVote, Intake intake,
      QuorumTracker quorum, ReadIndex readIndex, Resender resender, GapRepair repair,
      ElectionTimeout timeouts, WritePath writes, BackupPath backups, PreVotePath preVotes,
      Counters counters) {
    this.config = config;
    this.self = config.replicaId();
    this.views = views;
    this.log = log;
    this.completeness = completeness;
    this.retention = retention;
    this.viewChange = viewChange;
    this.fill = fill;
    this.preVote = preVote;
    this.intake = intake;
    this.quorum = quorum;
    this.readIndex = readIndex;
    this.resender = resender;
    this.repair = repair;
    this.timeouts = timeouts;
    this.writes = writes;
    this.backups = backups;
    this.preVotes = preVotes;
    this.counters = counters;
  }

  /** Moves to view newView in VIEW_CHANGE mode and tells everyone (persisting the view first). */
  void startViewChange(long newView, long nowNs, Effects out) {
    if (newView <= views.view() && views.mode() == Mode.VIEW_CHANGE) {
      return;
    }
    if (!views.members().selfVotes() || Membership.epochOfView(newView) != views.members().epoch()) {
      return; // a learner or a retired replica follows views, it never starts one; views stay in their epoch
    }
    preVote.clear();
    writes.stepDown(newView, nowNs, out);
    // A replica that must catch up follows the cluster into the new view but takes no part in it.
    views.enterViewChange(newView);
    resender.newView();
    counters.viewChangesStarted++;
    fill.stop();
    viewChange.begin(nowNs, timeouts.draw());
    views.persistView(out);
    if (views.restartLimbo()) {
      return;
    }
    out.send(Effects.MULTICAST, views.view(), MessageType.START_VIEW_CHANGE,
        StartViewChange.getDefaultInstance());
    if (views.leadsView()) {
      viewChange.doViewChange(self, ownDoViewChange());
    }
    maybeSendDoViewChange(nowNs, out);
  }

  /**
   * What this replica tells the new primary: its last normal view, last op and commit, and no entries
   * (issue 9, 2e): the new primary fetches the chosen log's entries in bounded, repairable pieces, so
   * a DO_VIEW_CHANGE is one small datagram however full the window is.
   */
  private DoViewChange ownDoViewChange() {
    return DoViewChange.newBuilder().setLastNormalView(views.lastNormalView()).setLastOp(log.lastOp())
        .setCommit(log.commitOp()).setLogFirstOp(retention.firstOp()).build();
  }

  void onStartViewChange(int from, long nowNs, Effects out) {
    if (views.mode() == Mode.NORMAL) {
      if (views.isPrimary()) {
        // Someone is behind: our START_VIEW brings it into this view.
        out.send(from, views.view(), MessageType.START_VIEW, startView());
      }
      return;
    }
    if (views.mode() != Mode.VIEW_CHANGE || views.restartLimbo()) {
      return;
    }
    if (from == views.primary()) {
      // The new primary is alive and forming this view (it may be fetching a large log): wait for it.
      viewChange.progressed(nowNs);
    }
    viewChange.startViewChangeFrom(from);
    maybeSendDoViewChange(nowNs, out);
  }

  private void maybeSendDoViewChange(long nowNs, Effects out) {
    if (!viewChange.readyForDoViewChange(views.members().f())) {
      return;
    }
    int newPrimary = views.primary();
    if (newPrimary == self) {
      viewChange.doViewChange(self, ownDoViewChange());
      maybeFinishViewChange(nowNs, out);
    } else {
      out.send(newPrimary, views.view(), MessageType.DO_VIEW_CHANGE, ownDoViewChange());
    }
  }

  void onDoViewChange(int from, DoViewChange dvc, long nowNs, Effects out) {
    if (!views.leadsView()) {
      counters.droppedUnexpected++;
      return;
    }
    if (views.mode() == Mode.NORMAL) {
      out.send(from, views.view(), MessageType.START_VIEW, startView());
      return;
    }
    if (views.mode() != Mode.VIEW_CHANGE || views.restartLimbo()) {
      return;
    }
    if (dvc.getCommit() > dvc.getLastOp()) {
      counters.droppedUnexpected++; // malformed: a replica cannot know commits beyond its log
      return;
    }
    viewChange.doViewChange(from, dvc);
    viewChange.startViewChangeFrom(from); // a DO_VIEW_CHANGE implies its sender's START_VIEW_CHANGE
    maybeSendDoViewChange(nowNs, out);
    maybeFinishViewChange(nowNs, out);
  }

  /**
   * With f+1 DO_VIEW_CHANGEs (its own counted), the new primary takes the log of largest (last normal
   * view, op) (VR 4.2 step 3). Entries up to its own commit number are committed and the same
   * everywhere; above, the chosen log wins. When the chosen log is another replica's, the new primary
   * fetches its entries above its own commit from it by NACK, in pieces bounded by the resend budget
   * (large ones travel over the peer TCP connection), placing each in order as it arrives.
   */
  private void maybeFinishViewChange(long nowNs, Effects out) {
    ViewChange.Choice choice = views.mode() == Mode.VIEW_CHANGE ? viewChange.choose(self, views.members().quorum()) : null;
    if (choice == null) {
      return;
    }
    int best = choice.best();
    DoViewChange bestDvc = choice.log();
    long maxCommit = choice.maxCommit();
    if (bestDvc.getLastOp() < maxCommit) {
      // Impossible unless a DO_VIEW_CHANGE lies: refuse to form this view (it times out, and the next
      // view change collects fresh ones) rather than lose a committed op or stop the replica.
      counters.viewChangesRefused++;
      viewChange.onlyOwn(self, ownDoViewChange());
      return;
    }
    if (best != self && bestDvc.getLogFirstOp() > log.commitOp() + 1) {
      // The chosen log no longer holds the ops between our commit and its start (they are only in its
      // applied state): we cannot rebuild it here. Give this view up at once: stop telling the others
      // to wait for us, and ask for the next view, whose primary may hold the log itself.
      counters.viewChangesUnfetchable++;
      viewChange.giveUp(nowNs);
      preVotes.startPreVote(nowNs, out);
      return;
    }
    viewChange.chose(choice);
    if (best == self) {
      finishViewChange(nowNs, out);
      return;
    }
    // Fetch the chosen log's entries (our commit, its last op] from the chosen replica. Ours above
    // commit become unverified: each is confirmed by the chosen one at its op, or dropped with all
    // after it where they differ (by log matching those are not committed).
    fill.start(best, bestDvc.getLastOp());
    log.unverifyAboveCommit();
    requestFill(nowNs, out);
  }

  /** Asks the chosen replica for the rest of its log, or finishes when it is all placed. */
  private void requestFill(long nowNs, Effects out) {
    if (fill.complete(log.verifiedOp())) {
      finishViewChange(nowNs, out);
      return;
    }
    out.send(fill.from(), views.view(), MessageType.NACK,
        resender.padded(fill.request(log.verifiedOp(), nowNs)));
    counters.nacksSent++;
  }

  /**
   * Entries of the chosen log, from the chosen replica: placed in op order as they come (entries beyond
   * a gap wait in a bounded buffer). Committed ones advance the commit number at once. Progress keeps
   * the view change from timing out and asks for the next piece; a lost piece is asked for again by
   * the view-change timer.
   */
  void onFillEntries(Prepare p, long nowNs, Effects out) {
    List<Entry> entries = p.getEntriesList();
    for (int i = 0; i < entries.size(); i++) {
      if (entries.get(i).getOp() != p.getFirstOp() + i) {
        counters.droppedUnexpected++;
        return; // malformed: entries of a PREPARE are consecutive
      }
    }
    long before = log.verifiedOp();
    for (Entry e : entries) {
      if (fill.offer(e, log.verifiedOp(), counters)) {
        backups.place(e, nowNs, out);
        for (Entry next = fill.takeNext(log.verifiedOp()); next != null; next = fill.takeNext(log.verifiedOp())) {
          backups.place(next, nowNs, out);
        }
      }
    }
    if (log.verifiedOp() == before) {
      return;
    }
    viewChange.progressed(nowNs); // progress: this view change is alive
    writes.advanceCommit(Math.min(viewChange.chosenCommit(), log.verifiedOp()), nowNs, out);
    if (fill.complete(log.verifiedOp())) {
      finishViewChange(nowNs, out);
    } else if (fill.pieceIn(resender.limited(), resender.creditedAnswerBytes())) {
      // The piece asked for is in: the chosen replica answers a NACK with entries until its byte or
      // entry budget (the same settings) is spent, or, on a cluster without a key, the credit the NACK
      // earned for entries that go by datagram, so this much means the answer is complete. Ask for
      // the next piece; asking earlier would have it resend entries still on their way.
      requestFill(nowNs, out);
    }
  }

  /** Installs the chosen log, becomes primary of the view and multicasts START_VIEW (VR 4.2 step 4). */
  private void finishViewChange(long nowNs, Effects out) {
    DoViewChange c = viewChange.chosen();
    boolean own = c == viewChange.own(self);
    if (!own) {
      // The fill placed the chosen log up to its last op (an entry equal to ours stayed, the first
      // different one replaced ours and all after it); whatever of ours lies beyond it goes.
      if (log.lastOp() > log.verifiedOp()) {
        backups.truncateAfter(log.verifiedOp(), out);
      }
      if (log.lastOp() != c.getLastOp()) {
        // Our commit passed the chosen log's end after we chose it (a state transfer installed
        // meanwhile): forming the view could lose what we applied. Refuse it, as a lying
        // DO_VIEW_CHANGE is refused (it times out and the next one collects fresh ones), rather than
        // stop the replica.
        counters.viewChangesRefused++;
        viewChange.clearChosen();
        fill.stop();
        viewChange.onlyOwn(self, ownDoViewChange());
        return;
      }
    }
    views.normalAsNewPrimary();
    preVote.clear();
    completeness.complete();
    log.verifyAll();
    readIndex.newFloor(log.lastOp());
    fill.stop();
    views.countViewChange(nowNs);
    quorum.startView(log.persistedOp(), nowNs);
    resender.newView();
    repair.becamePrimary(log.lastOp());
    // Entries above commit are re-prepared in this view: they commit once f backups acknowledge them.
    intake.startView();
    for (long op = Math.max(log.windowBase() + 1, log.applyRequestedOp() + 1); op <= log.lastOp(); op++) {
      intake.relogged(log.entry(op), op > log.commitOp());
    }
    views.persistView(out);
    views.persistLastNormalView(out);
    writes.advanceCommit(Math.min(viewChange.chosenCommit(), log.lastOp()), nowNs, out);
    out.send(Effects.MULTICAST, views.view(), MessageType.START_VIEW, startView());
    writes.noteMulticast(nowNs);
    viewChange.clearChosen();
  }

  /**
   * The switch to a new epoch left this replica the primary of its first view, with the log every
   * member that switches holds (DESIGN.md "Membership"): normal at once, no view change; START_VIEW
   * tells the members that have switched (or will) where the log ends. wasPrimary: it was the primary of
   * the old epoch's last view, so what its quorum tracker knows of the members that stay is carried over.
   */
  void startEpochAsPrimary(boolean wasPrimary, long nowNs, Effects out) {
    preVote.clear();
    completeness.complete();
    log.verifyAll();
    readIndex.newFloor(log.lastOp());
    fill.stop();
    viewChange.forget();
    views.countViewChange(nowNs);
    if (wasPrimary) {
      quorum.startEpoch(log.persistedOp(), log.lastOp()); // its acks of the old epoch's last view hold
    } else {
      quorum.startView(log.persistedOp(), nowNs); // a backup's tracker is of some older view
    }
    resender.newView();
    repair.becamePrimary(log.lastOp());
    intake.startView();
    views.persistView(out);
    views.persistLastNormalView(out);
    out.send(Effects.MULTICAST, views.view(), MessageType.START_VIEW, startView());
    writes.noteMulticast(nowNs);
  }

  /**
   * START_VIEW carries the new log's last op and commit and no entries (issue 9, 2e): backups learn the
   * gap from it and repair it by NACK like any other loss, in bounded pieces.
   */
  private StartView startView() {
    return StartView.newBuilder().setLastOp(log.lastOp()).setCommit(log.commitOp()).build();
  }

  /** The timer in VIEW_CHANGE: a stalled view change asks for the next; START_VIEW_CHANGE, DO_VIEW_CHANGE and the fill are resent. */
  void tick(long nowNs, Effects out) {
    if (viewChange.stalled(nowNs)) {
      // This view change is stuck: ask to try the next primary. The others in the view change grant
      // at once; a replica that alone is stuck (cut off) asks in vain and keeps its view.
      preVotes.startPreVote(nowNs, out);
    }
    boolean alive = !viewChange.stalled(nowNs);
    if (!views.restartLimbo() && viewChange.resendDue(nowNs, config.heartbeatIntervalNs)) {
      if (alive || !views.leadsView()) {
        // The new primary's START_VIEW_CHANGE keeps the others waiting for it; once its own view
        // change has stalled it falls silent, so their timers run out and they grant the next view.
        out.send(Effects.MULTICAST, views.view(), MessageType.START_VIEW_CHANGE,
            StartViewChange.getDefaultInstance());
      }
      if (viewChange.doViewChangeSent() && !views.leadsView()) {
        out.send(views.primary(), views.view(), MessageType.DO_VIEW_CHANGE,
            ownDoViewChange());
      }
      if (fill.requestDue(nowNs, config.heartbeatIntervalNs)) {
        requestFill(nowNs, out); // the last piece, or part of it, was lost
      }
    }
    long resendAt = views.restartLimbo() ? Long.MAX_VALUE : viewChange.lastResendNs() + config.heartbeatIntervalNs;
    long timeoutAt = viewChange.timeoutAtNs();
    if (nowNs < timeoutAt) {
      out.tickBy(timeoutAt); // past it, the pre-vote schedules itself
    }
    out.tickBy(resendAt);
  }
}
