package io.choir.server.core;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import java.util.ArrayList;
import java.util.List;

/**
 * Resender owns what this replica resends when a NACK asks (DESIGN.md "Loss, repair and flow"; issue 10,
 * item 6): each asker's byte budget and, on a cluster without a key, the credit its messages earned
 * ({@link ResendBudget}: resends at most resend_amplification_limit times what arrived in its name), and
 * the recent resends that let several askers of one op share a multicast ({@link ResendTracker}). An
 * answer holds at most max_retransmit_entries_per_nack entries and about max_retransmit_bytes_per_nack
 * bytes: from the in-memory window as PREPAREs, older ones as reads of the log by the caller.
 */
final class Resender {
  /**
   * What to resend for one NACK besides the log reads (already asked for with Effects.retransmit): entries by
   * unicast and by multicast (ascending, maybe with holes), and whether the asker wanted ops below the
   * log (it needs a state transfer).
   */
  record Answer(List<Entry> unicast, List<Entry> multicast, boolean belowLog) {}

  private final CoreConfig config;
  private final ResendBudget budgets;
  private final ResendTracker resends;

  Resender(CoreConfig config, Members members) {
    this.config = config;
    this.budgets = new ResendBudget(members.ids().size(), config.resendBytesPerPeerPerSec,
        config.resendAmplificationLimit,
        // Credit for two padded NACKs' answers: enough that asking is never slower than one round trip
        // per answer, and little enough that what a member earned before it went away buys a forger
        // in its name next to nothing.
        2L * config.resendAmplificationLimit * Math.min(ReplicaCore.NACK_PADDED_BYTES, config.maxDatagramBytes));
    this.resends = new ResendTracker(config.resendSuppressNs, config.multicastRetransmitWindowNs,
        4 * config.maxRetransmitEntriesPerNack);
  }

  /** A message of bytes (on the wire) arrived in the name of the replica at fromIndex: it earns credit. */
  void received(int fromIndex, long bytes) {
    budgets.received(fromIndex, bytes);
  }

  /** The replica at fromIndex acknowledged every op up to op in this view. */
  void acknowledged(int fromIndex, long op) {
    budgets.acknowledged(fromIndex, op);
  }

  /** A new view: what backups acknowledged in the last one says nothing. */
  void newView() {
    budgets.newView();
  }

  /** True on a cluster without a key: answers are limited by the credit the asker earned. */
  boolean limited() {
    return budgets.limited();
  }

  /** The members changed from oldIds to newIds (Members positions): each asker keeps its budget. */
  void membersChanged(List<Integer> oldIds, List<Integer> newIds) {
    int[] oldIndex = new int[newIds.size()];
    for (int i = 0; i < newIds.size(); i++) {
      oldIndex[i] = oldIds.indexOf(newIds.get(i));
    }
    budgets.remap(oldIndex);
  }

  /** Resend records kept (bounded). */
  int records() {
    return resends.size();
  }

  /**
   * A NACK, padded on a cluster without a key to {@link ReplicaCore#NACK_PADDED_BYTES} on the wire (at
   * most a datagram): the asked replica answers at most resend_amplification_limit times what it received.
   */
  Nack padded(Nack.Builder nack) {
    if (!budgets.limited()) {
      return nack.build();
    }
    int target = Math.min(ReplicaCore.NACK_PADDED_BYTES, config.maxDatagramBytes) - ReplicaCore.DATAGRAM_HEADER_BYTES;
    // Field 2's tag and length take at most 3 bytes for a pad below 16 KiB.
    int pad = target - nack.build().getSerializedSize() - 3;
    return pad <= 0 ? nack.build() : nack.setPadding(ByteString.copyFrom(new byte[pad])).build();
  }

  /**
   * What a padded NACK is answered with at least, when the answer is limited by the credit it earned
   * (a datagram's worth less, as the answer stops before an entry that does not fit): the view
   * change's fill asks for its next piece once that much has come.
   */
  long creditedAnswerBytes() {
    long earned = (long) config.resendAmplificationLimit * Math.min(ReplicaCore.NACK_PADDED_BYTES, config.maxDatagramBytes);
    return Math.max(1, Math.min(config.maxRetransmitBytesPerNack, earned - config.maxDatagramBytes));
  }

  /**
   * Answers replica from's NACK at nowNs with what the log holds (log reads of ops below its window go
   * with out.retransmit, with view and the commit number), or null when from's budget is spent. A primary may
   * multicast and skips what from has acknowledged; otherwise (serving the new primary's fetch of the
   * chosen log in a view change) everything goes by unicast.
   */
  Answer answer(int from, int fromIndex, Nack nack, long nowNs, boolean primary, long logFirstOp,
      ReplicaLog log, long view, Counters counters, Effects out) {
    long allowance = budgets.available(fromIndex, nowNs);
    if (allowance <= 0) {
      counters.resendsThrottled++; // the asker's bytes for now are spent: it asks again after its backoff
      return null;
    }
    int budget = config.maxRetransmitEntriesPerNack;
    long bytesBudget = Math.min(config.maxRetransmitBytesPerNack, allowance);
    long bytesAllowed = bytesBudget;
    // Ops this NACK may look at, skipped ones included: huge ranges cost bounded work.
    long examine = 2L * Math.max(1, budget);
    // A primary's backup has every op up to what it last acknowledged in this view (ResendBudget).
    long firstMissing = primary ? budgets.firstMissing(fromIndex) : 1;
    List<Entry> unicast = new ArrayList<>();
    List<Entry> multicast = new ArrayList<>();
    boolean belowLog = false;
    boolean mayMulticast = primary;
    // A primary hands out its whole log; in a view change, the chosen replica hands the new primary the
    // log its DO_VIEW_CHANGE described (its log does not change while it waits in that view change).
    long servable = log.lastOp();
    // Serving the new primary's fetch of our log in a view change, the new primary asks for the next
    // piece while the last one is still arriving: what went to it within a heartbeat interval is on
    // its way, and its view-change timer asks again for what was lost.
    long suppressNs = primary ? config.resendSuppressNs : Math.max(config.resendSuppressNs, config.heartbeatIntervalNs);
    // Without a key: datagram resends spend the credit the asker earned, never beyond (ResendBudget).
    boolean limited = budgets.limited();
    long creditLeft = budgets.credit(fromIndex);
    long creditBefore = creditLeft;
    scan:
    for (OpRange r : nack.getRangesList()) {
      long first = Math.max(1, r.getFirst());
      if (first < firstMissing) {
        counters.resendsAlreadyAcked += Math.min(r.getLast(), firstMissing - 1) - first + 1;
        first = firstMissing;
      }
      long last = Math.min(servable, r.getLast());
      for (long op = first; op <= last && budget > 0 && bytesBudget > 0 && examine-- > 0; op++) {
        if (op < logFirstOp) {
          belowLog = true;
          op = logFirstOp - 1;
          continue;
        }
        if (limited) {
          // Stop before what the credit does not cover (decided before the tracker records a resend).
          long cost = op <= log.windowBase() ? config.maxDatagramBytes + 1
              : log.entry(op).getSerializedSize() + ReplicaCore.PREPARE_OVERHEAD_BYTES;
          boolean byStream = op > log.windowBase() && cost > config.maxDatagramBytes;
          if (!byStream && cost > creditLeft) {
            counters.resendsOverCredit++;
            break scan;
          }
        }
        ResendTracker.Decision d = resends.decide(op, from, nowNs, suppressNs);
        if (d == ResendTracker.Decision.SKIP) {
          continue;
        }
        if (!mayMulticast) {
          d = ResendTracker.Decision.UNICAST;
        }
        budget--;
        if (op <= log.windowBase()) {
          // Older than the in-memory ring: the caller reads it from the log.
          long runEnd = op;
          while (runEnd + 1 <= Math.min(last, log.windowBase()) && budget > 0 && examine-- > 0
              && resends.decide(runEnd + 1, from, nowNs, suppressNs) != ResendTracker.Decision.SKIP) {
            runEnd++;
            budget--;
          }
          // The log read stops once it has sent its bytes, overshooting by at most one entry: with the
          // credit rule, a datagram's worth of the credit is kept for that overshoot.
          long logBytes = limited ? Math.min(bytesBudget, creditLeft - config.maxDatagramBytes) : bytesBudget;
          out.retransmit(new Effects.Retransmit(
              d == ResendTracker.Decision.MULTICAST ? Effects.MULTICAST : from, view, op, runEnd, log.commitOp(),
              logBytes));
          counters.retransmitsFromLog += runEnd - op + 1;
          op = runEnd;
          bytesBudget = 0; // the log read may spend all that is left (its sizes are unknown here)
          creditLeft = 0;
          continue;
        }
        Entry e = log.entry(op);
        bytesBudget -= e.getSerializedSize();
        // An entry that needs several datagrams goes by unicast (over the peer TCP connection): as
        // multicast fragments under loss it would hardly ever arrive whole.
        boolean big = e.getSerializedSize() + ReplicaCore.PREPARE_OVERHEAD_BYTES > config.maxDatagramBytes;
        if (!big) {
          creditLeft -= e.getSerializedSize() + ReplicaCore.PREPARE_OVERHEAD_BYTES;
        }
        (d == ResendTracker.Decision.MULTICAST && !big ? multicast : unicast).add(e);
      }
    }
    budgets.spend(fromIndex, bytesAllowed - bytesBudget);
    budgets.spendCredit(fromIndex, creditBefore - creditLeft);
    return new Answer(unicast, multicast, belowLog);
  }
}
