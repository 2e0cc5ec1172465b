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
  private static final long CLIENT_OP_DEADLINE_NS = 2_000 * MS;
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
  private final int primaryId;
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
    this.cfg = cfg;
    this.random = new SplittableRandom(cfg.seed());
    List<Integer> ids = new ArrayList<>();
    for (int i = 1; i <= cfg.replicas(); i++) {
      ids.add(i);
    }
    nodes = new SimNode[cfg.replicas() + 1];
    for (int id : ids) {
      CoreConfig c = CoreConfig.builder(id, ids)
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
          .seed(cfg.seed())
          .build();
      nodes[id] = new SimNode(id, c);
    }
    primaryId = nodes[1].config.primaryOf(0);
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

  /** All replicas are up, at the primary's commit, and agree on the checksum. */
  private boolean converged() {
    SimNode p = nodes[primaryId];
    if (!p.up || p.core.lastOp() != p.core.commitOp() || p.core.appliedOp() != p.core.commitOp()) {
      return false;
    }
    for (int id = 1; id < nodes.length; id++) {
      SimNode n = nodes[id];
      if (!n.up || n.core.appliedOp() != p.core.appliedOp() || n.core.checksum() != p.core.checksum()) {
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

  private void step(SimNode node, Event event) {
    Effects fx = node.effects;
    fx.clear();
    node.core.step(event, now, fx);
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
    if (!fx.persist.isEmpty()) {
      List<Entry> entries = List.copyOf(fx.persist);
      storageTask(node, 50_000 + random.nextLong(450_000), () -> {
        node.storage.appendLog(entries, true);
        step(node, new Event.Persisted(entries.get(entries.size() - 1).getOp()));
      });
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
    long op = io.choir.server.storage.Bytes.bytesToLong(snap.getMeta(
        io.choir.server.statemachine.KvStateMachine.APPLIED_KEY.getBytes(StandardCharsets.UTF_8)));
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
    List<io.choir.proto.ClientRecord> clientRows = new ArrayList<>();
    for (Map.Entry<byte[], byte[]> e : snap.scanMeta(
        io.choir.server.statemachine.KvStateMachine.CLIENT_PREFIX.getBytes(StandardCharsets.UTF_8))) {
      try {
        clientRows.add(io.choir.proto.ClientRecord.parseFrom(e.getValue()));
      } catch (com.google.protobuf.InvalidProtocolBufferException ex) {
        throw new IllegalStateException(ex);
      }
    }
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

  private void injectFault() {
    if (!faultsOn) {
      return;
    }
    healAll();
    List<Integer> backups = new ArrayList<>();
    for (int id = 1; id < nodes.length; id++) {
      if (id != primaryId) {
        backups.add(id);
      }
    }
    int victim = backups.get(random.nextInt(backups.size()));
    int kind = random.nextInt(6);
    switch (kind) {
      case 0 -> {
        for (int id = 1; id < nodes.length; id++) {
          cut[id][victim] = true;
          cut[victim][id] = true;
        }
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
      case 3 -> {
        SimNode node = nodes[victim];
        if (node.up) {
          node.crash();
          bump("fault_crash_backup");
          long downFor = 50 * MS + random.nextLong(1500 * MS);
          schedule(downFor, 0, 0, () -> {
            if (!node.up) {
              node.start();
              step(node, new Event.Tick());
            }
          });
        }
      }
      case 4 -> {
        // The primary cut off from every backup (clients still reach it): it must stop acknowledging.
        for (int id = 1; id < nodes.length; id++) {
          if (id != primaryId) {
            cut[primaryId][id] = true;
            cut[id][primaryId] = true;
          }
        }
        bump("fault_isolate_primary");
      }
      default -> {
        // one-way cut: the victim hears nothing from the primary, but can still talk to it
        cut[primaryId][victim] = true;
        bump("fault_one_way");
      }
    }
    // Mostly short faults, and some longer than the quorum timeout (the primary must stop acknowledging).
    long duration = random.nextInt(4) == 0
        ? 600 * MS + random.nextLong(1500 * MS)
        : cfg.faultPeriodNs() / 2 + random.nextLong(cfg.faultPeriodNs());
    schedule(duration, 0, 0, this::healAll);
    schedule(duration + cfg.faultPeriodNs(), 0, 0, this::injectFault);
  }

  private void healAll() {
    for (boolean[] row : cut) {
      java.util.Arrays.fill(row, false);
    }
    java.util.Arrays.fill(multicastCut, false);
    java.util.Arrays.fill(repairCut, false);
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

    SimClient(int index, int process, long clientId, int ops) {
      this.index = index;
      this.process = process;
      this.clientId = clientId;
      this.opsLeft = ops;
    }

    boolean done() {
      return opsLeft == 0 && current == null;
    }
  }

  private void nextOp(SimClient c) {
    if (c.opsLeft == 0) {
      return;
    }
    c.opsLeft--;
    c.key = "k" + random.nextInt(cfg.keys());
    long requestId = c.nextRequestId++;
    Request.Builder r = Request.newBuilder().setClientId(c.clientId).setRequestId(requestId)
        .setFirstIncomplete(requestId);
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
    SimNode primary = nodes[primaryId];
    long delay = cfg.minDelayNs() + random.nextLong(Math.max(1, cfg.maxDelayNs() - cfg.minDelayNs()));
    if (primary.up) {
      if (req.getOpCase() != Request.OpCase.GET) {
        c.maybeExecuted = true;
      }
      atNode(primary, delay, () -> step(primary, new Event.ClientRequest(c.index, req)));
    }
    schedule(CLIENT_ATTEMPT_TIMEOUT_NS, 0, 0, () -> {
      if (c.current == req && c.attempt == attemptNo) {
        retryOrGiveUp(c);
      }
    });
  }

  private void retryOrGiveUp(SimClient c) {
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
        if (nodes[id].storage.lastLogOp() >= op) {
          durable++;
        }
      }
      if (durable < nodes[primaryId].config.quorum()) {
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
      case UNAVAILABLE, BUSY -> {
        bump("ops_retry_" + r.getStatus().name().toLowerCase(java.util.Locale.ROOT));
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
