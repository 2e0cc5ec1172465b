package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.MembershipRecord;
import io.choir.proto.MessageType;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiPredicate;
import java.util.function.IntFunction;
import java.util.function.Predicate;

/**
 * A few cores wired together on a hand-driven clock, for tests that need a working cluster rather
 * than single hand-carried messages (CoreKit's style otherwise): every send is delivered at once,
 * every persist reports Persisted at once, every apply reports Applied at once (checksum: the op), and
 * resends from the log are served from what each core was told to persist. A message may be dropped
 * by a filter, and a test may inject any peer message of its own (an attacker with a member's id).
 */
final class CoreCluster {
  final int n;
  private final IntFunction<CoreConfig> config;
  final ReplicaCore[] cores;
  /** Each replica's log as it told storage to persist it (for resends from the log). */
  private final List<Map<Long, Entry>> logs = new ArrayList<>();
  private final ArrayDeque<Runnable> pending = new ArrayDeque<>();
  /** Drops a send when true (from, send). */
  Predicate<Effects.Send> drop = s -> false;
  /** Drops a send when true (sender, send). */
  BiPredicate<Integer, Effects.Send> dropSent = (from, s) -> false;
  /**
   * Whether a FetchState is served: the source's applied op and membership are installed at the asker
   * (checksum: the op, as applies report it); off, a fetch never finishes.
   */
  boolean serveStateTransfers;
  /**
   * Sends to all reach only the sender's members (as the unicast transport fans them out), not every
   * replica (as multicast does, to whoever is in the group, a removed replica included).
   */
  boolean toAllReachesMembersOnly;
  /** A replica cut off from the others (0: none): nothing it sends or is sent gets through. */
  int dropFrom;
  long now;
  /** Bytes of PREPARE bodies each replica sent, to whom (index: destination, 0 multicast). */
  final long[][] prepareBytesSent;
  final long[][] prepareWireBytesSent;
  final List<Response> replies = new ArrayList<>();
  /** Reads the cores released to execute (connection, request). */
  final List<Effects.Read> reads = new ArrayList<>();

  CoreCluster(int n) {
    this(n, id -> CoreKit.config(id, n));
  }

  CoreCluster(int n, IntFunction<CoreConfig> config) {
    this.n = n;
    this.config = config;
    cores = new ReplicaCore[n + 1];
    prepareBytesSent = new long[n + 1][n + 1];
    prepareWireBytesSent = new long[n + 1][n + 1];
    logs.add(null);
    for (int id = 1; id <= n; id++) {
      cores[id] = new ReplicaCore(config.apply(id), RecoveredState.empty());
      logs.add(new HashMap<>());
    }
  }

  /** Steps event at replica id now and runs everything it leads to. */
  void step(int id, Event event) {
    stepOnly(id, event);
    drain();
  }

  /** A tick at every replica, at time t, and everything it leads to. */
  void tickAll(long t) {
    now = t;
    for (int id = 1; id <= n; id++) {
      stepOnly(id, new Event.Tick());
    }
    drain();
  }

  /** Runs the cluster for duration with ticks every step, from now. */
  void run(long duration, long stepNs) {
    long end = now + duration;
    while (now < end) {
      tickAll(now + stepNs);
    }
  }

  /** A client write at replica id (the primary, hopefully). */
  void write(int id, long clientId, long requestId, String key) {
    step(id, new Event.ClientRequest(requestId, CoreKit.put(clientId, requestId, key)));
    step(id, new Event.Tick());
  }

  int primary() {
    for (int id = 1; id <= n; id++) {
      if (cores[id].isPrimary()) {
        return id;
      }
    }
    return 0;
  }

  private void drain() {
    int guard = 0;
    while (!pending.isEmpty()) {
      if (++guard > 10_000_000) {
        throw new IllegalStateException("the cluster does not settle");
      }
      pending.poll().run();
    }
  }

  private void stepOnly(int id, Event event) {
    Effects out = new Effects();
    cores[id].step(event, now, out);
    execute(id, out);
  }

  private void execute(int id, Effects out) {
    Map<Long, Entry> log = logs.get(id);
    out.truncationAfter().ifPresent(after -> log.keySet().removeIf(op -> op > after));
    for (Entry e : out.toPersist()) {
      log.put(e.getOp(), e);
    }
    if (!out.toPersist().isEmpty()) {
      long last = out.toPersist().get(out.toPersist().size() - 1).getOp();
      long epoch = out.logEpoch();
      pending.add(() -> stepOnly(id, new Event.Persisted(last, epoch)));
    }
    if (out.lastNormalViewToPersist().isPresent()) {
      long lnv = out.lastNormalViewToPersist().get().lastNormalView();
      pending.add(() -> stepOnly(id, new Event.LastNormalViewPersisted(lnv)));
    }
    if (!out.toApply().isEmpty()) {
      List<Entry> apply = new ArrayList<>(out.toApply());
      List<Response> rs = new ArrayList<>();
      for (Entry e : apply) {
        rs.add(Response.newBuilder().setRequestId(e.getRequestId()).setStatus(Status.OK).setVersion(e.getOp()).build());
      }
      long lastOp = apply.get(apply.size() - 1).getOp();
      pending.add(() -> stepOnly(id, new Event.Applied(apply.get(0).getOp(), lastOp, rs, lastOp)));
    }
    for (Effects.Send s : out.sends()) {
      send(id, s);
    }
    for (Effects.Retransmit r : out.retransmits()) {
      List<Entry> entries = new ArrayList<>();
      long bytes = 0;
      for (long op = r.fromOp(); op <= r.toOp() && bytes < r.maxBytes(); op++) {
        Entry e = log.get(op);
        if (e != null) {
          entries.add(e);
          bytes += e.getSerializedSize();
        }
      }
      for (var p : ReplicaCore.packPrepares(entries, 1400)) {
        send(id, new Effects.Send(r.to(), r.view(), MessageType.PREPARE, p.setCommit(r.commit()).build()));
      }
    }
    if (serveStateTransfers && out.stateTransferFrom().isPresent()) {
      ReplicaCore source = cores[out.stateTransferFrom().getAsInt()];
      long op = source.appliedOp();
      MembershipRecord row = source.membership().toRecord(0);
      pending.add(() -> {
        if (op > cores[id].appliedOp() && dropFrom != id && dropFrom != out.stateTransferFrom().getAsInt()) {
          log.clear();
          stepOnly(id, new Event.StateInstalled(op, op, row));
        } else {
          stepOnly(id, new Event.StateTransferFailed("nothing newer"));
        }
      });
    }
    replies.addAll(out.replies().stream().map(r -> r.responses().get(0)).toList());
    reads.addAll(out.reads());
  }

  private void send(int from, Effects.Send s) {
    if (s.type() == MessageType.PREPARE) {
      prepareBytesSent[from][s.to()] += s.body().getSerializedSize();
      prepareWireBytesSent[from][s.to()] += ReplicaCore.DATAGRAM_HEADER_BYTES + s.body().getSerializedSize();
    }
    if (drop.test(s) || dropSent.test(from, s) || from == dropFrom) {
      return;
    }
    for (int to = 1; to <= n; to++) {
      boolean toAll = s.to() == Effects.MULTICAST
          && (!toAllReachesMembersOnly || cores[from].membership().contains(to));
      if (to != from && to != dropFrom && (toAll || s.to() == to)) {
        int dest = to;
        pending.add(() -> stepOnly(dest, new Event.Peer(from, s.view(), s.type(), s.body())));
      }
    }
  }

  /** Bytes of PREPAREs replica from sent by unicast to replica to, plus by multicast. */
  long prepareBytesTo(int from, int to) {
    return prepareBytesSent[from][to] + prepareBytesSent[from][Effects.MULTICAST];
  }

  /** As {@link #prepareBytesTo}, on the wire: each PREPARE with its datagram header. */
  long prepareWireBytesTo(int from, int to) {
    return prepareWireBytesSent[from][to] + prepareWireBytesSent[from][Effects.MULTICAST];
  }

  /**
   * Restarts replica id from what its storage holds (fsync durability): its view and last normal view,
   * its applied state and the log above it, and the membership of its applied state (the row).
   */
  void restart(int id) {
    restart(id, false);
  }

  /**
   * As {@link #restart(int)}; recovering: with buffered durability, so it runs the recovery protocol
   * first (VR Revisited 4.3).
   */
  void restart(int id, boolean recovering) {
    restart(id, recovering, 0);
  }

  /** As {@link #restart(int, boolean)}, the last lostTail unapplied log entries lost (unsynced writes). */
  void restart(int id, boolean recovering, int lostTail) {
    ReplicaCore old = cores[id];
    Map<Long, Entry> log = logs.get(id);
    List<Entry> logged = new ArrayList<>();
    for (long op = old.appliedOp() + 1; log.containsKey(op); op++) {
      logged.add(log.get(op));
    }
    List<Entry> unapplied = logged.subList(0, Math.max(0, logged.size() - lostTail));
    log.keySet().removeIf(op -> op > old.appliedOp() + unapplied.size());
    RecoveredState r = new RecoveredState(old.view(), old.lastNormalView(), true, recovering, false, old.appliedOp(),
        old.appliedOp(), Math.min(old.logFirstOp(), old.appliedOp() + 1), unapplied);
    // The membership as storage holds it: the row of its applied state, recent changes included.
    CoreConfig restarted = config.apply(id);
    Membership row = Membership.fromRecord(old.membership().toRecord(old.appliedOp()), restarted.bootstrapMembership());
    cores[id] = new ReplicaCore(restarted, r, row);
  }

  /** The entry replica id told storage to persist at op, or null. */
  Entry logged(int id, long op) {
    return logs.get(id).get(op);
  }

  /** Delivers an injected peer message (as if from member from) to replica to. */
  void inject(int to, Event.Peer p) {
    step(to, p);
  }
}
