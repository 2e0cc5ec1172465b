package io.choir.server.replica;

import static io.choir.server.config.ServerConfig.CLIENT_FRAME_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.CLIENT_IDLE_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.CLIENT_WRITE_BUFFER_BYTES;
import static io.choir.server.config.ServerConfig.CLUSTER_ID;
import static io.choir.server.config.ServerConfig.DURABILITY;
import static io.choir.server.config.ServerConfig.EVENT_QUEUE_CAPACITY;
import static io.choir.server.config.ServerConfig.MAX_BATCH_BYTES;
import static io.choir.server.config.ServerConfig.MAX_BATCH_ENTRIES;
import static io.choir.server.config.ServerConfig.MAX_CLIENT_SESSIONS;
import static io.choir.server.config.ServerConfig.MAX_CONNECTIONS;
import static io.choir.server.config.ServerConfig.MAX_CONNECTIONS_PER_ADDRESS;
import static io.choir.server.config.ServerConfig.MAX_DATAGRAM_BYTES;
import static io.choir.server.config.ServerConfig.MAX_FRAME_BYTES;
import static io.choir.server.config.ServerConfig.MAX_FRAME_BYTES_TOTAL;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_BYTES;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_OPS;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_PER_CONNECTION;
import static io.choir.server.config.ServerConfig.MAX_PEER_HANDSHAKES;
import static io.choir.server.config.ServerConfig.MAX_REPLIES_PER_CLIENT;
import static io.choir.server.config.ServerConfig.MAX_REPLY_BYTES_PER_CONNECTION;
import static io.choir.server.config.ServerConfig.MAX_REPLY_BYTES_TOTAL;
import static io.choir.server.config.ServerConfig.MAX_SCAN_LIMIT;
import static io.choir.server.config.ServerConfig.MAX_SCAN_REPLY_BYTES;
import static io.choir.server.config.ServerConfig.MULTICAST_GROUP;
import static io.choir.server.config.ServerConfig.MULTICAST_INTERFACE;
import static io.choir.server.config.ServerConfig.MULTICAST_TTL;
import static io.choir.server.config.ServerConfig.PEER_HANDSHAKE_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.READ_THREADS;
import static io.choir.server.config.ServerConfig.RECEIVE_BUFFER_BYTES;
import static io.choir.server.config.ServerConfig.REPLICAS;
import static io.choir.server.config.ServerConfig.REPLICA_ID;
import static io.choir.server.config.ServerConfig.SESSION_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.SHUTDOWN_TIMEOUT_MS;

import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.config.CoreSettings;
import io.choir.server.config.ServerConfig;
import io.choir.server.config.TestSettings;
import io.choir.server.core.CoreConfig;
import io.choir.server.core.RecoveredState;
import io.choir.server.core.ReplicaCore;
import io.choir.server.net.ClientConnections;
import io.choir.server.net.ClientServer;
import io.choir.server.net.PeerTransport;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ReplicaServer is one running replica process: storage, state machine, the core on its own thread,
 * the storage stage, the read pool and the client listener, wired as DESIGN.md "Code shape" describes.
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

  private final ServerConfig config;
  /** A scan reply's pairs hold at most this: the setting, within a client frame with room to spare. */
  private final long scanReplyBytes;
  private final MeterRegistry metrics = new SimpleMeterRegistry();
  private final Storage storage;
  private final KvStateMachine stateMachine;
  private final ReplicaCore core;
  private final StorageStage storageStage;
  private final ReplicaLoop loop;
  private final ClientConnections connections;
  private final ExecutorService readPool;
  private final ClientServer clientServer;
  private volatile PeerTransport transport;
  private io.choir.server.net.StateTransferServer stateTransferServer;
  private io.choir.server.net.StateTransferClient stateTransferClient;
  private final Map<Integer, InetSocketAddress> peerAddresses = new java.util.HashMap<>();
  private final long startNs = System.nanoTime();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final CompletableFuture<Throwable> terminated = new CompletableFuture<>();
  private final Counter readsRefused;

  private ReplicaServer(ServerConfig config) throws InterruptedException {
    // Client TLS and the access file first: a replica that refuses them opens nothing.
    ClientServer.Security clientSecurity = ClientServer.Security.fromConfig(config);
    this.config = config;
    // At least 1: a bound of 0 would make storage return no pair at all (a first pair always fits).
    this.scanReplyBytes = Math.max(1, Math.min(config.get(MAX_SCAN_REPLY_BYTES), config.get(MAX_FRAME_BYTES) - 1024L));
    this.storage = RocksDbStorage.open(config.dataDir());
    try {
      // The state machine's own log changes (an install's truncation) go to the log lane, in order.
      ApplyLaneStorage applyStorage = new ApplyLaneStorage(storage);
      this.stateMachine = new KvStateMachine(applyStorage, config.get(MAX_CLIENT_SESSIONS), config.get(MAX_REPLIES_PER_CLIENT),
          config.get(SESSION_TIMEOUT_MS));
      RecoveredState recovered = Recovery.recover(storage, stateMachine,
          config.dataDir().toAbsolutePath().toString(), config.get(DURABILITY) == ServerConfig.Durability.BUFFERED,
          config.get(REPLICAS).size() > 1);
      // A real replica needs no replay, so its seed is the clock; the simulator seeds its own.
      CoreConfig coreConfig = CoreSettings.coreConfig(config, System.nanoTime() ^ config.get(REPLICA_ID));
      this.core = new ReplicaCore(coreConfig, recovered);
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
          readPool, this::read, metrics);
      ReplicaLoop[] loopRef = new ReplicaLoop[1];
      // test_break_protocol: ack-before-fsync (a deliberate bug): log writes are reported persisted
      // without an fsync, while recover() still takes the data folder for an fsync one.
      boolean fsync = config.get(DURABILITY) == ServerConfig.Durability.FSYNC
          && !config.get(TestSettings.TEST_BREAK_PROTOCOL).equals("ack-before-fsync");
      this.storageStage = new StorageStage(storage, stateMachine, applyStorage, fsync, COMBINED_SYNC,
          config.get(MAX_BATCH_ENTRIES), 1 << 16, e -> loopRef[0].post(e), this::fatal);
      int maxDatagramBytes = config.get(MAX_DATAGRAM_BYTES);
      EffectExecutor.PeerPort peerPort = (to, view, type, body) -> {
        PeerTransport t = transport;
        if (t != null) {
          t.send(to, view, type, body);
        }
      };
      EffectExecutor executor = new EffectExecutor(core, new EffectExecutor.Ports(
          v -> ReplicaMeta.storeView(storage, v),
          storageStage.lanes(),
          peerPort,
          r -> onReadPool(() -> EffectExecutor.resendFromLog(storage, peerPort, maxDatagramBytes, r),
              () -> { }), // shutting down: the replica will NACK again
          this::stateTransfer,
          // Reads run on the read pool once their connection's replies drain (ClientConnections' bounds).
          read -> connections.read(read.connectionId(), read.request()),
          new EffectExecutor.ClientPort() {
            @Override
            public void reply(long connectionId, java.util.List<Response> responses) {
              connections.send(connectionId, responses);
            }

            @Override
            public void pauseIntake(boolean paused) {
              connections.setIntakePaused(paused);
            }
          }));
      this.loop = new ReplicaLoop(executor, this::status, System::nanoTime, config.get(EVENT_QUEUE_CAPACITY));
      loopRef[0] = loop;
      if (config.get(REPLICAS).size() > 1) {
        Map<Integer, InetSocketAddress> peers = new java.util.HashMap<>();
        config.get(REPLICAS).forEach(r -> peers.put(r.id(), r.peer().toSocketAddress()));
        var group = io.choir.server.config.ReplicaAddress.HostPort.parse(config.get(MULTICAST_GROUP));
        // A new datagram epoch for this start, synced before the first datagram (nonces never repeat).
        long datagramEpoch = io.choir.server.security.DatagramEpochs.advance(storage,
            System.currentTimeMillis() / 1000);
        this.transport = new PeerTransport(new PeerTransport.Settings(config.get(REPLICA_ID), config.clusterIdHash(),
            peers, group.toSocketAddress(), config.get(MULTICAST_INTERFACE),
            config.get(MULTICAST_TTL), config.get(MAX_DATAGRAM_BYTES),
            config.get(RECEIVE_BUFFER_BYTES),
            config.get(TestSettings.TEST_MULTICAST_LOSS_PERCENT), config.get(TestSettings.TEST_FAULT_FILE),
            io.choir.server.net.PeerRouting.maxReassembledBytes(config.get(MAX_BATCH_BYTES)),
            io.choir.server.net.PeerRouting.maxStreamFrameBytes(config.get(MAX_IN_FLIGHT_BYTES), config.get(MAX_IN_FLIGHT_OPS),
                config.get(MAX_BATCH_BYTES)),
            PeerTransport.Settings.DEFAULT_STREAM_BUFFER_BYTES),
            config.clusterKeys(), datagramEpoch, loop, metrics);
        peerAddresses.putAll(peers);
        // The peer TCP port (state transfers, peer streams), both ends: proven with the cluster key,
        // or without one only from member hosts.
        var peerTcp = new io.choir.server.net.PeerTcpAuth(config.get(REPLICA_ID), config.clusterIdHash(), peers,
            config.clusterKeys(), config.get(PEER_HANDSHAKE_TIMEOUT_MS),
            config.get(MAX_PEER_HANDSHAKES), metrics);
        transport.authenticateStreams(peerTcp);
        this.stateTransferClient = new io.choir.server.net.StateTransferClient(
            io.choir.server.net.StateTransferClient.Limits.defaults(), peerTcp);
        this.stateTransferServer = new io.choir.server.net.StateTransferServer(
            config.self().peer().toSocketAddress(), config.get(REPLICA_ID), config.clusterIdHash(),
            peers.keySet(), loop::view, storage, io.choir.server.net.StateTransferServer.Limits.defaults(), 1,
            transport.streamSink(), peerTcp);
      } else {
        this.transport = null;
        this.stateTransferClient = null; // a single replica never fetches
      }
      storageStage.start();
      loop.start();
      InetSocketAddress bind = new InetSocketAddress(config.listenHost(), config.self().client().port());
      this.clientServer = new ClientServer(bind,
          new ClientServer.Limits(config.get(MAX_FRAME_BYTES), config.get(MAX_CONNECTIONS),
              config.get(CLIENT_IDLE_TIMEOUT_MS), config.get(CLIENT_WRITE_BUFFER_BYTES)),
          connections, loop, 2, metrics, clientSecurity);
    } catch (java.net.SocketException e) {
      if (transport != null) {
        transport.close();
      }
      storage.close();
      throw new IllegalStateException("cannot open the peer transport: " + e.getMessage(), e);
    } catch (RuntimeException | InterruptedException e) {
      if (stateTransferServer != null) {
        stateTransferServer.close();
      }
      if (stateTransferClient != null) {
        stateTransferClient.close();
      }
      if (transport != null) {
        transport.close();
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

  /** Builds the status reply; runs on the replica loop's thread (it reads the core). */
  private Response status(Request request) {
    ReplicaStatus.Builder s = ReplicaStatus.newBuilder()
        .setId(config.get(REPLICA_ID))
        .setRole(core.role())
        .setView(core.view())
        .setOp(core.lastOp())
        .setCommit(core.commitOp())
        .setApplied(core.appliedOp())
        .setChecksum(core.checksum())
        .setUptimeMs(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs))
        .setClusterId(config.get(CLUSTER_ID))
        .setPrimaryId(core.primaryId())
        .setDurability(config.get(DURABILITY).name().toLowerCase(Locale.ROOT))
        .setKeys(storage.approximateKeyCount())
        .setVersion(version());
    var c = core.counters();
    s.putCounters("requests", c.requests)
        .putCounters("writes", c.writes)
        .putCounters("reads", c.reads)
        .putCounters("busy", c.busy)
        .putCounters("invalid", c.invalid)
        .putCounters("too_large", c.tooLarge)
        .putCounters("duplicates", c.duplicates)
        .putCounters("read_timeouts", c.readTimeouts)
        .putCounters("log_batches", c.batches)
        .putCounters("fsyncs", storageStage.fsyncs())
        .putCounters("connections", connections.size())
        .putCounters("client_reply_bytes", connections.replyBytes())
        .putCounters("client_frame_bytes", connections.frameBytesHeld())
        .putCounters("direct_memory_netty_bytes", io.choir.server.net.DirectMemory.netty())
        .putCounters("direct_memory_jdk_bytes", io.choir.server.net.DirectMemory.jdk())
        .putCounters("queued_writes", core.queuedWrites())
        .putCounters("lag", core.lag())
        .putCounters("not_primary", c.notPrimary)
        .putCounters("no_quorum", c.noQuorum)
        .putCounters("prepares_sent", c.preparesSent)
        .putCounters("heartbeats_sent", c.heartbeatsSent)
        .putCounters("nacks_sent", c.nacksSent)
        .putCounters("nacks_received", c.nacksReceived)
        .putCounters("retransmits", c.retransmits)
        .putCounters("retransmits_multicast", c.retransmitsMulticast)
        .putCounters("retransmits_from_log", c.retransmitsFromLog)
        .putCounters("gaps", c.gapsDetected)
        .putCounters("duplicate_entries", c.duplicateEntries)
        .putCounters("out_of_order_dropped", c.outOfOrderDropped)
        .putCounters("dropped_stale_view", c.droppedStaleView)
        .putCounters("dropped_future_view", c.droppedFutureView)
        .putCounters("dropped_unexpected", c.droppedUnexpected)
        .putCounters("state_transfers", c.stateTransfers)
        .putCounters("view_changes", core.viewChanges())
        .putCounters("view_changes_started", c.viewChangesStarted)
        .putCounters("last_view_change_unix_ms", core.lastViewChangeNs() < 0 ? 0
            : System.currentTimeMillis() - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - core.lastViewChangeNs()))
        .putCounters("last_normal_view", core.lastNormalView())
        .putCounters("read_rounds", c.readRounds)
        .putCounters("pre_votes_started", c.preVotesStarted)
        .putCounters("pre_votes_granted", c.preVotesGranted)
        .putCounters("dropped_sticky", c.droppedSticky)
        .putCounters("unstick_notices", c.unstickNotices)
        .putCounters("view_changes_refused", c.viewChangesRefused)
        .putCounters("view_changes_unfetchable", c.viewChangesUnfetchable)
        .putCounters("non_canonical_entries", c.nonCanonicalEntries)
        .putCounters("peer_rejected", c.peerRejected)
        .putCounters("resends_throttled", c.resendsThrottled)
        .putCounters("resends_over_credit", c.resendsOverCredit)
        .putCounters("resends_already_acked", c.resendsAlreadyAcked);
    core.peerRejections().forEach((reason, n) -> s.putCounters("peer_rejected_" + reason, n));
    for (Meter m : metrics.getMeters()) {
      if (m instanceof Counter counter) {
        s.putCounters(m.getId().getName().replace("choir.", "").replace('.', '_'), (long) counter.count());
      }
    }
    return Response.newBuilder().setRequestId(request.getRequestId()).setStatus(Status.OK)
        .setReplicaStatus(s).build();
  }

  /**
   * Fetches a state transfer from replica from over TCP and installs it on the storage thread (in order
   * with the other storage tasks), then tells the core; a failure tells the core, which asks again.
   */
  private void stateTransfer(int from) {
    log.atInfo().addKeyValue("from", from).addKeyValue("applied", stateMachine.applied())
        .log("fetching a state transfer: the ops this replica needs are no longer in the primary's log");
    stateTransferClient.fetch(peerAddresses.get(from), config.clusterIdHash(), config.get(REPLICA_ID), loop.view(),
            stateMachine.applied(), storageStage::runApply, stateMachine, storage, java.time.Duration.ofMinutes(10))
        .whenComplete((ok, err) -> {
          if (err == null) {
            log.atInfo().addKeyValue("op", ok.op()).log("state transfer installed");
            loop.post(new io.choir.server.core.Event.StateInstalled(ok.op(), ok.checksum()));
          } else {
            log.atWarn().addKeyValue("from", from).addKeyValue("reason", err.getMessage())
                .log("state transfer failed; will retry");
            loop.post(new io.choir.server.core.Event.StateTransferFailed(String.valueOf(err.getMessage())));
          }
        });
  }

  /** Runs task on the read pool; runs refused (on this thread) when the pool refuses it. */
  private void onReadPool(Runnable task, Runnable refused) {
    try {
      readPool.execute(task);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      refused.run();
    }
  }

  private static String version() {
    String v = ReplicaServer.class.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }

  private void fatal(Throwable t) {
    loop.refuseAll("replica stopped after a storage failure: " + t.getMessage());
    terminated.complete(t);
  }

  /** The address clients connect to (the real port). */
  public InetSocketAddress clientAddress() {
    return clientServer.localAddress();
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
    return status(Request.getDefaultInstance()).getReplicaStatus().getCountersMap();
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
    readPool.shutdown();
    try {
      readPool.awaitTermination(1, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    clientServer.close();
    if (stateTransferServer != null) {
      stateTransferServer.close();
    }
    if (stateTransferClient != null) {
      stateTransferClient.close();
    }
    if (transport != null) {
      transport.close();
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
