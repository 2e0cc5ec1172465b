package io.choir.sim;

import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.config.CoreSettings;
import io.choir.server.core.CoreConfig;
import io.choir.server.core.Event;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/**
 * Simulation runs N replica processes and a few client processes in one thread on simulated time,
 * with a seeded random source for everything: network delay, loss, duplication and reordering,
 * partitions (whole links, only multicast, only the repair path, between the clients and a replica),
 * the interleaving of each replica's loop and two storage lanes, fsync latency, crashes (kill -9 or
 * power loss) and restarts, and client timing (FoundationDB-style deterministic simulation). The same
 * seed gives the same run, event for event (ReplayTest).
 *
 * <p>The replicas run the server's own code ({@link SimReplica}): recovery at every start, the effect
 * executor, the storage lanes, the core and the state machine, the state-transfer sender and receiver,
 * and the client endpoint's flow control. The clients run the client library's own code ({@link
 * SimClients}: {@code DeterministicClient}, the production dispatcher with its sessions, pipelining,
 * redirects, retries, attempt timeouts and deadlines). What is simulated: the scheduler and clock
 * ({@link SimScheduler}), the network ({@link SimNetwork}: datagrams, fragments and peer streams, routed
 * by the transport's own PeerRouting), reliable connections that a cut or crash breaks ({@link
 * SimStream}) for clients ({@link SimClientIo}), peer streams and state transfers ({@link
 * SimStateTransfer}), the faults ({@link SimFaults}) and the storage ({@code MemoryStorage}).
 *
 * <p>Checked while it runs: no two replicas apply different entries at one op, equal applied numbers
 * give equal checksums, a write is acknowledged only when a majority of the voters of its op's epoch
 * has it durable (synced: what a power loss keeps; {@link SimEpochs}), every core invariant (the core
 * throws), every restart finds a log without a hole (recovery refuses otherwise), and the client
 * throws only exceptions it documents. At the end, after
 * healing everything, every replica converges to the primary's commit with the same checksum and the
 * same data and client table. The client history, with each failure recorded as its exception
 * promises (ClientOutcomes), goes to the linearizability checker.
 */
public final class Simulation implements SimReplica.Host {
  static final long MS = 1_000_000L;
  static final boolean TRACE = Boolean.getBoolean("choir.sim.trace");
  private static final long CONVERGE_DEADLINE_NS = 30_000 * MS;
  private static final int MAX_EVENTS = 20_000_000;
  /** The datagram size of the simulated network (a typical MTU's worth), as max_datagram_bytes. */
  static final int MAX_DATAGRAM_BYTES = 1400;

  private final SimConfig cfg;
  private final SplittableRandom random;
  final SimScheduler clock = new SimScheduler();
  private final SimReplica[] nodes;
  final SimNetwork net;
  private final SimClients clients;
  private final SimFaults faults;
  private final SimStateTransfer stateTransfers;
  final SimHistory history = new SimHistory();
  private final List<String> violations = new ArrayList<>();
  private final SimTotals totals = new SimTotals();
  private final SimAgreement agreement;
  private final SimEpochs epochs;
  /** The watchers and the lease holders with their checks (null: a run without, the default). */
  private final SimWatches watches;
  private final SimLeases leases;

  /**
   * A deliberate bug of the simulated replica process outside its core, so that a test can prove the
   * checks catch it (as CoreConfig.Breakage does for the core's).
   */
  public enum SimBreakage {
    /** The protocol as designed. */
    NONE,
    /**
     * A replica's client endpoint drops outcome_unknown from its refusals: a primary that steps down
     * answers the requests it had logged (and may still commit) with a plain NOT_PRIMARY, which the
     * client takes for "not executed" (hole 2a as it was). The client's UnavailableException then
     * promises "not executed" for writes that did execute.
     */
    PLAIN_NOT_PRIMARY,
    /**
     * The peer transport without its TCP streams: a unicast message bigger than a datagram goes as UDP
     * fragments too (each lost on its own), as big messages all did before hole 2e was closed. A resend
     * of a 1 MiB entry then practically never arrives under loss.
     */
    UDP_ONLY_PEERS,
    /** (watches+leases runs) The watch output loses one response of events of a connection that stays up. */
    WATCH_DROPS_EVENT,
    /** (watches+leases runs) The primary's expiry also revokes leases half a second before their deadline. */
    LEASE_EXPIRES_EARLY
  }

  private final SimBreakage simBreakage;
  /** Watches the run (a scenario that injects its own fault at the right moment), or NONE. */
  private final SimObserver observer;
  /**
   * The message-level fuzz (null: none): it mutates peer messages while the clients run, and the run
   * then checks that no core fails, memory stays bounded, and after it stops that the cluster converges
   * and a final write commits everywhere. A fuzzed run's history is not linearizable in general (the
   * mutations are lies of members), so its test does not check that.
   */
  private final SimFuzz fuzz;
  /** True in a fuzzed run whose mutations include plausible lies (states may split for good). */
  private final boolean lying;

  public Simulation(SimConfig cfg) {
    this(cfg, b -> b, SimBreakage.NONE, null, SimObserver.NONE);
  }

  /** A simulation watched by observer (a scenario that injects its own fault at the right moment). */
  Simulation(SimConfig cfg, SimObserver observer) {
    this(cfg, b -> b, SimBreakage.NONE, null, observer);
  }

  /**
   * A simulation whose replicas' configuration is changed by {@code tweak} (tests that break the
   * protocol on purpose, e.g. {@code breakage}, to show the checks catch it).
   */
  public Simulation(SimConfig cfg, UnaryOperator<CoreConfig.Builder> tweak) {
    this(cfg, tweak, SimBreakage.NONE, null, SimObserver.NONE);
  }

  /**
   * A run of the message-level fuzz: the seed's run, with a share rate of the peer messages mutated
   * in flight ({@link SimMutator}) while the clients run. With lies, plausible lies are delivered too:
   * members that lie about commits, acknowledgements or logs may split the replicas' states for good
   * (VR does not survive Byzantine members), so such a run checks that no core fails, memory stays
   * bounded and the cluster serves again (one view, the final write applied at every replica), but not
   * equal checksums; without, only mutations the checks catch are delivered and the run must converge
   * to equal checksums, data and client tables.
   */
  public static Simulation fuzzed(SimConfig cfg, double rate, boolean lies) {
    return new Simulation(cfg, b -> b, SimBreakage.NONE, new SimMutator(cfg.seed(), rate, cfg.replicas(), lies),
        SimObserver.NONE);
  }

  /**
   * A simulation of membership changes: only replicas 1..bootstrapVoters are the configured replicas
   * (epoch 1); the others start empty as joiners, to be added while the run goes (DESIGN.md "Membership").
   */
  Simulation(SimConfig cfg, int bootstrapVoters, SimObserver observer) {
    this(cfg, b -> b, SimBreakage.NONE, null, observer, bootstrapVoters);
  }

  /** A simulation with a deliberate bug of the replica process outside the core. */
  public Simulation(SimConfig cfg, SimBreakage breakage) {
    this(cfg, b -> b, breakage, null, SimObserver.NONE);
  }

  /** A simulation with a deliberate bug of the replica process outside the core, watched by observer. */
  Simulation(SimConfig cfg, SimBreakage breakage, SimObserver observer) {
    this(cfg, b -> b, breakage, null, observer);
  }

  /** mutator: the message-level fuzz, or null for none. */
  private Simulation(SimConfig cfg, UnaryOperator<CoreConfig.Builder> tweak, SimBreakage breakage,
      SimMutator mutator, SimObserver observer) {
    this(cfg, tweak, breakage, mutator, observer, cfg.replicas());
  }

  private Simulation(SimConfig cfg, UnaryOperator<CoreConfig.Builder> tweak, SimBreakage breakage,
      SimMutator mutator, SimObserver observer, int bootstrapVoters) {
    this.cfg = cfg;
    this.simBreakage = breakage;
    this.observer = observer;
    this.fuzz = mutator == null ? null : new SimFuzz(mutator);
    this.lying = fuzz != null && fuzz.lies();
    this.agreement = new SimAgreement(lying, totals, clock, violations::add);
    this.random = new SplittableRandom(cfg.seed());
    List<Integer> ids = new ArrayList<>();
    for (int i = 1; i <= cfg.replicas(); i++) {
      ids.add(i);
    }
    nodes = new SimReplica[cfg.replicas() + 1];
    // The clocks' own source, so that every other draw of a seed stays what it was.
    SplittableRandom clockRandom = new SplittableRandom(cfg.seed() ^ 0xC10C4L);
    for (int id : ids) {
      Map<Integer, String> addresses = new HashMap<>();
      for (int a : ids) {
        addresses.put(a, SimClientIo.address(a));
      }
      CoreConfig c = tweak.apply(CoreSettings.defaults(id, ids.subList(0, bootstrapVoters))
          .clientAddresses(addresses)
          .maxDatagramBytes(MAX_DATAGRAM_BYTES)
          .heartbeatIntervalNs(50 * MS)
          .quorumTimeoutNs(500 * MS)
          .nackDelayNs(2 * MS)
          .nackBackoffMaxNs(100 * MS)
          .retransmitRingEntries(cfg.logRetentionOps() < 1000 ? 8 : 64)
          .logRetentionMinOps(cfg.logRetentionOps())
          .logRetentionMaxOps(cfg.logRetentionOps() * 2)
          .maxInFlightOps(256)
          .maxInFlightBytes(cfg.maxInFlightBytes())
          .readTimeoutNs(1_000 * MS)
          .maxClientSessions(cfg.maxClientSessions())
          .sessionTimeoutMs(cfg.sessionTimeoutMs())
          .resendAmplificationLimit(cfg.resendAmplificationLimit())
          .seed(cfg.seed()))
          .build();
      double rate = SimClocks.rate(clockRandom, c.leaseClockDriftPpm);
      nodes[id] = new SimReplica(id, c, this, cfg, rate, clockRandom.nextLong(1_000 * MS));
    }
    epochs = new SimEpochs(nodes[1].config.bootstrapMembership());
    net = new SimNetwork(cfg, clock, random, nodes, this::bump, MAX_DATAGRAM_BYTES,
        breakage == SimBreakage.UDP_ONLY_PEERS, mutator);
    clients = new SimClients(this, cfg, random);
    faults = new SimFaults(this, cfg, random, net);
    stateTransfers = new SimStateTransfer(this, cfg, random);
    if (cfg.watchLeases()) {
      watches = new SimWatches(this, cfg, violations::add, breakage == SimBreakage.WATCH_DROPS_EVENT);
      leases = new SimLeases(this, cfg, violations::add, breakage == SimBreakage.LEASE_EXPIRES_EARLY);
      watches.alsoTell(leases);
    } else {
      watches = null;
      leases = null;
    }
  }

  /** Runs the simulation to the end; returns the result with the history and any violation. */
  public SimResult run() {
    for (int id = 1; id <= cfg.replicas(); id++) {
      nodes[id].start();
    }
    clients.start();
    if (watches != null) {
      watches.start();
      leases.start();
    }
    faults.start();
    boolean clientsDone = false;
    long convergeDeadline = Long.MAX_VALUE;
    while (violations.isEmpty()) {
      if (clock.ran() > MAX_EVENTS) {
        violations.add("simulation did not finish within " + MAX_EVENTS + " events");
        break;
      }
      try {
        if (!clock.runNext()) {
          break;
        }
      } catch (RuntimeException e) {
        violations.add("exception at t=" + clock.now() / MS + "ms: " + e + stackTop(e));
        break;
      }
      observer.afterEvent(this);
      if (fuzz != null) {
        fuzz.checkBounds(nodes, clock.now(), violations::add);
      }
      if (!clientsDone && clients.allDone() && (leases == null || leases.holdersDone())) {
        clientsDone = true;
        faults.on = false;
        if (fuzz != null) {
          fuzz.stop();
        }
        healAll();
        convergeDeadline = clock.now() + CONVERGE_DEADLINE_NS;
      }
      if (clientsDone) {
        boolean converged = SimConvergence.converged(nodes, currentPrimary(), lying);
        if (converged && leases != null) {
          leases.convergedNs = Math.min(leases.convergedNs, clock.now());
          converged = leases.settled(currentPrimary()); // the leases' deadlines pass, their expiries commit
        }
        if (converged) {
          SimFuzz.Ending ending = fuzz == null ? SimFuzz.Ending.DONE
              : fuzz.afterConvergence(currentPrimary(), clock.now());
          if (ending == SimFuzz.Ending.WRITE_SENT) {
            continue;
          }
          if (ending == SimFuzz.Ending.DONE) {
            if (!lying) {
              violations.addAll(SimConvergence.stateDifferences(nodes));
            }
            break;
          }
        }
        if (clock.now() > convergeDeadline) {
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
      totals.noteCounters(nodes[id]);
    }
    if (watches != null && violations.isEmpty()) {
      checkWatchesAndLeases();
    }
    if (fuzz != null) {
      totals.noteFuzz(fuzz.mutator);
    }
    return new SimResult(cfg, history, violations, describeNodes(), totals.finish(clock));
  }

  /** The end of a watches+leases run: the watch and lease checks, and their figures in the totals. */
  private void checkWatchesAndLeases() {
    watches.check();
    leases.checkEnd(nodes);
    SimLeases.report(watches, leases, totals);
  }

  private static String stackTop(RuntimeException e) {
    StringBuilder sb = new StringBuilder();
    StackTraceElement[] st = e.getStackTrace();
    for (int i = 0; i < Math.min(8, st.length); i++) {
      sb.append("\n    at ").append(st[i]);
    }
    return sb.toString();
  }

  private String describeNodes() {
    StringBuilder sb = new StringBuilder();
    for (int id = 1; id < nodes.length; id++) {
      SimReplica n = nodes[id];
      sb.append("\n  node ").append(id).append(n.up ? " " + n.core : " down");
    }
    return sb.toString();
  }

  SimReplica node(int id) {
    return nodes[id];
  }

  /** Opens a connection between two endpoints (0: a client outside the replicas). */
  SimStream connect(int fromNode, int toNode) {
    return new SimStream(clock, net, nodes, fromNode, toNode);
  }

  void violation(String what) {
    violations.add(what);
  }

  long bump(String stat) {
    return totals.bump(stat);
  }

  /** The node that is primary in the highest view among the live ones, or null. */
  SimReplica currentPrimary() {
    SimReplica best = null;
    for (int id = 1; id < nodes.length; id++) {
      SimReplica n = nodes[id];
      if (n.up && n.core.isPrimary() && (best == null || n.core.view() > best.core.view())) {
        best = n;
      }
    }
    return best;
  }

  /** Stops node by kill -9 (false) or a power loss (true), keeping its counters for the totals. */
  void crash(SimReplica node, boolean powerLoss) {
    totals.noteCounters(node);
    node.crash(powerLoss, random);
  }

  /** The memberships the replicas applied, by epoch and op. */
  SimEpochs epochs() {
    return epochs;
  }

  /** The configuration of the run. */
  SimConfig config() {
    return cfg;
  }

  /** Stops the fault schedule (a scenario that ends its own fault). */
  SimFaults faults() {
    return faults;
  }

  /**
   * Stops node for good, by kill -9 (false) or a power loss (true): it never restarts, healing included,
   * and the end of the run does not wait for it (a voter that never comes back, to be replaced).
   */
  void crashForGood(SimReplica node, boolean powerLoss) {
    crash(node, powerLoss);
    node.gone = true;
  }

  void restart(SimReplica node) {
    if (!node.up && !node.gone) {
      node.start();
    }
  }

  void healAll() {
    net.healLinks();
    for (int id = 1; id < nodes.length; id++) {
      nodes[id].pause(false);
    }
    if (!faults.on) {
      for (int id = 1; id < nodes.length; id++) {
        restart(nodes[id]);
      }
    }
  }

  // ------------------------------------------------------------------ SimReplica.Host

  @Override
  public SimScheduler scheduler() {
    return clock;
  }

  @Override
  public SplittableRandom random() {
    return random;
  }

  @Override
  public void send(int from, int to, long view, MessageType type, MessageLite body) {
    net.send(from, to, view, type, body);
  }

  @Override
  public void fetchState(SimReplica node, int from) {
    stateTransfers.fetch(node, from);
  }

  @Override
  public void started(SimReplica node) {
    if (watches != null) {
      watches.attach(node);
      leases.attach(node);
    }
  }

  @Override
  public void applying(SimReplica node, List<Entry> entries) {
    agreement.applying(node, entries);
    if (leases != null) {
      leases.applying(entries);
    }
    epochs.applying(entries);
  }

  @Override
  public void applied(SimReplica node, Event.Applied applied) {
    agreement.applied(node, applied);
  }

  /**
   * Looks at every client reply: counts the session paths, applies the simulator's breakage, and checks
   * that a write is acknowledged only once a majority of the voters of the epoch its op was committed in
   * has it durable (fsync durability; {@link SimEpochs#ackViolation}).
   */
  @Override
  public Response replying(SimReplica node, Request.OpCase op, Response r) {
    observer.replying(this, node, op, r);
    if (r.getStatus() == Status.SESSION_EXPIRED) {
      bump("replies_session_expired");
    }
    if (op == Request.OpCase.REGISTER_SESSION) {
      bump(r.getStatus() == Status.OK ? "sessions_registered"
          : "registrations_" + r.getStatus().name().toLowerCase(Locale.ROOT));
    }
    if (r.getOutcomeUnknown()) {
      bump("replies_outcome_unknown");
      if (simBreakage == SimBreakage.PLAIN_NOT_PRIMARY) {
        r = r.toBuilder().setOutcomeUnknown(false).build();
      }
    }
    boolean write = switch (op) {
      case PUT, DELETE, COMPARE_AND_SET, BATCH -> true;
      default -> false;
    };
    if (cfg.buffered() || !write || r.getStatus() != Status.OK || fuzz != null) {
      // (A fuzzed run's members lie about acknowledgements: a write may be answered too early.)
      return r;
    }
    long at = r.getVersion();
    String violation = epochs.ackViolation(at, node.id, id -> nodes[id].storage.durablyHolds(at));
    if (violation != null) {
      violations.add(violation);
    }
    return r;
  }

  @Override
  public void intakePaused(SimReplica node, boolean paused) {
    if (paused) {
      bump("intake_paused");
    }
    observer.intakePaused(this, node, paused);
  }
}
