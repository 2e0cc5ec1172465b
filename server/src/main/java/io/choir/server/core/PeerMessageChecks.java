package io.choir.server.core;

import com.google.protobuf.MessageLite;
import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.Request;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * PeerMessageChecks decides whether a peer message may be acted on, field by field, before the core's
 * handler sees it (issue 10, item 5: no message can stop a replica). Protobuf's uint64 fields arrive
 * as Java longs, so a sender can put any of the 2^64 bit patterns in a view, an op or a commit, the
 * "negative" half included: every number is checked against a range within which the core's
 * arithmetic (view + 1, op + 1, commit + window, view mod n) cannot overflow, and against what the
 * message itself and the receiver know (a commit beyond the op the same message claims, a view far
 * beyond ours, an acknowledgement of an op we never had, an entry that contradicts our committed
 * prefix). What fails is dropped and counted by its {@link Reason} (status: peer_rejected_reason),
 * never thrown: a genuine internal invariant may still stop the core, but no field a peer can send
 * reaches one.
 *
 * <p>What the checks cannot catch, and do not try to: a well-formed message with plausible values from
 * a member that lies (VR does not survive Byzantine members; sealing with the cluster key keeps
 * strangers out). Such a message may cost liveness (a view change that times out) but never a replica.
 */
final class PeerMessageChecks {
  /**
   * The highest view or op number a message may carry: 2^62 leaves room for every sum the core forms
   * (view + 1, op + 1, commit + a window, a range's length) with no overflow, and is far beyond any
   * real cluster (a million view changes or ops per second for 146,000 years).
   */
  static final long MAX_NUMBER = 1L << 62;
  /**
   * How far beyond ours a peer's view may be for us to follow it. Views rise by one per view-change
   * attempt, each behind a pre-vote round that first waits out an election timeout of silence; even at
   * one attempt per millisecond, 2^32 views is 49 days of unbroken failed elections, so a replica back
   * from any plausible absence still follows the cluster, while a view pushed absurdly far (a mutated
   * datagram: view + 2^40, or 2^63 - 1) is dropped rather than adopted for good (views never go back).
   */
  static final long MAX_VIEW_AHEAD = 1L << 32;
  /**
   * The highest entry time (Entry.time_ms) accepted: 2^53 ms is 285,000 years, and the replicated clock
   * (clockMs) adds step times to it with no overflow.
   */
  static final long MAX_TIME_MS = 1L << 53;
  /**
   * Most entries in one PREPARE: the primary packs entries into datagrams of max_datagram_bytes (each
   * entry costs at least a few bytes), and a single bigger entry travels alone; 65,536 is far above any
   * packing and bounds the work one message can cause.
   */
  static final int MAX_ENTRIES_PER_PREPARE = 65_536;

  /** Why a peer message was dropped; the status counter is peer_rejected_ and the lower-case name. */
  enum Reason {
    /** The body is not the message type the header names. */
    BODY_TYPE,
    /** The header's view is negative or above MAX_NUMBER. */
    VIEW_OUT_OF_RANGE,
    /** The header's view is more than MAX_VIEW_AHEAD beyond ours. */
    VIEW_TOO_FAR_AHEAD,
    /** An op number (first op, an entry's op, last op, an acknowledgement) negative, zero where ops start at 1, or above MAX_NUMBER. */
    OP_OUT_OF_RANGE,
    /** A commit number negative or above the last op the same message claims. */
    COMMIT_BEYOND_OP,
    /** A PREPARE whose entries are not consecutive from its first op, too many, or of a later view than the message. */
    ENTRIES_MALFORMED,
    /** An entry's time is negative or absurd, or its command breaks the limits a client request must meet. */
    ENTRY_INVALID,
    /** An entry beyond what the out-of-order buffer can reach (more than max_out_of_order_entries past our verified op). */
    OP_BEYOND_WINDOW,
    /** An entry at an op we have committed, different from ours: the sender's log contradicts our committed prefix. */
    CONTRADICTS_COMMIT,
    /** A DO_VIEW_CHANGE whose last normal view is not below its view, or whose log start is beyond its commit. */
    VIEW_CHANGE_MALFORMED,
    /** A pre-vote for a view that is not its sender's view + 1, or a grant for a view not above its sender's. */
    PRE_VOTE_MALFORMED,
    /** A NACK with no range, more than max_nack_ranges, a range that starts at 0 or ends before it starts. */
    NACK_MALFORMED,
    /** An acknowledgement (PREPARE_OK, HEARTBEAT_OK) of an op beyond our log or of a heartbeat round we never sent. */
    ACK_BEYOND_SENT,
    /** A heartbeat whose low watermark is beyond its last op + 1. */
    WATERMARK_BEYOND_OP
  }

  private final CoreConfig config;
  private final RequestValidator validator;
  private final EnumMap<Reason, Long> rejected = new EnumMap<>(Reason.class);
  private long total;
  private String last = "";
  /** While true, {@link #reject} counts nothing ({@link #wouldAdmit}). */
  private boolean dry;

  PeerMessageChecks(CoreConfig config, RequestValidator validator) {
    this.config = config;
    this.validator = validator;
  }

  /** Counts a rejection and returns false (so a handler can {@code return checks.reject(...)}). */
  boolean reject(Reason reason, Event.Peer p) {
    if (dry) {
      return false;
    }
    rejected.merge(reason, 1L, Long::sum);
    total++;
    last = reason.name().toLowerCase(Locale.ROOT) + ": " + p.type() + " from " + p.from() + " in view " + p.view();
    return false;
  }

  /** Rejections so far, by reason (status: peer_rejected_reason), in declaration order. */
  Map<String, Long> counts() {
    Map<String, Long> out = new LinkedHashMap<>();
    for (Reason r : Reason.values()) {
      out.put(r.name().toLowerCase(Locale.ROOT), rejected.getOrDefault(r, 0L));
    }
    return out;
  }

  long total() {
    return total;
  }

  /** The last rejection in words (for a rate-limited log line), or "". */
  String last() {
    return last;
  }

  static boolean inRange(long v) {
    return v >= 0 && v <= MAX_NUMBER;
  }

  /**
   * The checks of the message on its own and against our view: true when it may be acted on, else
   * counted and false. Checks needing more of the receiver's state (acknowledgements, entries against
   * our log) are the handlers' ({@link #ackWithin}, {@link #entriesFit}).
   */
  /**
   * True when view is of a later epoch than ourView and within MAX_VIEW_AHEAD of that epoch's first
   * view: a replica left behind by an epoch change hears of it (and catches up; it never adopts such a
   * view by itself, see PeerRouter), while a view pushed far within an epoch is still dropped.
   */
  static boolean laterEpochStart(long view, long ourView) {
    long epoch = Membership.epochOfView(view);
    return epoch > Membership.epochOfView(ourView) && epoch <= Membership.MAX_EPOCH
        && view - Membership.epochBase(epoch) <= MAX_VIEW_AHEAD;
  }

  boolean admit(Event.Peer p, long ourView) {
    if (!bodyMatches(p.type(), p.body())) {
      return reject(Reason.BODY_TYPE, p);
    }
    if (!inRange(p.view())) {
      return reject(Reason.VIEW_OUT_OF_RANGE, p);
    }
    if (p.view() > ourView && p.view() - ourView > MAX_VIEW_AHEAD && !laterEpochStart(p.view(), ourView)) {
      return reject(Reason.VIEW_TOO_FAR_AHEAD, p);
    }
    return switch (p.type()) {
      case PREPARE -> prepare(p, (Prepare) p.body());
      case PREPARE_OK -> inRange(((PrepareOk) p.body()).getOp()) || reject(Reason.OP_OUT_OF_RANGE, p);
      case HEARTBEAT -> heartbeat(p, (Heartbeat) p.body());
      case HEARTBEAT_OK -> {
        HeartbeatOk ok = (HeartbeatOk) p.body();
        yield (inRange(ok.getOp()) || reject(Reason.OP_OUT_OF_RANGE, p))
            && (inRange(ok.getRound()) || reject(Reason.ACK_BEYOND_SENT, p));
      }
      case NACK -> nack(p, (Nack) p.body());
      case DO_VIEW_CHANGE -> doViewChange(p, (DoViewChange) p.body());
      case START_VIEW -> {
        StartView sv = (StartView) p.body();
        yield lastOpAndCommit(p, sv.getLastOp(), sv.getCommit());
      }
      case RECOVERY_RESPONSE -> {
        RecoveryResponse r = (RecoveryResponse) p.body();
        yield lastOpAndCommit(p, r.getLastOp(), r.getCommit());
      }
      case PRE_VIEW_CHANGE -> {
        long proposed = ((PreViewChange) p.body()).getView();
        // The asker proposes its own view + 1 (startPreVote); p.view() <= MAX_NUMBER, so no overflow.
        yield proposed == p.view() + 1 && proposed <= MAX_NUMBER || reject(Reason.PRE_VOTE_MALFORMED, p);
      }
      case PRE_VIEW_CHANGE_OK -> {
        long proposed = ((PreViewChangeOk) p.body()).getView();
        // A grant names a view above its sender's (onPreViewChange grants only proposed > view).
        yield proposed > p.view() && proposed <= MAX_NUMBER || reject(Reason.PRE_VOTE_MALFORMED, p);
      }
      default -> true; // START_VIEW_CHANGE and RECOVERY carry nothing to check (a nonce is any number)
    };
  }

  private boolean lastOpAndCommit(Event.Peer p, long lastOp, long commit) {
    if (!inRange(lastOp)) {
      return reject(Reason.OP_OUT_OF_RANGE, p);
    }
    if (commit < 0 || commit > lastOp) {
      return reject(Reason.COMMIT_BEYOND_OP, p); // no replica knows a commit beyond its own log
    }
    return true;
  }

  private boolean heartbeat(Event.Peer p, Heartbeat hb) {
    if (!lastOpAndCommit(p, hb.getLastOp(), hb.getCommit())) {
      return false;
    }
    if (hb.getLowWatermark() < 0 || hb.getLowWatermark() > hb.getLastOp() + 1) {
      return reject(Reason.WATERMARK_BEYOND_OP, p); // a log never starts beyond its end + 1
    }
    return inRange(hb.getRound()) || reject(Reason.OP_OUT_OF_RANGE, p);
  }

  private boolean doViewChange(Event.Peer p, DoViewChange d) {
    if (!lastOpAndCommit(p, d.getLastOp(), d.getCommit())) {
      return false;
    }
    // Sent in the view being formed, about the last view its sender was normal in: an earlier one. Its
    // log starts at most just past its commit (only applied entries are ever truncated).
    if (d.getLastNormalView() < 0 || d.getLastNormalView() >= p.view()
        || d.getLogFirstOp() < 0 || d.getLogFirstOp() > d.getCommit() + 1) {
      return reject(Reason.VIEW_CHANGE_MALFORMED, p);
    }
    return true;
  }

  private boolean nack(Event.Peer p, Nack nack) {
    int count = nack.getRangesCount();
    if (count == 0 || count > Math.max(1, config.maxNackRanges)) {
      return reject(Reason.NACK_MALFORMED, p);
    }
    for (OpRange r : nack.getRangesList()) {
      if (r.getFirst() < 1 || r.getFirst() > r.getLast() || r.getLast() > MAX_NUMBER) {
        return reject(Reason.NACK_MALFORMED, p);
      }
    }
    return true;
  }

  private boolean prepare(Event.Peer p, Prepare prepare) {
    long first = prepare.getFirstOp();
    int count = prepare.getEntriesCount();
    if (first < (count > 0 ? 1 : 0) || first > MAX_NUMBER - MAX_ENTRIES_PER_PREPARE) {
      return reject(Reason.OP_OUT_OF_RANGE, p);
    }
    if (!inRange(prepare.getCommit())) {
      return reject(Reason.COMMIT_BEYOND_OP, p);
    }
    if (count > MAX_ENTRIES_PER_PREPARE) {
      return reject(Reason.ENTRIES_MALFORMED, p);
    }
    for (int i = 0; i < count; i++) {
      Entry e = prepare.getEntries(i);
      if (e.getOp() != first + i || e.getView() < 0 || e.getView() > p.view()) {
        // Consecutive from first_op, and made in this view or an earlier one (a resend keeps its view).
        return reject(Reason.ENTRIES_MALFORMED, p);
      }
      if (e.getTimeMs() < 0 || e.getTimeMs() > MAX_TIME_MS || !commandValid(e)) {
        return reject(Reason.ENTRY_INVALID, p);
      }
    }
    return true;
  }

  /**
   * An entry's command meets the limits the primary checked on the client's request (key and value
   * sizes, batch size, a compare-and-set's form): a primary makes no other, so one that breaks them is
   * not a primary's, and the state machine never sees it.
   */
  private boolean commandValid(Entry e) {
    Request.Builder r = Request.newBuilder();
    switch (e.getCommandCase()) {
      case PUT -> r.setPut(e.getPut());
      case DELETE -> r.setDelete(e.getDelete());
      case COMPARE_AND_SET -> r.setCompareAndSet(e.getCompareAndSet());
      case BATCH -> r.setBatch(e.getBatch());
      default -> {
        return true; // sessions, no-ops and empty entries carry nothing a client chose
      }
    }
    return validator.check(r.build()) == null;
  }

  /**
   * A PREPARE_OK or HEARTBEAT_OK may acknowledge only what we sent: an op within our log and a
   * heartbeat round we have reached.
   */
  boolean ackWithin(Event.Peer p, long op, long round, long ourLastOp, long ourRound) {
    return op <= ourLastOp && round <= ourRound || reject(Reason.ACK_BEYOND_SENT, p);
  }

  /**
   * A PREPARE's entries against our log: none beyond what the out-of-order buffer can reach past our
   * verified op (the primary resends it when we NACK), and none at an op we committed that differs
   * from our entry there (the sender's log contradicts what a quorum agreed on).
   */
  boolean entriesFit(Event.Peer p, Prepare prepare, long verifiedOp, long commitOp, LogWindow window) {
    int count = prepare.getEntriesCount();
    if (count == 0) {
      return true;
    }
    long last = prepare.getFirstOp() + count - 1;
    if (last > verifiedOp + Math.max(1, config.maxOutOfOrderEntries)) {
      return reject(Reason.OP_BEYOND_WINDOW, p);
    }
    long from = Math.max(prepare.getFirstOp(), window.base() + 1);
    long to = Math.min(last, Math.min(commitOp, window.last()));
    for (long op = from; op <= to; op++) {
      if (!window.get(op).equals(prepare.getEntries((int) (op - prepare.getFirstOp())))) {
        return reject(Reason.CONTRADICTS_COMMIT, p);
      }
    }
    return true;
  }

  /** As {@link #admit}, counting nothing: would this message pass the checks of the message itself? */
  boolean wouldAdmit(Event.Peer p, long ourView) {
    dry = true;
    try {
      return admit(p, ourView);
    } finally {
      dry = false;
    }
  }

  /** True when body is the protobuf class that type names (the transport parses by type; a test may not). */
  static boolean bodyMatches(MessageType type, MessageLite body) {
    if (body == null) {
      return false;
    }
    return switch (type) {
      case PREPARE -> body instanceof Prepare;
      case PREPARE_OK -> body instanceof PrepareOk;
      case HEARTBEAT -> body instanceof Heartbeat;
      case HEARTBEAT_OK -> body instanceof HeartbeatOk;
      case NACK -> body instanceof Nack;
      case START_VIEW_CHANGE -> body instanceof StartViewChange;
      case DO_VIEW_CHANGE -> body instanceof DoViewChange;
      case START_VIEW -> body instanceof StartView;
      case RECOVERY -> body instanceof Recovery;
      case RECOVERY_RESPONSE -> body instanceof RecoveryResponse;
      case PRE_VIEW_CHANGE -> body instanceof PreViewChange;
      case PRE_VIEW_CHANGE_OK -> body instanceof PreViewChangeOk;
      default -> true; // not a core message: onPeer counts it as unexpected
    };
  }
}
