package io.choir.server.core;

import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;
import io.choir.proto.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;

/**
 * ReadIndex owns the reads waiting to run (DESIGN.md "Reads"; Raft thesis 6.4, ReadIndex): each waits
 * until the applied number reaches the op it needs and, when linearizable, until f backups have answered
 * a heartbeat round sent after it arrived (which proves no newer view had formed). It also owns the read
 * floor of a view: the last op of the log when this replica became primary, which a linearizable read
 * waits for too, since an earlier primary may have committed and answered entries up to it. Reads are
 * bounded by max_queued_requests and time out after read_timeout_ms.
 */
final class ReadIndex {
  /** The round of a read that needs none (sequential reads, and linearizable ones on a lone replica). */
  static final long NO_ROUND = 0;

  private record PendingRead(long connectionId, Request request, long requiredOp, long round,
      long deadlineNs, long seq) {}

  private final int maxQueued;
  private final long timeoutNs;
  private final PriorityQueue<PendingRead> pending =
      new PriorityQueue<>((a, b) -> a.requiredOp != b.requiredOp
          ? Long.compare(a.requiredOp, b.requiredOp) : Long.compare(a.seq, b.seq));
  private long seq;
  /** Reads arrived since the last round was sent need a new one. */
  private boolean roundWanted;
  /** See the class comment: entries up to it may have been committed by an earlier primary. */
  private long floorOp;

  ReadIndex(int maxQueued, long timeoutNs, long floorOp) {
    this.maxQueued = maxQueued;
    this.timeoutNs = timeoutNs;
    this.floorOp = floorOp;
  }

  /** This replica became primary of a view with lastOp as its log's last op. */
  void newFloor(long lastOp) {
    floorOp = lastOp;
  }

  /** The op a linearizable read arriving now must wait for, given the commit number. */
  long linearizableOp(long commitOp) {
    return Math.max(commitOp, floorOp);
  }

  /** A linearizable read arrived while the last round sent is heartbeatRound: it needs the next one. */
  long nextRound(long heartbeatRound) {
    roundWanted = true;
    return heartbeatRound + 1;
  }

  /** True when reads wait for a heartbeat round that has not been sent yet. */
  boolean roundWanted() {
    return roundWanted;
  }

  /** The round the waiting reads wanted has been sent. */
  void roundSent() {
    roundWanted = false;
  }

  boolean isFull() {
    return pending.size() >= maxQueued;
  }

  boolean isEmpty() {
    return pending.isEmpty();
  }

  int size() {
    return pending.size();
  }

  /** Queues a read until requiredOp is applied and round confirmed; returns its deadline. */
  long add(long connectionId, Request request, long requiredOp, long round, long nowNs) {
    pending.add(new PendingRead(connectionId, request, requiredOp, round, nowNs + timeoutNs, seq++));
    return nowNs + timeoutNs;
  }

  /** Runs the reads whose op is applied and whose heartbeat round (if any) f backups confirmed. */
  void release(long appliedOp, long confirmedRound, Effects out) {
    List<PendingRead> blocked = new ArrayList<>();
    while (!pending.isEmpty() && pending.peek().requiredOp() <= appliedOp) {
      PendingRead r = pending.poll();
      if (r.round() <= confirmedRound) {
        out.read(r.connectionId(), r.request());
      } else {
        blocked.add(r);
      }
    }
    pending.addAll(blocked);
  }

  /**
   * This replica leaves its view: linearizable reads are answered NOT_PRIMARY with the new primary's
   * address and dropped (sequential ones wait on: the applied state still grows).
   */
  void leaveView(String error, String primaryAddress, Effects out) {
    for (PendingRead r : pending) {
      if (r.request().getConsistency() != ReadConsistency.SEQUENTIAL) {
        out.reply(r.connectionId(), RequestValidator.refuse(r.request(),
            Status.NOT_PRIMARY, error).toBuilder().setPrimaryAddress(primaryAddress).build());
      }
    }
    pending.removeIf(r -> r.request().getConsistency() != ReadConsistency.SEQUENTIAL);
  }

  /** Answers UNAVAILABLE the reads whose deadline has passed; asks for a tick at the next deadline. */
  void expire(long nowNs, long appliedOp, Counters counters, Effects out) {
    if (pending.isEmpty()) {
      return;
    }
    List<PendingRead> expired = new ArrayList<>();
    long next = Long.MAX_VALUE;
    for (PendingRead r : pending) {
      if (r.deadlineNs() <= nowNs) {
        expired.add(r);
      } else {
        next = Math.min(next, r.deadlineNs());
      }
    }
    for (PendingRead r : expired) {
      pending.remove(r);
      counters.readTimeouts++;
      out.reply(r.connectionId(), RequestValidator.refuse(r.request(),
          Status.UNAVAILABLE, "replica has applied op " + appliedOp + ", the read needs op "
              + r.requiredOp() + (r.round() > NO_ROUND ? " and heartbeat round " + r.round() : "")
              + "; gave up after read_timeout_ms"));
    }
    out.tickBy(next);
  }
}
