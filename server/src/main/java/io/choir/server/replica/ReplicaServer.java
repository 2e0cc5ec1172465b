package io.choir.server.replica;

import static io.choir.server.config.ServerConfig.CLIENT_FRAME_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.CLIENT_IDLE_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.CLIENT_WRITE_BUFFER_BYTES;
import static io.choir.server.config.ServerConfig.CLUSTER_ID;
import static io.choir.server.config.ServerConfig.DURABILITY;
import static io.choir.server.config.ServerConfig.ELECTION_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.EVENT_QUEUE_CAPACITY;
import static io.choir.server.config.ServerConfig.MAX_BATCH_ENTRIES;
import static io.choir.server.config.ServerConfig.MAX_CLIENT_SESSIONS;
import static io.choir.server.config.ServerConfig.MAX_CONNECTIONS;
import static io.choir.server.config.ServerConfig.MAX_CONNECTIONS_PER_ADDRESS;
import static io.choir.server.config.ServerConfig.MAX_DATAGRAM_BYTES;
import static io.choir.server.config.ServerConfig.MAX_FRAME_BYTES;
import static io.choir.server.config.ServerConfig.MAX_FRAME_BYTES_TOTAL;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_OPS;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_PER_CONNECTION;
import static io.choir.server.config.ServerConfig.MAX_REPLIES_PER_CLIENT;
import static io.choir.server.config.ServerConfig.MAX_REPLY_BYTES_PER_CONNECTION;
import static io.choir.server.config.ServerConfig.MAX_REPLY_BYTES_TOTAL;
import static io.choir.server.config.ServerConfig.MAX_SCAN_LIMIT;
import static io.choir.server.config.ServerConfig.MAX_SCAN_REPLY_BYTES;
import static io.choir.server.config.ServerConfig.READ_THREADS;
import static io.choir.server.config.ServerConfig.REPLICAS;
import static io.choir.server.config.ServerConfig.REPLICA_ID;
import static io.choir.server.config.ServerConfig.SESSION_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.SHUTDOWN_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.MAX_WATCHERS;
import static io.choir.server.config.ServerConfig.MAX_WATCHERS_PER_CONNECTION;
import static io.choir.server.config.ServerConfig.WATCH_BUFFER_BYTES;
import static io.choir.server.config.ServerConfig.WATCH_HISTORY_BYTES;
import static io.choir.server.config.ServerConfig.WATCH_HISTORY_EVENTS;

import com.google.protobuf.MessageLite;
import io.choir.proto.MessageType;
import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.config.CoreSettings;
import io.choir.server.config.ServerConfig;
import io.choir.server.config.TestSettings;
import io.choir.server.core.CoreConfig;
import io.choir.server.core.Event;
import io.choir.server.core.Membership;
import io.choir.server.core.RecoveredState;
import io.choir.server.core.ReplicaCore;
import io.choir.server.metrics.ReplicaMetrics;
import io.choir.server.metrics.ReplicaSnapshot;
import io.choir.server.net.ClientConnections;
import io.choir.server.net.LeaseReadGate;
import io.choir.server.net.ClientServer;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import io.choir.server.watch.WatchHub;
import io.choir.server.watch.WatchLimits;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ReplicaServer is one running replica process: storage, state machine, the core on its own thread
 * ({@link ReplicaLoop}), the storage stage, the other replicas' side ({@link ReplicaPeers}), the read
 * pool and the client listener, wired as DESIGN.md "Code shape" describes. Each part gets what it
 * needs when it is built: the {@link ReplicaInbox} comes first, so the storage stage, the transport
 * and the client listener that feed the loop are built before it, and the loop that drains it last.
 * {@link #start} recovers from the data folder (applied state, then the log above it) before serving.
 * {@link #close} shuts down gracefully: stop accepting, refuse new requests, let admitted writes finish
 * (at most shutdown_timeout_ms), then close storage.
 */
public final class ReplicaServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ReplicaServer.class);
  /**
   * Whether the log lane makes a log write durable with one synced write (true) or with a write and
   * then a WAL fsync (false, as the simulator steps them); see LogLane and docs/design.md.
   */
  static final boolean COMBINED_SYNC = false;
  /** How often the primary looks for leases whose deadline passed (the bound on a late expiry adds it). */
  static final long LEASE_CHECK_INTERVAL_MS = 50;

  private final ServerConfig config;
  /** A scan reply's pairs hold at most this: the setting, within a client frame with room to spare. */
  private final long scanReplyBytes;
  /** The replica's metrics (a Prometheus registry) and their HTTP endpoint (metrics_address). */
  private final ReplicaMetrics replicaMetrics;
  private final MeterRegistry metrics;
  private final Storage storage;
  private final KvStateMachine stateMachine;
  private final ReplicaCore core;
  private final StorageStage storageStage;
  /** The other replicas' side; null for a single replica, which has none. */
  private final ReplicaPeers peers;
  private final ReplicaStatusReport statusReport;
  private final ReplicaLoop loop;
  private final ClientConnections connections;
  private final ExecutorService readPool;
  private final ClientServer clientServer;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final CompletableFuture<Throwable> terminated = new CompletableFuture<>();
  private final Counter readsRefused;
  /** The primary's lease expiry (docs/lease.md); set once the loop runs. */
  private final LeaseExpiry leaseExpiry;
  private final WatchHub watches;

  private ReplicaServer(ServerConfig config) throws InterruptedException {
    long startNs = System.nanoTime();
    // Client TLS and the access file first: a replica that refuses them opens nothing.
    ClientServer.Security clientSecurity = ClientServer.Security.fromConfig(config);
    this.config = config;
    this.replicaMetrics = new ReplicaMetrics(config.get(CLUSTER_ID), config.get(REPLICA_ID), config.get(MAX_IN_FLIGHT_OPS),
        TimeUnit.MILLISECONDS.toNanos(config.get(ELECTION_TIMEOUT_MS)));
    this.metrics = replicaMetrics.registry();
    // At least 1: a bound of 0 would make storage return no pair at all (a first pair always fits).
    this.scanReplyBytes = Math.max(1, Math.min(config.get(MAX_SCAN_REPLY_BYTES), config.get(MAX_FRAME_BYTES) - 1024L));
    this.storage = RocksDbStorage.open(config.dataDir());
    ReplicaInbox inbox;
    LeaseReadGate leaseReads;
    try {
      // The state machine's own log changes (an install's truncation) go to the log lane, in order,
      // once the storage stage starts it; recovery's run here, before.
      LogLaneRunner logChanges = new LogLaneRunner();
      ApplyLaneStorage applyStorage = new ApplyLaneStorage(storage, logChanges);
      this.stateMachine = new KvStateMachine(applyStorage, config.get(MAX_CLIENT_SESSIONS), config.get(MAX_REPLIES_PER_CLIENT),
          config.get(SESSION_TIMEOUT_MS), config.get(ServerConfig.RECENT_VALUES_BYTES));
      // Before recovery: the entries it applies above the stored state are watch history too.
      this.watches = new WatchHub(watchLimits(config), metrics);
      stateMachine.changeListener(watches);
      RecoveredState recovered = Recovery.recover(storage, stateMachine,
          config.dataDir().toAbsolutePath().toString(), config.get(DURABILITY) == ServerConfig.Durability.BUFFERED,
          config.get(REPLICAS).size() > 1);
      // A real replica needs no replay, so its seed is the clock; the simulator seeds its own.
      CoreConfig coreConfig = CoreSettings.coreConfig(config, System.nanoTime() ^ config.get(REPLICA_ID));
      // The membership comes from the replica's own state once it has applied a change (DESIGN.md
      // "Membership"); the configured replicas are then only a seed of addresses.
      Membership membership = Membership.fromRecord(stateMachine.membership(), coreConfig.bootstrapMembership());
      if (membership.epoch() > 1 && !membership.voterIds().equals(coreConfig.replicaIds())) {
        log.atWarn().addKeyValue("epoch", membership.epoch()).addKeyValue("voters", membership.voterIds())
            .addKeyValue("configured", coreConfig.replicaIds()).log("the configured replicas differ from the membership");
      }
      this.core = new ReplicaCore(coreConfig, recovered, membership);
      this.readsRefused = metrics.counter("choir.reads.refused");
      AtomicInteger readThreadIds = new AtomicInteger();
      this.readPool = new ThreadPoolExecutor(config.get(READ_THREADS), config.get(READ_THREADS), 0,
          TimeUnit.MILLISECONDS, new ArrayBlockingQueue<>(config.get(EVENT_QUEUE_CAPACITY)), r -> {
            Thread t = new Thread(r, "choir-read-" + readThreadIds.incrementAndGet());
            t.setDaemon(true);
            return t;
          });
      this.connections = new ClientConnections(new ClientConnections.Limits(config.get(MAX_IN_FLIGHT_PER_CONNECTION),
          config.get(MAX_REPLY_BYTES_PER_CONNECTION),
          ClientConnections.Limits.totalReplyBytes(config.get(MAX_REPLY_BYTES_TOTAL)),
          config.get(MAX_CONNECTIONS_PER_ADDRESS), config.get(CLIENT_FRAME_TIMEOUT_MS),
          config.get(READ_THREADS), ClientConnections.Limits.totalFrameBytes(config.get(MAX_FRAME_BYTES_TOTAL))),
          readPool, this::read, stateMachine::readFromMemory, metrics);
      connections.watches(watches);
      leaseReads = new LeaseReadGate(config.get(ServerConfig.MAX_KEY_BYTES), stateMachine::applied, System::nanoTime,
          metrics, Math.max(1, config.get(ServerConfig.MAX_QUEUED_REQUESTS)),
          config.get(ServerConfig.READ_TIMEOUT_MS) * 1_000_000L);
      connections.leaseReads(leaseReads);
      // Built before everything that feeds the loop (storage stage, transport, client listener), so
      // each gets it when it is built; the loop that drains it comes last.
      inbox = new ReplicaInbox(config.get(EVENT_QUEUE_CAPACITY), core.view());
      // test_break_protocol: ack-before-fsync (a deliberate bug): log writes are reported persisted
      // without an fsync, while recover() still takes the data folder for an fsync one.
      boolean fsync = config.get(DURABILITY) == ServerConfig.Durability.FSYNC
          && !config.get(TestSettings.TEST_BREAK_PROTOCOL).equals("ack-before-fsync");
      this.storageStage = new StorageStage(storage, stateMachine, logChanges, fsync, COMBINED_SYNC,
          config.get(MAX_BATCH_ENTRIES), 1 << 16, storageEvents(inbox, leaseReads), this::fatal, replicaMetrics.storage());
      this.peers = config.get(REPLICAS).size() > 1
          ? ReplicaPeers.open(config, storage, stateMachine, storageStage::runApply, inbox, metrics)
          : null;
    } catch (SocketException e) {
      storage.close();
      throw new IllegalStateException("cannot open the peer transport: " + e.getMessage(), e);
    } catch (RuntimeException | InterruptedException e) {
      storage.close();
      throw e;
    }
    try {
      this.statusReport = new ReplicaStatusReport(config, core, storage, storageStage, connections, peers,
          metrics, startNs, watches, stateMachine);
      this.loop = new ReplicaLoop(inbox, executor(), statusReport::reply, System::nanoTime, replicaMetrics.loop(),
          leaseReads);
      storageStage.start();
      loop.start();
      this.leaseExpiry = new LeaseExpiry(stateMachine, new LeaseExpiry.Loop() {
        @Override
        public void runOnLoop(Runnable task) {
          inbox.runOnLoop(task);
        }

        @Override
        public boolean offer(long connectionId, Request request) {
          return inbox.offer(connectionId, request);
        }
      }, core::isPrimary, System::nanoTime, config.get(ELECTION_TIMEOUT_MS), metrics).start(LEASE_CHECK_INTERVAL_MS);
      serveMetrics(inbox);
      InetSocketAddress bind = new InetSocketAddress(config.listenHost(), config.self().client().port());
      if (bind.isUnresolved()) {
        // A DNS name that does not resolve yet (a pod's own name before it is ready): every address.
        log.atWarn().addKeyValue("host", config.listenHost())
            .log("the client host does not resolve (yet): the client port listens on every address");
        bind = new InetSocketAddress(config.self().client().port());
      }
      this.clientServer = new ClientServer(bind,
          new ClientServer.Limits(config.get(MAX_FRAME_BYTES), config.get(MAX_CONNECTIONS),
              config.get(CLIENT_IDLE_TIMEOUT_MS), config.get(CLIENT_WRITE_BUFFER_BYTES)),
          connections, inbox, 2, metrics, clientSecurity);
    } catch (RuntimeException | InterruptedException e) {
      replicaMetrics.close(); // its HTTP dispatcher thread would keep the JVM alive
      if (peers != null) {
        peers.close();
      }
      storage.close();
      throw e;
    }
    log.atInfo()
        .addKeyValue("id", config.get(REPLICA_ID))
        .addKeyValue("cluster", config.get(CLUSTER_ID))
        .addKeyValue("client", clientServer.localAddress())
        .addKeyValue("data", config.dataDir().toAbsolutePath())
        .addKeyValue("durability", config.get(DURABILITY).name().toLowerCase(Locale.ROOT))
        .addKeyValue("applied", stateMachine.applied())
        .addKeyValue("log", core.lastOp())
        .log("replica started");
    if (!config.get(TestSettings.TEST_BREAK_PROTOCOL).equals("off")) {
      log.atWarn().addKeyValue("test_break_protocol", config.get(TestSettings.TEST_BREAK_PROTOCOL))
          .log("TEST ONLY setting on: the protocol is broken on purpose, this replica is not safe");
    }
  }

  /** The queue gauges, and the metrics endpoint on metrics_address when it is set (docs/metrics.md). */
  private void serveMetrics(ReplicaInbox inbox) {
    Gauge.builder("choir.queue.requests", inbox, ReplicaInbox::queuedRequests)
        .description("Client requests queued for the replica loop").register(metrics);
    Gauge.builder("choir.queue.peer_messages", inbox, ReplicaInbox::queuedPeerMessages)
        .description("Peer messages queued for the replica loop").register(metrics);
    Gauge.builder("choir.queue.log_lane", storageStage, StorageStage::logQueued)
        .description("Tasks queued for the log lane").register(metrics);
    Gauge.builder("choir.queue.apply_lane", storageStage, StorageStage::applyQueued)
        .description("Tasks queued for the apply lane").register(metrics);
    Gauge.builder("choir.queue.reads", (ThreadPoolExecutor) readPool, p -> p.getQueue().size())
        .description("Reads queued for the read pool").register(metrics);
    InetSocketAddress address = config.metricsAddress();
    try {
      replicaMetrics.serve(address, new ReplicaMetrics.Probe() {
        @Override
        public CompletableFuture<ReplicaSnapshot> snapshot() {
          CompletableFuture<ReplicaSnapshot> f = new CompletableFuture<>();
          inbox.runOnLoop(() -> {
            try {
              f.complete(snapshotOnLoop());
            } catch (RuntimeException e) {
              f.completeExceptionally(e);
            }
          });
          return f;
        }

        @Override
        public String refusing() {
          String reason = loop.unavailableReason();
          return reason != null || !terminated.isDone() ? reason : "stopped";
        }
      });
    } catch (IOException e) {
      throw new IllegalStateException("cannot serve metrics_address " + address + ": " + e.getMessage(), e);
    }
    if (address != null) {
      log.atInfo().addKeyValue("address", replicaMetrics.address()).log("metrics, health and readiness served");
    }
  }

  /** What the metrics and /ready see of this replica (the loop's thread: it reads the core). */
  private ReplicaSnapshot snapshotOnLoop() {
    ReplicaStatus status = statusReport.reply(Request.getDefaultInstance()).getReplicaStatus();
    long silentNs = 0;
    if (peers != null && !core.isPrimary()) {
      long heard = replicaMetrics.loop().heardNs(core.primaryId());
      silentNs = heard == Long.MIN_VALUE ? Long.MAX_VALUE : System.nanoTime() - heard;
    }
    return new ReplicaSnapshot(status, core.logFirstOp(), core.pendingReads(), core.mustCatchUp(), peers != null,
        silentNs, loop.unavailableReason(), System.nanoTime());
  }

  private static WatchLimits watchLimits(ServerConfig config) {
    return new WatchLimits(config.get(WATCH_HISTORY_EVENTS), config.get(WATCH_HISTORY_BYTES),
        config.get(WATCH_BUFFER_BYTES), config.get(MAX_WATCHERS), config.get(MAX_WATCHERS_PER_CONNECTION),
        config.get(ServerConfig.MAX_KEY_BYTES));
  }

  /** The replica's watches (tests and status). */
  public WatchHub watches() {
    return watches;
  }

  /** Opens the data folder, recovers and starts serving. */
  public static ReplicaServer start(ServerConfig config) throws InterruptedException {
    return new ReplicaServer(config);
  }

  private Response read(Request request) {
    try {
      return stateMachine.read(request, config.get(MAX_SCAN_LIMIT), scanReplyBytes);
    } catch (RuntimeException e) {
      readsRefused.increment();
      log.atWarn().setCause(e).log("read failed");
      return Response.newBuilder().setRequestId(request.getRequestId()).setStatus(Status.UNAVAILABLE)
          .setError("read failed: " + e.getMessage()).build();
    }
  }

  /** The executor of the core's effects, through this replica's storage stage, peers and clients. */
  private EffectExecutor executor() {
    int maxDatagramBytes = config.get(MAX_DATAGRAM_BYTES);
    EffectExecutor.PeerPort peerPort = peers == null ? (to, view, type, body) -> { } : new EffectExecutor.PeerPort() {
      @Override
      public void send(int to, long view, MessageType type, MessageLite body) {
        peers.send(to, view, type, body);
      }

      @Override
      public void membersChanged(Membership membership) {
        peers.membersChanged(membership);
      }
    };
    EffectExecutor.StateTransferPort stateTransfers = peers == null
        ? from -> {
          throw new IllegalStateException("a single replica never fetches a state transfer");
        }
        : peers::fetchStateTransfer;
    return new EffectExecutor(core, new EffectExecutor.Ports(
        v -> ReplicaMeta.storeView(storage, v),
        storageStage.lanes(),
        peerPort,
        r -> onReadPool(() -> EffectExecutor.resendFromLog(storage, peerPort, maxDatagramBytes, r),
            () -> { }), // shutting down: the replica will NACK again
        stateTransfers,
        // Reads run on the read pool once their connection's replies drain (ClientConnections' bounds).
        read -> connections.read(read.connectionId(), read.request()),
        new EffectExecutor.ClientPort() {
          @Override
          public void reply(long connectionId, List<Response> responses) {
            if (connectionId == Event.ClientRequest.LEASE_EXPIRY_CONNECTION) {
              LeaseExpiry expiry = leaseExpiry;
              if (expiry != null) {
                expiry.answered(responses);
              }
            } else {
              connections.send(connectionId, responses);
            }
          }

          @Override
          public void pauseIntake(boolean paused) {
            connections.setIntakePaused(paused);
          }
        }));
  }

  /** Runs task on the read pool; runs refused (on this thread) when the pool refuses it. */
  private void onReadPool(Runnable task, Runnable refused) {
    try {
      readPool.execute(task);
    } catch (RejectedExecutionException e) {
      refused.run();
    }
  }

  /** The storage lanes' events go to the core; an Applied one also releases the reads waiting in the gate. */
  private static Consumer<Event> storageEvents(ReplicaInbox inbox, LeaseReadGate leaseReads) {
    return event -> {
      inbox.post(event);
      if (event instanceof Event.Applied a) {
        leaseReads.appliedTo(a.op());
      }
    };
  }

  private void fatal(Throwable t) {
    loop.refuseAll("replica stopped after a storage failure: " + t.getMessage());
    terminated.complete(t);
  }

  /** The address clients connect to (the real port). */
  public InetSocketAddress clientAddress() {
    return clientServer.localAddress();
  }

  /** Where /metrics, /health and /ready are served (the real port), or null when metrics_address is empty. */
  public InetSocketAddress metricsAddress() {
    return replicaMetrics.address();
  }

  public ServerConfig config() {
    return config;
  }

  /**
   * Completes when the replica stops by itself after a fatal error (with the cause), or with null after
   * {@link #close()}.
   */
  public CompletableFuture<Throwable> terminated() {
    return terminated;
  }

  /** Every counter, by name (tests and status). */
  public Map<String, Long> counters() {
    return statusReport.reply(Request.getDefaultInstance()).getReplicaStatus().getCountersMap();
  }

  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    log.atInfo().addKeyValue("id", config.get(REPLICA_ID)).log("replica shutting down");
    clientServer.stopAccepting();
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(config.get(SHUTDOWN_TIMEOUT_MS));
    // Let admitted writes commit and apply, so their clients get answers; new requests are refused.
    while (!loop.idle() && System.nanoTime() < deadline && !terminated.isDone()) {
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    loop.refuseAll("replica is shutting down");
    leaseExpiry.close();
    replicaMetrics.close();
    readPool.shutdown();
    try {
      readPool.awaitTermination(1, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    clientServer.close();
    if (peers != null) {
      peers.close();
    }
    loop.close();
    storageStage.close(config.get(SHUTDOWN_TIMEOUT_MS));
    if (!terminated.isDone()) {
      try {
        storage.sync();
        ReplicaMeta.markCleanShutdown(storage);
      } catch (RuntimeException e) {
        log.atWarn().setCause(e).log("could not record a clean shutdown");
      }
    }
    storage.close();
    terminated.complete(null);
    log.atInfo().addKeyValue("id", config.get(REPLICA_ID)).log("replica stopped");
  }
}
