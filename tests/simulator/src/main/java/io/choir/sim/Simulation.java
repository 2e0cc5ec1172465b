package io.choir.sim;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Entry;
import io.choir.proto.Get;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.CoreConfig;
import io.choir.server.core.Effects;
import io.choir.server.core.Event;
import io.choir.server.core.ReplicaCore;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.SplittableRandom;

/**
 * Simulation runs N replica cores and a few clients in one thread on simulated time, with a seeded
 * random source for everything: network delay, loss, duplication and reordering, partitions (whole
 * links, only multicast, only the repair path), fsync latency, crashes of backups that lose unsynced
 * writes, and client timing (FoundationDB-style deterministic simulation). The same seed gives the same
 * run, event for event.
 *
 * <p>It checks, while it runs, DESIGN.md's invariants: no two replicas apply different entries at the
 * same op, equal applied numbers give equal checksums, and no core invariant breaks; at the end, after
 * healing everything, every replica converges to the primary's commit with the same checksum. The
 * client history goes to the linearizability checker.
 */
public final class Simulation {
  static final long MS = 1_000_000L;
  private static final long CLIENT_ATTEMPT_TIMEOUT_NS = 300 * MS;
  private static final long CLIENT_OP_DEADLINE_NS = 4_000 * MS;
  private static final long CONVERGE_DEADLINE_NS = 30_000 * MS;
  private static final int MAX_EVENTS = 20_000_000;

  private record Scheduled(long atNs, long seq, int node, int incarnation, Runnable action) {}

  private final SimConfig cfg;
  private final SplittableRandom random;
  private final PriorityQueue<Scheduled> queue = new PriorityQueue<>(
      (a, b) -> a.atNs != b.atNs ? Long.compare(a.atNs, b.atNs) : Long.compare(a.seq, b.seq));
  private long seq;
  private long now;
  private final SimNode[] nodes;
  private final List<SimClient> clients = new ArrayList<>();
  final SimHistory history = new SimHistory();
  final List<String> violations = new ArrayList<>();
  private final Map<Long, Long> entryHashAt = new HashMap<>();
  private final Map<Long, Long> checksumAt = new HashMap<>();
  // Network faults: cut[from][to] blocks everything; multicastCut[to] blocks multicast into a node;
  // repairCut[node] blocks unicast to and from it (PREPARE_OK, NACK, resends, heartbeat answers).
  private final boolean[][] cut;
  private final boolean[] multicastCut;
  private final boolean[] repairCut;
  private boolean faultsOn;
  private int nextProcess;
  private long events;
  final Map<String, Long> stats = new HashMap<>();

  public Simulation(SimConfig cfg) {
    this(cfg, b -> b);
  }

  /**
   * A simulation whose replicas' configuration is changed by {@code tweak} (tests that break the
   * protocol on purpose, e.g. {@code breakage}, to show the checks catch it).
   */
  public Simulation(SimConfig cfg, java.util.function.UnaryOperator<CoreConfig.Builder> tweak) {
    this.cfg = cfg;
    this.random = new SplittableRandom(cfg.seed());
    List<Integer> ids = new ArrayList<>();
    for (int i = 1; i <= cfg.replicas(); i++) {
      ids.add(i);
    }
    nodes = new SimNode[cfg.replicas() + 1];
    for (int id : ids) {
      Map<Integer, String> addresses = new HashMap<>();
      for (int a : ids) {
        addresses.put(a, String.valueOf(a));
      }
      CoreConfig c = tweak.apply(CoreConfig.builder(id, ids)
          .clientAddresses(addresses)
          .maxDatagramBytes(1400)
          .heartbeatIntervalNs(50 * MS)
          .quorumTimeoutNs(500 * MS)
          .nackDelayNs(2 * MS)
          .nackBackoffMaxNs(100 * MS)
          .retransmitRingEntries(cfg.logRetentionOps() < 1000 ? 8 : 64)
          .logRetentionMinOps(cfg.logRetentionOps())
          .logRetentionMaxOps(cfg.logRetentionOps() * 2)
          .maxInFlightOps(256)
          .readTimeoutNs(1_000 * MS)
          .seed(cfg.seed()))
          .build();
      nodes[id] = new SimNode(id, c);
      nodes[id].buffered = cfg.buffered();
    }
    cut = new boolean[cfg.replicas() + 1][cfg.replicas() + 1];
    multicastCut = new boolean[cfg.replicas() + 1];
    repairCut = new boolean[cfg.replicas() + 1];
  }

  /** Runs the simulation to the end; returns the result with the history and any violation. */
  public SimResult run() {
    for (int id = 1; id <= cfg.replicas(); id++) {
      SimNode node = nodes[id];
      node.start();
      step(node, new Event.Tick());
    }
    for (int i = 0; i < cfg.clients(); i++) {
      SimClient c = new SimClient(i, nextProcess++, 0x1000L + i, cfg.opsPerClient());
      clients.add(c);
      schedule(random.nextLong(5 * MS), 0, 0, () -> nextOp(c));
    }
    faultsOn = cfg.faults();
    if (faultsOn) {
      schedule(cfg.faultPeriodNs() / 3, 0, 0, this::injectFault);
    }
    boolean clientsDone = false;
    long convergeDeadline = Long.MAX_VALUE;
    while (!queue.isEmpty() && violations.isEmpty()) {
      if (++events > MAX_EVENTS) {
        violations.add("simulation did not finish within " + MAX_EVENTS + " events");
        break;
      }
      Scheduled s = queue.poll();
      now = s.atNs;
      if (s.node != 0 && (!nodes[s.node].up || nodes[s.node].incarnation != s.incarnation)) {
        continue; // scheduled for a process that has since crashed
      }
      try {
        s.action.run();
      } catch (RuntimeException e) {
        violations.add("exception at t=" + now / MS + "ms: " + e + stackTop(e));
        break;
      }
      if (!clientsDone && clients.stream().allMatch(SimClient::done)) {
        clientsDone = true;
        healAll();
        faultsOn = false;
        convergeDeadline = now + CONVERGE_DEADLINE_NS;
      }
      if (clientsDone) {
        if (converged()) {
          break;
        }
        if (now > convergeDeadline) {
          violations.add("replicas did not converge within " + CONVERGE_DEADLINE_NS / MS + " ms after healing: "
              + describeNodes());
          break;
        }
      }
    }
    if (violations.isEmpty() && !clientsDone) {
      violations.add("clients did not finish: " + describeNodes());
    }
    for (int id = 1; id < nodes.length; id++) {
      if (nodes[id].up) {
        ReplicaCore.Counters c = nodes[id].core.counters();
        stats.merge("nacks_sent", c.nacksSent, Long::sum);
        stats.merge("retransmits", c.retransmits, Long::sum);
        stats.merge("retransmits_multicast", c.retransmitsMulticast, Long::sum);
        stats.merge("retransmits_from_log", c.retransmitsFromLog, Long::sum);
        stats.merge("gaps", c.gapsDetected, Long::sum);
        stats.merge("no_quorum", c.noQuorum, Long::sum);
      }
    }
    stats.put("events", events);
    stats.put("sim_ms", now / MS);
    return new SimResult(cfg, history, violations, describeNodes(), stats);
  }

  private static String stackTop(RuntimeException e) {
    StringBuilder sb = new StringBuilder();
    StackTraceElement[] st = e.getStackTrace();
    for (int i = 0; i < Math.min(6, st.length); i++) {
      sb.append("\n    at ").append(st[i]);
    }
    return sb.toString();
  }

  private String describeNodes() {
    StringBuilder sb = new StringBuilder();
    for (int id = 1; id < nodes.length; id++) {
      SimNode n = nodes[id];
      sb.append("\n  node ").append(id).append(n.up ? " " + n.core : " down");
    }
    return sb.toString();
  }

  /** The node that is primary in the highest view among the live ones, or null. */
  private SimNode currentPrimary() {
    SimNode best = null;
    for (int id = 1; id < nodes.length; id++) {
      SimNode n = nodes[id];
      if (n.up && n.core.isPrimary() && (best == null || n.core.view() > best.core.view())) {
        best = n;
      }
    }
    return best;
  }

  /** All replicas are up in the primary's view, at its commit, and agree on the checksum. */
  private boolean converged() {
    SimNode p = currentPrimary();
    if (p == null || p.core.lastOp() != p.core.commitOp() || p.core.appliedOp() != p.core.commitOp()) {
      return false;
    }
    for (int id = 1; id < nodes.length; id++) {
      SimNode n = nodes[id];
      if (!n.up || n.core.view() != p.core.view() || n.core.mode() != ReplicaCore.Mode.NORMAL
          || n.core.appliedOp() != p.core.appliedOp() || n.core.checksum() != p.core.checksum()) {
        return false;
      }
    }
    return true;
  }

  // ------------------------------------------------------------------ scheduling and node stepping

  private void schedule(long delayNs, int node, int incarnation, Runnable action) {
    queue.add(new Scheduled(now + Math.max(0, delayNs), seq++, node, incarnation, action));
  }

  private void atNode(SimNode node, long delayNs, Runnable action) {
    schedule(delayNs, node.id, node.incarnation, action);
  }

  private static final boolean TRACE = Boolean.getBoolean("choir.sim.trace");

  private void step(SimNode node, Event event) {
    Effects fx = node.effects;
    fx.clear();
    node.core.step(event, now, fx);
    if (TRACE && !(event instanceof Event.Tick && fx.isEmpty())) {
      System.out.println(String.format("%9.3f n%d %s -> %s", now / 1e6, node.id, describe(event), describe(fx))
          + "\n            " + node.core);
    }
    if (!(event instanceof Event.Tick) && !node.tickScheduledNow) {
      // End of a burst: everything that arrives at this same instant joins it, then a Tick flushes.
      node.tickScheduledNow = true;
      atNode(node, 0, () -> {
        node.tickScheduledNow = false;
        step(node, new Event.Tick());
      });
    }
    execute(node, fx);
  }

  private void execute(SimNode node, Effects fx) {
    if (fx.persistView) {
      node.storeView(fx.view);
    }
    if (fx.truncateLogAfter >= 0) {
      long after = fx.truncateLogAfter;
      storageTask(node, 10_000, () -> node.storage.truncateLogAfter(after, !cfg.buffered()));
    }
    if (!fx.persist.isEmpty()) {
      List<Entry> entries = List.copyOf(fx.persist);
      long epoch = fx.logEpoch;
      boolean sync = !cfg.buffered();
      storageTask(node, sync ? 50_000 + random.nextLong(450_000) : 5_000 + random.nextLong(20_000), () -> {
        node.storage.appendLog(entries, sync);
        step(node, new Event.Persisted(entries.get(entries.size() - 1).getOp(), epoch));
      });
    }
    if (fx.persistLastNormalView) {
      long lnv = fx.lastNormalView;
      boolean caughtUp = fx.caughtUp;
      storageTask(node, 1000, () -> node.storeLastNormalView(lnv, caughtUp));
    }
    for (Effects.Send s : fx.sends) {
      send(node.id, s.to(), s.view(), s.type(), s.body());
    }
    if (!fx.apply.isEmpty()) {
      List<Entry> entries = List.copyOf(fx.apply);
      storageTask(node, 10_000 + random.nextLong(40_000), () -> applyEntries(node, entries));
    }
    if (fx.truncateLogBefore > 0) {
      long op = fx.truncateLogBefore;
      storageTask(node, 1000, () -> node.storage.truncateLogBefore(op, false));
    }
    for (Effects.Retransmit r : fx.retransmits) {
      List<Entry> fromLog = node.storage.readLog(r.fromOp(), r.toOp(), Integer.MAX_VALUE);
      for (Prepare.Builder p : ReplicaCore.packPrepares(fromLog, 1400)) {
        send(node.id, r.to(), r.view(), MessageType.PREPARE, p.setCommit(r.commit()).build());
      }
    }
    if (fx.stateTransferFrom > 0) {
      stateTransfer(node, nodes[fx.stateTransferFrom]);
    }
    for (Effects.Read read : fx.reads) {
      Response r = node.stateMachine.read(read.request(), 1000);
      replyToClient(node, read.connectionId(), r);
    }
    for (Effects.Reply reply : fx.replies) {
      replyToClient(node, reply.connectionId(), reply.response());
    }
    if (fx.nextTickNs != Long.MAX_VALUE && fx.nextTickNs < node.nextTickAtNs) {
      long at = Math.max(fx.nextTickNs, now);
      node.nextTickAtNs = at;
      atNode(node, at - now, () -> {
        if (node.nextTickAtNs == at) {
          node.nextTickAtNs = Long.MAX_VALUE;
          step(node, new Event.Tick());
        }
      });
    }
  }

  /**
   * A state transfer, as the TCP one does it: a consistent snapshot of the source, installed on the
   * node's storage thread in chunks; it fails when the source is down or the link is cut.
   */
  private void stateTransfer(SimNode node, SimNode source) {
    bump("state_transfers");
    if (!source.up || cut[source.id][node.id] || cut[node.id][source.id] || repairCut[node.id]) {
      atNode(node, 20 * MS, () -> step(node, new Event.StateTransferFailed("source unreachable")));
      return;
    }
    io.choir.server.storage.StorageSnapshot snap = source.storage.snapshot();
    byte[] appliedBytes = snap.getMeta(
        io.choir.server.statemachine.KvStateMachine.APPLIED_KEY.getBytes(StandardCharsets.UTF_8));
    long op = appliedBytes == null ? 0 : io.choir.server.storage.Bytes.bytesToLong(appliedBytes);
    if (op <= node.stateMachine.applied()) {
      // As the real server does: a source that is not ahead refuses.
      snap.close();
      atNode(node, 20 * MS, () -> step(node, new Event.StateTransferFailed("source not ahead")));
      return;
    }
    long checksum = io.choir.server.storage.Bytes.bytesToLong(snap.getMeta(
        io.choir.server.statemachine.KvStateMachine.CHECKSUM_KEY.getBytes(StandardCharsets.UTF_8)));
    List<io.choir.proto.KeyValue> kvs = new ArrayList<>();
    byte[] from = new byte[0];
    while (true) {
      List<io.choir.proto.KeyValue> chunk = snap.scanData(from, 1000, 1 << 20);
      if (chunk.isEmpty()) {
        break;
      }
      kvs.addAll(chunk);
      from = io.choir.server.storage.Bytes.successor(chunk.get(chunk.size() - 1).getKey().toByteArray());
    }
    List<io.choir.proto.ClientRecord> clientRows = io.choir.server.statemachine.KvStateMachine.clientTable(snap);
    snap.close();
    boolean crashMidway = random.nextInt(4) == 0;
    storageTask(node, 2 * MS, () -> {
      node.stateMachine.beginInstall();
      node.stateMachine.installData(kvs.subList(0, crashMidway ? kvs.size() / 2 : kvs.size()));
      if (crashMidway) {
        bump("state_transfers_interrupted");
        step(node, new Event.StateTransferFailed("connection lost midway"));
        return;
      }
      node.stateMachine.installSnapshot(op, checksum, clientRows);
      step(node, new Event.StateInstalled(op, checksum));
    });
  }

  private static String describe(Event e) {
    if (e instanceof Event.Peer p) {
      return "peer(from " + p.from() + ", v" + p.view() + ", " + p.type() + " " + brief(p.body()) + ")";
    }
    if (e instanceof Event.ClientRequest c) {
      return "client(" + c.request().getOpCase() + " rid=" + c.request().getRequestId() + ")";
    }
    return e.toString().length() > 120 ? e.toString().substring(0, 120) : e.toString();
  }

  private static String brief(MessageLite m) {
    String s = m.toString().replace("\n", " ");
    if (m instanceof Prepare p) {
      s = "first=" + p.getFirstOp() + " n=" + p.getEntriesCount() + " commit=" + p.getCommit();
    } else if (m instanceof io.choir.proto.DoViewChange d) {
      s = "lnv=" + d.getLastNormalView() + " last=" + d.getLastOp() + " commit=" + d.getCommit();
    } else if (m instanceof io.choir.proto.StartView sv) {
      s = "last=" + sv.getLastOp() + " commit=" + sv.getCommit();
    }
    return s.length() > 100 ? s.substring(0, 100) : s;
  }

  private static String describe(Effects fx) {
    StringBuilder sb = new StringBuilder();
    if (!fx.persist.isEmpty()) {
      sb.append("persist ").append(fx.persist.get(0).getOp()).append("..").append(fx.persist.get(fx.persist.size() - 1).getOp()).append(" e").append(fx.logEpoch).append("; ");
    }
    if (!fx.apply.isEmpty()) {
      sb.append("apply ").append(fx.apply.get(0).getOp()).append("..").append(fx.apply.get(fx.apply.size() - 1).getOp()).append("; ");
    }
    if (fx.truncateLogAfter >= 0) {
      sb.append("truncAfter ").append(fx.truncateLogAfter).append("; ");
    }
    if (fx.persistView) {
      sb.append("view ").append(fx.view).append("/lnv ").append(fx.lastNormalView).append("; ");
    }
    for (Effects.Send s : fx.sends) {
      sb.append("send ").append(s.type()).append(" to ").append(s.to()).append(" v").append(s.view()).append(" [").append(brief(s.body())).append("]; ");
    }
    if (!fx.replies.isEmpty()) {
      sb.append(fx.replies.size()).append(" replies; ");
    }
    return sb.toString();
  }

  /** Storage work runs in order on the node's one storage thread: each task starts after the last. */
  private void storageTask(SimNode node, long durationNs, Runnable action) {
    long start = Math.max(now, node.storageFreeAtNs);
    node.storageFreeAtNs = start + durationNs;
    atNode(node, node.storageFreeAtNs - now, action);
  }

  private void applyEntries(SimNode node, List<Entry> entries) {
    List<Response> replies = node.stateMachine.apply(entries, false);
    for (Entry e : entries) {
      long hash = java.util.Arrays.hashCode(e.toByteArray());
      Long seen = entryHashAt.putIfAbsent(e.getOp(), hash);
      if (seen != null && seen != hash) {
        violations.add("replica " + node.id + " applied a different entry at op " + e.getOp() + " than another replica");
      }
    }
    long last = entries.get(entries.size() - 1).getOp();
    long checksum = node.stateMachine.checksum();
    Long seen = checksumAt.putIfAbsent(last, checksum);
    if (seen != null && seen != checksum) {
      violations.add("replica " + node.id + " has checksum " + Long.toHexString(checksum) + " at applied " + last
          + ", another had " + Long.toHexString(seen));
    }
    step(node, new Event.Applied(entries.get(0).getOp(), last, replies, checksum));
  }

  // ------------------------------------------------------------------ network

  private void send(int from, int to, long view, MessageType type, MessageLite body) {
    if (to == Effects.MULTICAST) {
      bump("multicast_sends");
      for (int id = 1; id < nodes.length; id++) {
        if (id != from) {
          deliver(from, id, view, type, body, true);
        }
      }
    } else {
      bump("unicast_sends");
      deliver(from, to, view, type, body, false);
    }
  }

  private void deliver(int from, int to, long view, MessageType type, MessageLite body, boolean multicast) {
    if (cut[from][to] || (multicast && multicastCut[to]) || (!multicast && (repairCut[to] || repairCut[from]))) {
      bump("dropped_partition");
      return;
    }
    if (random.nextDouble() < cfg.lossRate()) {
      bump("dropped_loss");
      return;
    }
    int copies = random.nextDouble() < cfg.duplicateRate() ? 2 : 1;
    for (int i = 0; i < copies; i++) {
      long delay = cfg.minDelayNs() + random.nextLong(Math.max(1, cfg.maxDelayNs() - cfg.minDelayNs()));
      SimNode target = nodes[to];
      atNode(target, delay, () -> step(target, new Event.Peer(from, view, type, body)));
    }
  }

  private void bump(String stat) {
    stats.merge(stat, 1L, Long::sum);
  }

  // ------------------------------------------------------------------ faults

  /** Replicas down or still recovering: at most one at a time may have lost its state (f >= 1). */
  private int downCount() {
    int down = 0;
    for (int id = 1; id < nodes.length; id++) {
      if (!nodes[id].up || nodes[id].core.mode() == ReplicaCore.Mode.RECOVERING || nodes[id].core.mustCatchUp()) {
        down++;
      }
    }
    return down;
  }

  private void isolate(int victim) {
    for (int id = 1; id < nodes.length; id++) {
      cut[id][victim] = true;
      cut[victim][id] = true;
    }
  }

  private void injectFault() {
    if (!faultsOn) {
      return;
    }
    healAll();
    SimNode primary = currentPrimary();
    int primaryId = primary == null ? 1 + random.nextInt(cfg.replicas()) : primary.id;
    List<Integer> backups = new ArrayList<>();
    for (int id = 1; id < nodes.length; id++) {
      if (id != primaryId) {
        backups.add(id);
      }
    }
    int victim = backups.get(random.nextInt(backups.size()));
    int kind = random.nextInt(11);
    switch (kind) {
      case 0 -> {
        isolate(victim);
        bump("fault_isolate_backup");
      }
      case 1 -> {
        multicastCut[victim] = true;
        bump("fault_cut_multicast");
      }
      case 2 -> {
        repairCut[victim] = true;
        bump("fault_cut_repair");
      }
      case 3, 4 -> {
        // kill -9 of a backup or of the primary; one replica down at a time
        int target = kind == 3 ? victim : primaryId;
        SimNode node = nodes[target];
        if (node.up && downCount() == 0) {
          crash(node);
          bump(kind == 3 ? "fault_crash_backup" : "fault_crash_primary");
          long downFor = 50 * MS + random.nextLong(1500 * MS);
          schedule(downFor, 0, 0, () -> restart(node));
        }
      }
      case 5 -> {
        // The primary cut off from every backup (clients still reach it): the others elect a new one.
        isolate(primaryId);
        bump("fault_isolate_primary");
      }
      case 6 -> {
        // one-way cut: the victim hears nothing from the primary, but can still talk to it
        cut[primaryId][victim] = true;
        bump("fault_one_way");
      }
      case 7 -> {
        // the primary hears nothing from anyone, but is still heard
        for (int id = 1; id < nodes.length; id++) {
          cut[id][primaryId] = true;
        }
        bump("fault_one_way_primary_deaf");
      }
      case 8 -> {
        // a majority/minority split (the primary on a random side)
        List<Integer> ids = new ArrayList<>();
        for (int id = 1; id < nodes.length; id++) {
          ids.add(id);
        }
        java.util.Collections.shuffle(ids, new java.util.Random(random.nextLong()));
        int minority = cfg.replicas() / 2;
        for (int i = 0; i < ids.size(); i++) {
          for (int j = 0; j < ids.size(); j++) {
            if ((i < minority) != (j < minority)) {
              cut[ids.get(i)][ids.get(j)] = true;
            }
          }
        }
        bump("fault_split");
      }
      case 9 -> {
        // flapping: the primary's links go down and up every few ms for a while
        bump("fault_flapping");
        int target = primaryId;
        for (int k = 0; k < 10; k++) {
          boolean down = k % 2 == 0;
          schedule(k * (20 * MS + random.nextLong(60 * MS)), 0, 0, () -> {
            if (faultsOn) {
              for (int id = 1; id < nodes.length; id++) {
                if (id != target) {
                  cut[id][target] = down;
                  cut[target][id] = down;
                }
              }
            }
          });
        }
      }
      default -> {
        // crash whoever is the new primary while a view change may be running
        if (downCount() == 0) {
          isolate(primaryId);
          long when = 500 * MS + random.nextLong(700 * MS);
          schedule(when, 0, 0, () -> {
            SimNode p = currentPrimary();
            if (faultsOn && p != null && p.id != primaryId && p.up && downCount() == 0) {
              crash(p);
              bump("fault_crash_new_primary");
              schedule(100 * MS + random.nextLong(900 * MS), 0, 0, () -> restart(p));
            }
          });
          bump("fault_isolate_then_crash_new_primary");
        }
      }
    }
    // Mostly short faults, and some longer than the election timeout.
    long duration = random.nextInt(3) == 0
        ? 600 * MS + random.nextLong(1500 * MS)
        : cfg.faultPeriodNs() / 2 + random.nextLong(cfg.faultPeriodNs());
    schedule(duration, 0, 0, this::healLinks);
    schedule(duration + cfg.faultPeriodNs(), 0, 0, this::injectFault);
  }

  /** Stops node by kill -9 or by a power loss, as the seed chooses. */
  private void crash(SimNode node) {
    boolean powerLoss = random.nextBoolean();
    bump(powerLoss ? "crash_power_loss" : "crash_process");
    node.crash(powerLoss, random);
  }

  private void restart(SimNode node) {
    if (!node.up) {
      node.start();
      step(node, new Event.Tick());
    }
  }

  private void healLinks() {
    for (boolean[] row : cut) {
      java.util.Arrays.fill(row, false);
    }
    java.util.Arrays.fill(multicastCut, false);
    java.util.Arrays.fill(repairCut, false);
  }

  private void healAll() {
    healLinks();
    for (int id = 1; id < nodes.length; id++) {
      SimNode node = nodes[id];
      if (!node.up && !faultsOn) {
        node.start();
        step(node, new Event.Tick());
      }
    }
  }

  // ------------------------------------------------------------------ clients

  /** One client: one operation at a time, retried with the same request id until its deadline. */
  private final class SimClient {
    final int index;
    final long clientId;
    int process;
    int opsLeft;
    long nextRequestId = 1;
    Request current;
    SimHistory.F f;
    String key;
    Long value;
    Long expected;
    long invokedAtNs;
    boolean maybeExecuted;
    int attempt;
    int target = 1;

    SimClient(int index, int process, long clientId, int ops) {
      this.index = index;
      this.process = process;
      this.clientId = clientId;
      this.opsLeft = ops;
    }

    boolean registered;
    boolean registering;

    boolean done() {
      return opsLeft == 0 && current == null;
    }
  }

  private void nextOp(SimClient c) {
    if (c.opsLeft == 0) {
      return;
    }
    c.key = "k" + random.nextInt(cfg.keys());
    long requestId = c.nextRequestId++;
    Request.Builder r = Request.newBuilder().setClientId(c.clientId).setRequestId(requestId)
        .setFirstIncomplete(requestId);
    if (!c.registered) {
      // Writes need a session (Raft thesis 6.3): the first request registers it, outside the history.
      c.registered = true;
      c.registering = true;
      c.current = r.setRegisterSession(io.choir.proto.RegisterSession.getDefaultInstance()).build();
      c.invokedAtNs = now;
      c.attempt = 0;
      attempt(c);
      return;
    }
    c.opsLeft--;
    ByteString key = ByteString.copyFromUtf8(c.key);
    int dice = random.nextInt(10);
    c.expected = null;
    if (dice < 4) {
      c.f = SimHistory.F.READ;
      c.value = null;
      r.setGet(Get.newBuilder().setKey(key));
    } else if (dice < 8) {
      c.f = SimHistory.F.WRITE;
      c.value = (long) random.nextInt(5);
      r.setPut(Put.newBuilder().setKey(key).setValue(ByteString.copyFromUtf8(String.valueOf(c.value))));
    } else {
      c.f = SimHistory.F.CAS;
      c.expected = (long) random.nextInt(5);
      c.value = (long) random.nextInt(5);
      r.setCompareAndSet(CompareAndSet.newBuilder().setKey(key)
          .setExpectedValue(ByteString.copyFromUtf8(String.valueOf(c.expected)))
          .setNewValue(ByteString.copyFromUtf8(String.valueOf(c.value))));
    }
    c.current = r.build();
    c.invokedAtNs = now;
    c.maybeExecuted = false;
    c.attempt = 0;
    history.invoke(c.process, c.f, c.key, c.f == SimHistory.F.READ ? null : c.value, c.expected, now);
    attempt(c);
  }

  private void attempt(SimClient c) {
    Request req = c.current;
    int attemptNo = ++c.attempt;
    SimNode primary = nodes[c.target];
    long delay = cfg.minDelayNs() + random.nextLong(Math.max(1, cfg.maxDelayNs() - cfg.minDelayNs()));
    if (primary.up) {
      if (req.getOpCase() != Request.OpCase.GET) {
        c.maybeExecuted = true;
      }
      atNode(primary, delay, () -> step(primary, new Event.ClientRequest(c.index, req)));
    } else {
      c.target = c.target % cfg.replicas() + 1; // connection refused: try the next replica
    }
    schedule(CLIENT_ATTEMPT_TIMEOUT_NS, 0, 0, () -> {
      if (c.current == req && c.attempt == attemptNo) {
        c.target = c.target % cfg.replicas() + 1; // no answer: try the next replica
        retryOrGiveUp(c);
      }
    });
  }

  private void retryOrGiveUp(SimClient c) {
    if (c.registering) {
      attempt(c); // a registration is retried until it succeeds (it is idempotent)
      return;
    }
    if (now - c.invokedAtNs >= CLIENT_OP_DEADLINE_NS) {
      // Unknown outcome: Jepsen's info. The process may still be executing, so a fresh one continues.
      history.complete(c.maybeExecuted ? SimHistory.Kind.INFO : SimHistory.Kind.FAIL, c.process, c.f, c.key,
          c.f == SimHistory.F.READ ? null : c.value, c.expected, now);
      bump("ops_info");
      if (c.maybeExecuted) {
        c.process = nextProcess++;
      }
      finishOp(c);
      return;
    }
    attempt(c);
  }

  private void finishOp(SimClient c) {
    c.current = null;
    // Think time spreads a run over a few simulated seconds, so faults come and go while it runs.
    schedule(random.nextLong(60 * MS), 0, 0, () -> nextOp(c));
  }

  private void replyToClient(SimNode node, long connectionId, Response r) {
    SimClient c = clients.get((int) connectionId);
    if (r.getStatus() == Status.OK && c.current != null && c.f != SimHistory.F.READ
        && r.getRequestId() == c.current.getRequestId()) {
      // Invariant: a write is acknowledged only once a majority has it on disk.
      long op = r.getVersion();
      int durable = 0;
      for (int id = 1; id < nodes.length; id++) {
        SimNode nd = nodes[id];
        long applied = nd.up ? nd.stateMachine.applied() : 0;
        if (nd.storage.lastLogOp() >= op || applied >= op) {
          durable++;
        }
      }
      if (!cfg.buffered() && durable < node.config.quorum()) {
        violations.add("write at op " + op + " acknowledged while only " + durable + " replicas had it on disk");
      }
    }
    long delay = cfg.minDelayNs() + random.nextLong(Math.max(1, cfg.maxDelayNs() - cfg.minDelayNs()));
    schedule(delay, 0, 0, () -> onReply(c, r));
  }

  private void onReply(SimClient c, Response r) {
    if (c.current == null || r.getRequestId() != c.current.getRequestId()) {
      return; // the answer to an earlier attempt of an op already completed
    }
    if (c.registering && r.getStatus() == Status.OK) {
      c.registering = false;
      c.current = null;
      schedule(0, 0, 0, () -> nextOp(c));
      return;
    }
    switch (r.getStatus()) {
      case OK, NOT_FOUND -> {
        Long read = null;
        if (c.f == SimHistory.F.READ && r.getStatus() == Status.OK) {
          read = Long.parseLong(r.getValue().toString(StandardCharsets.UTF_8));
        }
        history.complete(SimHistory.Kind.OK, c.process, c.f, c.key,
            c.f == SimHistory.F.READ ? read : c.value, c.expected, now);
        bump("ops_ok");
        finishOp(c);
      }
      case CAS_FAILED -> {
        history.complete(SimHistory.Kind.FAIL, c.process, c.f, c.key, c.value, c.expected, now);
        bump("ops_fail");
        finishOp(c);
      }
      case NOT_PRIMARY -> {
        bump("ops_redirect");
        if (!r.getPrimaryAddress().isEmpty()) {
          c.target = Integer.parseInt(r.getPrimaryAddress());
        } else {
          c.target = c.target % cfg.replicas() + 1;
        }
        int attemptNo = c.attempt;
        schedule(random.nextLong(5 * MS), 0, 0, () -> {
          if (c.current != null && c.attempt == attemptNo) {
            retryOrGiveUp(c);
          }
        });
      }
      case UNAVAILABLE, BUSY -> {
        bump("ops_retry_" + r.getStatus().name().toLowerCase(java.util.Locale.ROOT));
        if (r.getStatus() == Status.UNAVAILABLE) {
          c.target = c.target % cfg.replicas() + 1;
        }
        int attemptNo = c.attempt;
        schedule(20 * MS + random.nextLong(30 * MS), 0, 0, () -> {
          if (c.current != null && c.attempt == attemptNo) {
            retryOrGiveUp(c);
          }
        });
      }
      default -> violations.add("client " + c.index + " got " + r.getStatus() + ": " + r.getError());
    }
  }
}
