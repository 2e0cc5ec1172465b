package io.choir.server.core;

import io.choir.proto.Entry;
import java.util.ArrayDeque;

/**
 * ReplicaLog owns this replica's log in memory and its numbers (VR Revisited 4.1 and 4.2): the entries
 * still needed (unapplied ones plus a bounded ring of applied ones for resends, in a {@link LogWindow}),
 * the last op, the verified op (ops up to it are known to be in the current view's log), the persisted,
 * commit, apply-requested and applied numbers with the applied state's checksum, and the log epoch that
 * tells a log write issued before a truncation from one after. It places entries (appends, confirms an
 * equal one, or replaces a different one and everything after it) and truncates; it keeps
 * applied <= apply-requested <= commit <= verified <= last, and apply-requested <= persisted <= last.
 * When an op becomes committed, or its entry is needed by whom, is for the other parts to decide.
 */
final class ReplicaLog {
  /** How {@link #place} put an entry in the log. */
  enum Placed {
    /** The log held the same entry at its op: now verified. */
    CONFIRMED,
    /** Appended after the last op. */
    APPENDED,
    /** The log held a different entry at its op: that one and all after it were dropped first. */
    REPLACED
  }

  static final int MAX_TRUNCATIONS_REMEMBERED = 64;

  private final int ringEntries;
  private final long ringMaxBytes;
  /** Entries window.base()+1 .. lastOp: unapplied ones plus a ring of applied ones for resending. */
  private LogWindow window;
  /** Bytes of the applied entries the window keeps for resending (at most retransmitRingBytes). */
  private long ringBytes;
  private long lastOp;
  /**
   * Ops up to this one are known to be in the current view's log. Above it (up to lastOp) sit entries
   * of an older view that this replica had when it adopted the view: they are kept (they may be
   * committed, and a replica must not forget what it acknowledged) until the new primary's entry for the
   * same op confirms or replaces them (VR 4.2's state transfer, entry by entry).
   */
  private long verifiedOp;
  private long persistedOp;
  private long commitOp;
  private long applyRequestedOp;
  private long appliedOp;
  private long checksum;
  private long epoch;
  /** The op of the log's last configuration entry (AddLearner or EpochChange) held in memory; 0: none. */
  private long lastConfigOp;
  /** The op of the log's last EpochChange entry held in memory; 0: none. */
  private long lastEpochChangeOp;
  /** {epoch, op}: the log was truncated after op when it left epoch (oldest first, bounded). */
  private final ArrayDeque<long[]> truncations = new ArrayDeque<>();

  /**
   * The log a replica restarted with: everything in it survived the restart, so it is durable and (until
   * told otherwise) verified; committed are the applied ops, or, on a lone replica (its own majority),
   * the whole durable log.
   */
  ReplicaLog(RecoveredState recovered, boolean alone, int ringEntries, long ringMaxBytes) {
    this.ringEntries = ringEntries;
    this.ringMaxBytes = ringMaxBytes;
    this.appliedOp = recovered.appliedOp();
    this.applyRequestedOp = recovered.appliedOp();
    this.checksum = recovered.checksum();
    this.window = new LogWindow(appliedOp);
    for (Entry e : recovered.unappliedLog()) {
      window.append(e);
      noteConfiguration(e);
    }
    this.lastOp = window.last();
    this.persistedOp = lastOp;
    this.commitOp = alone ? lastOp : appliedOp;
    this.verifiedOp = lastOp;
  }

  long lastOp() {
    return lastOp;
  }

  /**
   * The op of the last configuration entry not yet applied (AddLearner or EpochChange, DESIGN.md
   * "Membership"), or 0: while there is one, a membership change is in progress.
   */
  long pendingConfigOp() {
    return lastConfigOp > appliedOp ? lastConfigOp : 0;
  }

  /** The op of an EpochChange not yet applied, or 0: while there is one, no op may follow it in this epoch. */
  long pendingEpochChangeOp() {
    return lastEpochChangeOp > appliedOp ? lastEpochChangeOp : 0;
  }

  private void noteConfiguration(Entry e) {
    if (Membership.isConfiguration(e)) {
      lastConfigOp = e.getOp();
      if (e.getCommandCase() == Entry.CommandCase.EPOCH_CHANGE) {
        lastEpochChangeOp = e.getOp();
      }
    }
  }

  /** After a truncation to op: the last configuration entries at or below it, from what memory holds. */
  private void rescanConfiguration(long op) {
    lastConfigOp = 0;
    lastEpochChangeOp = 0;
    for (long o = window.base() + 1; o <= Math.min(op, window.last()); o++) {
      noteConfiguration(window.get(o));
    }
  }

  long verifiedOp() {
    return verifiedOp;
  }

  long persistedOp() {
    return persistedOp;
  }

  long commitOp() {
    return commitOp;
  }

  long applyRequestedOp() {
    return applyRequestedOp;
  }

  long appliedOp() {
    return appliedOp;
  }

  long checksum() {
    return checksum;
  }

  /** The log epoch: it grows with every truncation of the log's end (Effects.logEpoch). */
  long epoch() {
    return epoch;
  }

  /** The op below the first entry held in memory (older ones are read from storage). */
  long windowBase() {
    return window.base();
  }

  long windowLast() {
    return window.last();
  }

  /** The entries held in memory, to read only (PeerMessageChecks.entriesFit compares resends with them). */
  LogWindow window() {
    return window;
  }

  /** The entry at op, which must be held in memory (windowBase() < op <= lastOp()). */
  Entry entry(long op) {
    return window.get(op);
  }

  /** The primary logs its own new entry e (op lastOp + 1); its batch goes to storage later. */
  void appendOwn(Entry e) {
    window.append(e);
    noteConfiguration(e);
    lastOp = e.getOp();
    verifiedOp = lastOp;
  }

  /**
   * Puts the current view's entry e for op verifiedOp + 1 in the log: appended after the end, confirmed
   * when the entry there is the same, and otherwise the entry there and all after it (of an abandoned
   * view, hence not committed) are dropped first. What is appended is handed to storage (Effects.persist).
   */
  Placed place(Entry e, Effects out) {
    long op = e.getOp();
    Placed how = Placed.APPENDED;
    if (op <= lastOp) {
      if (window.get(op).equals(e)) {
        verifiedOp = op;
        return Placed.CONFIRMED;
      }
      truncateAfter(op - 1, out);
      how = Placed.REPLACED;
    }
    window.append(e);
    noteConfiguration(e);
    lastOp = e.getOp();
    verifiedOp = lastOp;
    out.persist(e);
    return how;
  }

  /**
   * Drops every entry above op (in memory, and in storage before this step's appends), in a new epoch;
   * false when there is none.
   */
  boolean truncateAfter(long op, Effects out) {
    if (op >= lastOp) {
      return false;
    }
    if (op < applyRequestedOp) {
      throw new IllegalStateException("truncating to " + op + " below what was sent to apply (" + applyRequestedOp + ")");
    }
    window.truncateAfter(op);
    if (lastConfigOp > op) {
      rescanConfiguration(op);
    }
    lastOp = op;
    verifiedOp = Math.min(verifiedOp, op);
    persistedOp = Math.min(persistedOp, op);
    noteTruncation(op);
    out.logEpoch(epoch);
    out.truncateLogAfter(op); // entries of this burst not yet handed to storage go too
    return true;
  }

  /**
   * Starts a new log epoch after a truncation at op (entries above op are gone), remembering op so that
   * a write issued in an earlier epoch can still count for what it wrote at or below it.
   */
  private void noteTruncation(long op) {
    truncations.addLast(new long[] {epoch, op});
    if (truncations.size() > MAX_TRUNCATIONS_REMEMBERED) {
      truncations.removeFirst();
    }
    epoch++;
  }

  /**
   * Storage wrote the log up to op in writeEpoch: true when the persisted op advanced. A write issued
   * before a truncation counts for what it wrote at or below every truncation point since.
   */
  boolean persisted(long writeEpoch, long op) {
    if (writeEpoch != epoch) {
      // A write issued before a truncation: what it wrote at or below every truncation point since is
      // still this log's and durable; above, a later truncation removed it.
      if (writeEpoch > epoch || truncations.isEmpty() || truncations.peekFirst()[0] > writeEpoch) {
        return false;
      }
      for (long[] t : truncations) {
        if (t[0] >= writeEpoch) {
          op = Math.min(op, t[1]);
        }
      }
    }
    if (op > lastOp) {
      throw new IllegalStateException("persisted " + op + " beyond last op " + lastOp);
    }
    if (op <= persistedOp) {
      return false;
    }
    persistedOp = op;
    return true;
  }

  /** Ops up to op (within the log, above the commit number) are committed. */
  void commitUpTo(long op) {
    commitOp = op;
  }

  /** True when committed entries wait to be sent to apply. */
  boolean applyPending() {
    return applyRequestedOp < commitOp;
  }

  /**
   * Asks for the committed entries this replica has persisted to be applied. Never beyond the persisted
   * op: the log lane must have written an entry before the apply lane writes its effects, so that every
   * prefix of the write-ahead log a power loss leaves holds the log of everything applied (the two lanes
   * share RocksDB's one WAL; an apply that overtook the log write would leave applied above a hole).
   */
  void requestApply(Effects out) {
    long upTo = Math.min(commitOp, persistedOp);
    for (long op = applyRequestedOp + 1; op <= upTo; op++) {
      out.apply(window.get(op));
    }
    applyRequestedOp = Math.max(applyRequestedOp, upTo);
  }

  /** Throws unless ops firstOp..op with replies answers follow the applied number and were requested. */
  void checkApplied(long firstOp, long op, int replies) {
    if (firstOp != appliedOp + 1 || op > applyRequestedOp || replies != op - firstOp + 1) {
      throw new IllegalStateException("applied " + firstOp + ".." + op + " after "
          + appliedOp + " (requested up to " + applyRequestedOp + ")");
    }
  }

  /**
   * Ops firstOp..op are applied, the state's checksum now newChecksum. Keeps a ring of applied entries
   * in memory for fast resends (older ones are read from the log), bounded in entries and in bytes:
   * many large values must not fill the heap (found by a process test with 1 MiB values: 8192 of them
   * are 8 GiB).
   */
  void applied(long firstOp, long op, long newChecksum) {
    appliedOp = op;
    checksum = newChecksum;
    for (long o = firstOp; o <= op; o++) {
      ringBytes += window.get(o).getSerializedSize();
    }
    long keepFrom = Math.max(window.base(), appliedOp - ringEntries);
    while (window.base() < appliedOp && (window.base() < keepFrom || ringBytes > ringMaxBytes)) {
      ringBytes -= window.get(window.base() + 1).getSerializedSize();
      window.releaseUpTo(window.base() + 1);
    }
  }

  /**
   * A state transfer installed a snapshot of every op up to op: the log is empty after it, and no
   * earlier write survives in it.
   */
  void installed(long op, long newChecksum) {
    appliedOp = op;
    applyRequestedOp = op;
    checksum = newChecksum;
    lastOp = op;
    verifiedOp = op;
    persistedOp = op;
    // The log holds nothing above op now, so neither does what counts as committed here. Only a lying
    // member brings a snapshot older than a known commit (a laggard's fetch from a later epoch): the
    // rest is learned again.
    commitOp = op;
    noteTruncation(0);
    window = new LogWindow(op);
    ringBytes = 0;
    lastConfigOp = 0;
    lastEpochChangeOp = 0;
  }

  /**
   * A new view (or a fetch of the chosen log) begins: entries above commit are kept but unverified
   * until the new primary's confirm or replace them.
   */
  void unverifyAboveCommit() {
    verifiedOp = commitOp;
  }

  /** This replica's log is the view's log (it became its primary): every entry is verified. */
  void verifyAll() {
    verifiedOp = lastOp;
  }

  /** Rejoining after recovery (VR 4.3): the applied state is committed for sure. */
  void commitApplied() {
    commitOp = Math.max(commitOp, appliedOp);
  }

  /** True when the numbers are in order (see the class comment) and the window ends at the last op. */
  boolean consistent() {
    return appliedOp <= applyRequestedOp && applyRequestedOp <= commitOp && applyRequestedOp <= persistedOp
        && commitOp <= verifiedOp
        && verifiedOp <= lastOp
        && persistedOp <= lastOp && window.base() <= appliedOp && window.last() == lastOp;
  }

  /** Truncations remembered (bounded). */
  int truncationsRemembered() {
    return truncations.size();
  }
}
