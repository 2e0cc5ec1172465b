package io.choir.sim;

import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.CoreConfig;
import io.choir.server.core.Effects;
import io.choir.server.core.Event;
import io.choir.server.core.LeaseReadWindow;
import io.choir.server.core.Membership;
import io.choir.server.core.RecoveredState;
import io.choir.server.core.ReplicaCore;
import io.choir.server.replica.ApplyLane;
import io.choir.server.replica.ApplyLaneStorage;
import io.choir.server.replica.EffectExecutor;
import io.choir.server.replica.LogLane;
import io.choir.server.replica.LogLaneRunner;
import io.choir.server.replica.Recovery;
import io.choir.server.replica.ReplicaMeta;
import io.choir.server.replica.StorageLanes;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.random.RandomGenerator;

/**
 * SimReplica is one simulated replica process running the server's own code: {@link Recovery} at
 * every start, the {@link EffectExecutor} with its burst policy, the storage stage's {@link LogLane}
 * and {@link ApplyLane} (with {@link ApplyLaneStorage} ordering an install's log truncation), the real
 * {@link ReplicaCore} and {@link KvStateMachine} over the in-memory storage twin. The process's
 * threads become actors on the {@link SimScheduler}: the replica loop (woken by an event or its next
 * timer), the two lanes (each doing one unit of work per step: take its inbox, write, fsync, report,
 * apply, run, with seeded random durations, so their writes interleave in every order the threads
 * allow) and the read pool. Its client endpoint behaves as ClientServer's: it reads a connection only
 * while the core has not paused intake (flow control) and the connection has fewer than
 * max_in_flight_per_connection requests unanswered; what it does not read waits on the connection. A
 * crash (kill -9 or power loss, {@link MemoryStorage}'s two models) bumps the incarnation, so
 * everything scheduled for the dead process is dropped.
 */
final class SimReplica {
  /** What the replica needs from the simulated world around it. */
  interface Host {
    SimScheduler scheduler();

    SplittableRandom random();

    /** Sends a peer datagram through the simulated network. */
    void send(int from, int to, long view, MessageType type, MessageLite body);

    /**
     * node is about to answer request (of this op) on a client connection with response: the checks
     * look at it, and a deliberate breakage of the simulator may change it (returns what is sent).
     */
    Response replying(SimReplica node, Request.OpCase op, Response response);

    /** node's core paused (true) or resumed (false) client intake (counted). */
    void intakePaused(SimReplica node, boolean paused);

    /** Starts a state transfer into node from replica from (the result comes back as an event). */
    void fetchState(SimReplica node, int from);

    /** The core asked to apply entries (checked: no two replicas apply different entries at an op). */
    void applying(SimReplica node, List<Entry> entries);

    /** The apply lane applied (checked: equal applied numbers give equal checksums). */
    void applied(SimReplica node, Event.Applied applied);

    /** node's process started, its state recovered (the watch hub and the lease expiry attach here). */
    default void started(SimReplica node) {}
  }

  static final long US = 1_000L;
  private static final long MAX_LOOP_WAIT_NS = 100_000 * US;
  /** The server's default max_in_flight_per_connection. */
  static final int MAX_IN_FLIGHT_PER_CONNECTION = 1024;

  final int id;
  final CoreConfig config;
  final Host host;
  final boolean buffered;
  private final SimConfig cfg;
  /** Log writes reported persisted after an fsync (false: buffered, or the ack-before-fsync breakage). */
  final boolean fsync;
  MemoryStorage storage = new MemoryStorage();
  KvStateMachine stateMachine;
  ReplicaCore core;
  StorageLanes lanes;
  boolean up;
  int incarnation;
  /** Stopped (SIGSTOP): its actions wait in the scheduler until it resumes; its sockets stay open. */
  boolean paused;
  /** Crashed for good ({@link Simulation#crashForGood}): it never starts again. */
  boolean gone;
  private EffectExecutor executor;
  private LaneActor logActor;
  private LaneActor applyActor;
  private final ArrayDeque<Event> inbox = new ArrayDeque<>();
  /** When the loop's one pending wake-up is due (Long.MAX_VALUE: none). */
  private long loopWakeAtNs = Long.MAX_VALUE;
  private final List<Event> burst = new ArrayList<>();
  /** Open client connections by id (the server's ClientConnections). */
  private final Map<Long, ClientConnection> connections = new HashMap<>();
  private long nextConnectionId;
  /** The core paused client intake (flow control): no connection is read meanwhile. */
  private boolean intakePaused;
  /** The core's lease read window as of its last burst (the server's LeaseReadGate). */
  private LeaseReadWindow leaseWindow = LeaseReadWindow.NONE;
  /** Reads answered under it since the last burst, told to the core at the next one. */
  private long servedOutside;
  private long sequentialOutside;
  /** Reads admitted under it while the applied number trailed its read index (the gate's waiting reads). */
  private final ArrayDeque<WaitingRead> waitingReads = new ArrayDeque<>();
  /** How many reads waited there in this incarnation (the simulator's totals). */
  long leaseReadsWaited;

  private record WaitingRead(long requiredOp, long sinceNs, long connectionId, Request request) {}

  /**
   * One client connection as ClientConnections and ClientHandler keep it: requests are read only while
   * intake is open and the connection has fewer than max_in_flight_per_connection unanswered (what is
   * not read waits in the socket, here {@code unread}, bounded by what the client has in flight).
   */
  private final class ClientConnection {
    final long id;
    final SimStream.End end;
    final ArrayDeque<Request> unread = new ArrayDeque<>();
    /** The op of each request read and not yet answered, by request id (what the checks need). */
    final Map<Long, Request.OpCase> ops = new HashMap<>();
    int inFlight;

    ClientConnection(long id, SimStream.End end) {
      this.id = id;
      this.end = end;
    }

    void readWhatItMay() {
      while (!unread.isEmpty() && !intakePaused && inFlight < MAX_IN_FLIGHT_PER_CONNECTION) {
        Request r = unread.poll();
        inFlight++;
        ops.put(r.getRequestId(), r.getOpCase());
        if (LeaseReadWindow.eligible(r, config.maxKeyBytes) && leaseWindow.admits(localNowNs(), stateMachine.applied())) {
          // The server's LeaseReadGate: under the lease, straight to the read pool, not through the core.
          servedOutside++;
          onReadPool(() -> reply(id, stateMachine.read(r, 1000)));
          continue;
        }
        if (LeaseReadWindow.eligibleSequential(r, config.maxKeyBytes)
            && leaseWindow.admitsSequential(stateMachine.applied(), r.getMinOp())) {
          sequentialOutside++; // the gate's sequential part: at any replica not recovering
          onReadPool(() -> reply(id, stateMachine.read(r, 1000)));
          continue;
        }
        if (LeaseReadWindow.eligible(r, config.maxKeyBytes) && leaseWindow.untilNs() != Long.MIN_VALUE
            && localNowNs() - leaseWindow.untilNs() < 0 && waitingReads.size() < Math.max(1, config.maxQueuedRequests)) {
          // Inside the window with the applied number behind its read index: it waits in the gate.
          servedOutside++;
          leaseReadsWaited++;
          waitingReads.add(new WaitingRead(leaseWindow.requiredOp(), localNowNs(), id, r));
          continue;
        }
        post(new Event.ClientRequest(id, r));
      }
    }
  }

  /**
   * This process's monotonic clock (System.nanoTime in the server): offsetNs + rate x simulated time,
   * the same across restarts (one machine). Its rate is drawn from the seed within the drift bound the
   * lease assumes (Simulation#clockRates), so lease reads are checked against clocks that disagree.
   */
  private final double clockRate;
  private final long clockOffsetNs;

  SimReplica(int id, CoreConfig config, Host host, SimConfig cfg) {
    this(id, config, host, cfg, 1.0, 0);
  }

  SimReplica(int id, CoreConfig config, Host host, SimConfig cfg, double clockRate, long clockOffsetNs) {
    if (!(clockRate > 0 && clockRate <= 1)) {
      throw new IllegalArgumentException("clock rate " + clockRate);
    }
    this.clockRate = clockRate;
    this.clockOffsetNs = clockOffsetNs;
    this.id = id;
    this.config = config;
    this.host = host;
    this.cfg = cfg;
    this.buffered = cfg.buffered();
    this.fsync = !buffered && config.breakage != CoreConfig.Breakage.ACK_BEFORE_FSYNC;
  }

  private SimScheduler clock() {
    return host.scheduler();
  }

  /** This process's monotonic clock now (what the core is stepped with). */
  long localNowNs() {
    return clockOffsetNs + (long) Math.floor(clock().now() * clockRate);
  }

  /** The simulated time until this process's clock has advanced by localNs (at least). */
  private long simulatedDelay(long localNs) {
    return clockRate == 1.0 ? localNs : (long) Math.ceil(localNs / clockRate) + 1;
  }

  double clockRate() {
    return clockRate;
  }

  /** Starts (or restarts) the process from what storage holds, with the server's own recovery. */
  void start() {
    incarnation++;
    // Recovery's log changes run here; once the log lane's actor exists, they run on it.
    LogLaneRunner logChanges = new LogLaneRunner();
    ApplyLaneStorage applyStorage = new ApplyLaneStorage(storage, logChanges);
    stateMachine = new KvStateMachine(applyStorage, cfg.maxClientSessions(), 1024, cfg.sessionTimeoutMs());
    RecoveredState recovered = Recovery.recover(storage, stateMachine, "node " + id, buffered, true);
    core = new ReplicaCore(config, recovered, Membership.fromRecord(stateMachine.membership(), config.bootstrapMembership()));
    host.started(this);
    int inc = incarnation;
    Consumer<Event> events = e -> {
      if (inc == incarnation) {
        if (e instanceof Event.Applied a) {
          host.applied(this, a);
        }
        post(e);
        if (e instanceof Event.Applied a) {
          releaseWaitingReads(a.op()); // the server's LeaseReadGate.appliedTo
        }
      }
    };
    LogLane logLane = new LogLane(storage, fsync, false, config.maxBatchEntries, events);
    ApplyLane applyLane = new ApplyLane(stateMachine, config.maxBatchEntries, events);
    logActor = new LaneActor(logLane::take, logLane::hasWork, logLane::next, logLane::step);
    applyActor = new LaneActor(applyLane::take, applyLane::hasWork, applyLane::next, applyLane::step);
    lanes = new StorageLanes(storage, fsync, logActor::put, applyActor::put, events);
    logChanges.laneStarted(logActor::runAndWait);
    EffectExecutor.PeerPort peers = (to, view, type, body) -> host.send(id, to, view, type, body);
    executor = new EffectExecutor(core, new EffectExecutor.Ports(
        v -> ReplicaMeta.storeView(storage, v),
        new EffectExecutor.StoragePort() {
          @Override
          public void truncateLogAfter(long op) {
            lanes.truncateLogAfter(op);
          }

          @Override
          public void persist(List<Entry> entries, long epoch) {
            lanes.persist(entries, epoch);
          }

          @Override
          public void storeLastNormalView(long lastNormalView, boolean caughtUp) {
            lanes.storeLastNormalView(lastNormalView, caughtUp);
          }

          @Override
          public void apply(List<Entry> entries) {
            host.applying(SimReplica.this, entries);
            lanes.apply(entries);
          }

          @Override
          public void truncateLogBefore(long op) {
            lanes.truncateLogBefore(op);
          }
        },
        peers,
        r -> onReadPool(() -> EffectExecutor.resendFromLog(storage, peers, config.maxDatagramBytes, r)),
        from -> host.fetchState(this, from),
        read -> onReadPool(() -> reply(read.connectionId(), stateMachine.read(read.request(), 1000))),
        new EffectExecutor.ClientPort() {
          @Override
          public void reply(long connectionId, List<Response> responses) {
            for (Response r : responses) {
              SimReplica.this.reply(connectionId, r);
            }
          }

          @Override
          public void pauseIntake(boolean paused) {
            host.intakePaused(SimReplica.this, paused);
            intakePaused = paused;
            if (!paused) {
              for (ClientConnection c : new ArrayList<>(connections.values())) {
                c.readWhatItMay();
              }
            }
          }
        }));
    executor.publishLeaseWindows(w -> {
      leaseWindow = w;
      expireWaitingReads();
    });
    leaseWindow = LeaseReadWindow.NONE;
    servedOutside = 0;
    sequentialOutside = 0;
    waitingReads.clear();
    leaseReadsWaited = 0;
    inbox.clear();
    connections.clear();
    intakePaused = false;
    loopWakeAtNs = Long.MAX_VALUE;
    up = true; // only now: a start that recovery refused leaves the process down
    // The server's loop starts with an empty burst: it applies what the log holds beyond applied.
    wakeLoop(0);
  }

  /**
   * The client endpoint (ClientServer): takes a new client connection; its requests go to the loop
   * as ClientRequest events with this connection's id, replies go back on it.
   */
  void acceptClient(SimStream.End serverEnd) {
    ClientConnection c = new ClientConnection(++nextConnectionId, serverEnd);
    connections.put(c.id, c);
    serverEnd.handle(m -> {
      c.unread.add((Request) m);
      c.readWhatItMay();
    }, why -> connections.remove(c.id));
  }

  /** The gate's waiting reads whose read index op reached go to the read pool, in arrival order. */
  private void releaseWaitingReads(long op) {
    while (!waitingReads.isEmpty() && waitingReads.peekFirst().requiredOp() <= op) {
      WaitingRead w = waitingReads.pollFirst();
      onReadPool(() -> reply(w.connectionId(), stateMachine.read(w.request(), 1000)));
    }
  }

  /** The gate's waiting reads older than the read timeout are refused (at each burst's end). */
  private void expireWaitingReads() {
    long now = localNowNs();
    while (!waitingReads.isEmpty() && now - waitingReads.peekFirst().sinceNs() - config.readTimeoutNs > 0) {
      WaitingRead w = waitingReads.pollFirst();
      reply(w.connectionId(), Response.newBuilder().setRequestId(w.request().getRequestId())
          .setStatus(Status.UNAVAILABLE).setError("the read timed out waiting for the applied state").build());
    }
  }

  private void reply(long connectionId, Response r) {
    ClientConnection c = connections.get(connectionId);
    if (c == null) {
      return; // the connection closed: the reply is dropped (choir.replies.dropped)
    }
    Request.OpCase op = c.ops.remove(r.getRequestId());
    Response sent = host.replying(this, op == null ? Request.OpCase.OP_NOT_SET : op, r);
    c.end.send(sent);
    c.inFlight = Math.max(0, c.inFlight - 1);
    c.readWhatItMay();
  }

  /** A read-pool thread picks task up shortly. */
  private void onReadPool(Runnable task) {
    clock().after(2 * US + host.random().nextLong(30 * US), this, task);
  }

  /** Hands an event to the replica loop (as the storage stage, the transport or a client does). */
  void post(Event event) {
    inbox.add(event);
    wakeLoop(host.random().nextLong(5 * US));
  }

  /** Makes the loop run a burst delayNs from now, unless it runs sooner anyway. */
  private void wakeLoop(long delayNs) {
    long at = clock().now() + delayNs;
    if (at >= loopWakeAtNs) {
      return;
    }
    loopWakeAtNs = at;
    clock().after(delayNs, this, () -> {
      if (loopWakeAtNs == at) {
        runBurst();
      }
    });
  }

  /** One turn of ReplicaLoop.run: drain a burst, step it, Tick, execute, wait for the next timer. */
  private void runBurst() {
    loopWakeAtNs = Long.MAX_VALUE;
    long now = localNowNs();
    while (!inbox.isEmpty() && burst.size() < EffectExecutor.MAX_BURST) {
      burst.add(inbox.poll());
    }
    Effects fx = executor.begin();
    if (servedOutside > 0 || sequentialOutside > 0) {
      executor.step(new Event.LeaseReadsServed(servedOutside, sequentialOutside), now);
      servedOutside = 0;
      sequentialOutside = 0;
    }
    for (Event e : burst) {
      executor.step(e, now);
    }
    long nextTickNs = executor.end(now);
    if (Simulation.TRACE) {
      SimTrace.burst(clock().now(), id, burst, fx, core);
    }
    burst.clear();
    if (!inbox.isEmpty()) {
      wakeLoop(0);
    } else {
      long wait = nextTickNs == Long.MAX_VALUE ? MAX_LOOP_WAIT_NS : simulatedDelay(Math.min(MAX_LOOP_WAIT_NS, Math.max(0, nextTickNs - now)));
      wakeLoop(Math.min(wait, MAX_LOOP_WAIT_NS));
    }
  }

  /** Runs action on the apply lane (a step of a state-transfer install). */
  void runApply(String what, Runnable action) {
    lanes.runApply(what, action);
  }

  /** True when nothing waits on either lane (a quiet storage stage). */
  boolean lanesIdle() {
    return logActor.idle() && applyActor.idle();
  }

  /**
   * The process stops: kill -9 (every completed write survives) or a power loss (the synced writes
   * and a prefix, chosen by random, of the unsynced ones). Queued lane work is lost either way.
   */
  /** Stops the process (SIGSTOP) or lets it go on (SIGCONT): time runs on meanwhile, it does nothing. */
  void pause(boolean stop) {
    if (paused == stop) {
      return;
    }
    paused = stop;
    if (!stop) {
      clock().resume(this);
    }
  }

  void crash(boolean powerLoss, RandomGenerator random) {
    paused = false;
    if (Simulation.TRACE) {
      System.out.println((powerLoss ? "POWER LOSS n" : "CRASH n") + id + " " + core);
    }
    if (!powerLoss) {
      // The OS closes a killed process's sockets: its peers hear of it at once. After a power loss
      // they hear nothing, and find out when they send or time out.
      for (ClientConnection c : connections.values()) {
        c.end.close();
      }
    }
    connections.clear();
    leaseWindow = LeaseReadWindow.NONE;
    waitingReads.clear();
    up = false;
    incarnation++;
    clock().resume(this); // what a pause held belongs to the dead process: dropped
    storage = powerLoss ? storage.powerLoss(random) : storage.processCrash();
    core = null;
    stateMachine = null;
    executor = null;
    lanes = null;
  }

  /**
   * One storage lane's thread as an actor: what is put waits in the inbox; each step the actor either
   * takes the inbox (when the lane has no work left) or does the lane's next unit, after a random
   * duration that depends on the unit (an fsync takes longest).
   */
  private final class LaneActor {
    private final ArrayDeque<StorageLanes.Task> waiting = new ArrayDeque<>();
    private final Consumer<Collection<StorageLanes.Task>> take;
    private final BooleanSupplier hasWork;
    private final Supplier<StorageLanes.Unit> next;
    private final Runnable step;
    private boolean scheduled;

    LaneActor(Consumer<Collection<StorageLanes.Task>> take, BooleanSupplier hasWork,
        Supplier<StorageLanes.Unit> next, Runnable step) {
      this.take = take;
      this.hasWork = hasWork;
      this.next = next;
      this.step = step;
    }

    void put(StorageLanes.Task task) {
      waiting.add(task);
      schedule();
    }

    boolean idle() {
      return waiting.isEmpty() && !hasWork.getAsBoolean();
    }

    private void schedule() {
      if (scheduled || idle()) {
        return;
      }
      scheduled = true;
      clock().after(duration(hasWork.getAsBoolean() ? next.get() : StorageLanes.Unit.IDLE), SimReplica.this, () -> {
        scheduled = false;
        act();
        schedule();
      });
    }

    private void act() {
      if (hasWork.getAsBoolean()) {
        step.run();
      } else if (!waiting.isEmpty()) {
        take.accept(new ArrayList<>(waiting));
        waiting.clear();
      }
    }

    /**
     * Runs action on this lane after what waits before it, and returns once it ran: the waiting lane
     * (the apply lane, for an install's log truncation) does nothing meanwhile, so this lane's steps
     * run here and now, which is one of the orders the real threads allow.
     */
    void runAndWait(String what, Runnable action) {
      CompletableFuture<Void> ran = new CompletableFuture<>();
      put(new StorageLanes.Run(what, () -> {
        action.run();
        ran.complete(null);
      }));
      while (!ran.isDone()) {
        act();
      }
    }

    private long duration(StorageLanes.Unit unit) {
      SplittableRandom r = host.random();
      return switch (unit) {
        case IDLE -> 2 * US + r.nextLong(20 * US); // the thread wakes and takes its queue
        case WRITE -> cfg.slowDisk() ? 50 * US + r.nextLong(2_000 * US) : 5 * US + r.nextLong(20 * US);
        case SYNC -> cfg.slowDisk() ? 1_000 * US + r.nextLong(4_000 * US) : 50 * US + r.nextLong(450 * US);
        case REPORT -> US;
        case APPLY -> 10 * US + r.nextLong(40 * US);
        case RUN -> US + r.nextLong(10 * US);
      };
    }
  }
}
