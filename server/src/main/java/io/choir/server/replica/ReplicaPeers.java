package io.choir.server.replica;

import static io.choir.server.config.ServerConfig.HEARTBEAT_INTERVAL_MS;
import static io.choir.server.config.ServerConfig.MAX_BATCH_BYTES;
import static io.choir.server.config.ServerConfig.MAX_DATAGRAM_BYTES;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_BYTES;
import static io.choir.server.config.ServerConfig.MAX_IN_FLIGHT_OPS;
import static io.choir.server.config.ServerConfig.MAX_PEER_HANDSHAKES;
import static io.choir.server.config.ServerConfig.MULTICAST_GROUP;
import static io.choir.server.config.ServerConfig.MULTICAST_INTERFACE;
import static io.choir.server.config.ServerConfig.MULTICAST_TTL;
import static io.choir.server.config.ServerConfig.PEER_HANDSHAKE_TIMEOUT_MS;
import static io.choir.server.config.ServerConfig.PEER_TRANSPORT;
import static io.choir.server.config.ServerConfig.RECEIVE_BUFFER_BYTES;
import static io.choir.server.config.ServerConfig.REPLICAS;
import static io.choir.server.config.ServerConfig.REPLICA_ID;

import com.google.protobuf.MessageLite;
import io.choir.proto.MessageType;
import io.choir.server.config.ReplicaAddress;
import io.choir.server.config.ServerConfig;
import io.choir.server.config.TestSettings;
import io.choir.server.core.Event;
import io.choir.server.core.Membership;
import io.choir.server.net.PeerDirectory;
import io.choir.server.net.PeerRouting;
import io.choir.server.net.PeerTcpAuth;
import io.choir.server.net.PeerTransport;
import io.choir.server.net.StateTransferClient;
import io.choir.server.net.StateTransferServer;
import io.choir.server.net.TransportMode;
import io.choir.server.security.DatagramEpochs;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Storage;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ReplicaPeers is a replica's side toward the other replicas of its cluster: the peer transport
 * (datagrams and peer streams), the peer TCP port's authentication (proven with the cluster key, or
 * without one only from member hosts), the state transfer server on that port and the client that
 * fetches state transfers from another replica. It carries out the executor's peer sends and state
 * transfer fetches; what comes in goes to the {@link ReplicaInbox}. A single replica has none.
 */
final class ReplicaPeers implements AutoCloseable {
  /** The server's logger: the state transfer lines keep the name operators know them by. */
  private static final Logger log = LoggerFactory.getLogger(ReplicaServer.class);
  /** The longest one state transfer may take before it fails and the core asks again. */
  private static final Duration FETCH_TIMEOUT = Duration.ofMinutes(10);
  /** Heartbeat intervals without a datagram from a peer before its name is resolved again. */
  private static final int SILENT_HEARTBEATS = 4;
  /** peer_transport auto: time between multicast probes. */
  private static final long PROBE_INTERVAL_NS = TimeUnit.SECONDS.toNanos(1);

  private final ServerConfig config;
  private final PeerDirectory directory;
  private final PeerTransport transport;
  private final StateTransferClient stateTransferClient;
  private final StateTransferServer stateTransferServer;
  private final ReplicaInbox inbox;
  private final KvStateMachine stateMachine;
  private final Storage storage;
  private final Consumer<Runnable> onApplyLane;

  private ReplicaPeers(ServerConfig config, PeerDirectory directory,
      PeerTransport transport, StateTransferClient stateTransferClient, StateTransferServer stateTransferServer,
      ReplicaInbox inbox, KvStateMachine stateMachine, Storage storage, Consumer<Runnable> onApplyLane) {
    this.config = config;
    this.directory = directory;
    this.transport = transport;
    this.stateTransferClient = stateTransferClient;
    this.stateTransferServer = stateTransferServer;
    this.inbox = inbox;
    this.stateMachine = stateMachine;
    this.storage = storage;
    this.onApplyLane = onApplyLane;
  }

  /**
   * Opens the peer side of config's replica: a new datagram epoch (synced before the first datagram,
   * so nonces never repeat), the transport and the peer TCP port; what arrives goes to inbox, state
   * transfers install through onApplyLane (in order with the other storage tasks). On a failure what
   * was opened is closed again.
   */
  static ReplicaPeers open(ServerConfig config, Storage storage, KvStateMachine stateMachine,
      Consumer<Runnable> onApplyLane, ReplicaInbox inbox, MeterRegistry metrics)
      throws InterruptedException, SocketException {
    // Peer hosts may be names (choir-1.choir-peers:7600): the directory resolves them, now and again
    // when a peer seems unreachable; a name that does not resolve yet is not fatal.
    Map<Integer, InetSocketAddress> peers = new HashMap<>();
    config.get(REPLICAS).forEach(r -> peers.put(r.id(),
        InetSocketAddress.createUnresolved(r.peer().host(), r.peer().port())));
    long heartbeatNs = TimeUnit.MILLISECONDS.toNanos(config.get(HEARTBEAT_INTERVAL_MS));
    long silenceNs = Math.max(SILENT_HEARTBEATS * heartbeatNs, TimeUnit.MILLISECONDS.toNanos(100));
    PeerDirectory directory = new PeerDirectory(config.get(REPLICA_ID), peers, PeerDirectory.Resolver.SYSTEM,
        System::nanoTime, silenceNs, metrics);
    ReplicaAddress.HostPort group = ReplicaAddress.HostPort.parse(config.get(MULTICAST_GROUP));
    // A new datagram epoch for this start, synced before the first datagram (nonces never repeat).
    long datagramEpoch = DatagramEpochs.advance(storage, System.currentTimeMillis() / 1000);
    // The peer TCP port (state transfers, peer streams), both ends: proven with the cluster key,
    // or without one only from member hosts.
    PeerTcpAuth peerTcp = new PeerTcpAuth(config.clusterIdHash(), directory, config.clusterKeys(),
        config.get(PEER_HANDSHAKE_TIMEOUT_MS), config.get(MAX_PEER_HANDSHAKES), metrics);
    PeerTransport transport = new PeerTransport(new PeerTransport.Settings(config.get(REPLICA_ID),
        config.clusterIdHash(), peers, group.toSocketAddress(), config.get(MULTICAST_INTERFACE),
        config.get(MULTICAST_TTL), config.get(MAX_DATAGRAM_BYTES), config.get(RECEIVE_BUFFER_BYTES),
        config.get(TestSettings.TEST_MULTICAST_LOSS_PERCENT), config.get(TestSettings.TEST_FAULT_FILE),
        PeerRouting.maxReassembledBytes(config.get(MAX_BATCH_BYTES)),
        PeerRouting.maxStreamFrameBytes(config.get(MAX_IN_FLIGHT_BYTES), config.get(MAX_IN_FLIGHT_OPS),
            config.get(MAX_BATCH_BYTES)),
        PeerTransport.Settings.DEFAULT_STREAM_BUFFER_BYTES, config.get(PEER_TRANSPORT), PROBE_INTERVAL_NS,
        silenceNs), directory, config.clusterKeys(), datagramEpoch, peerTcp, inbox, metrics);
    StateTransferClient client = null;
    try {
      client = new StateTransferClient(StateTransferClient.Limits.defaults(), peerTcp);
      InetSocketAddress self = directory.address(config.get(REPLICA_ID));
      StateTransferServer server = new StateTransferServer(
          self != null ? self : new InetSocketAddress(config.self().peer().port()),
          config.get(REPLICA_ID), config.clusterIdHash(), peers.keySet(), inbox::view, storage,
          StateTransferServer.Limits.defaults(), 1, transport.streamSink(), peerTcp);
      return new ReplicaPeers(config, directory, transport, client, server, inbox, stateMachine, storage,
          onApplyLane);
    } catch (RuntimeException | InterruptedException e) {
      if (client != null) {
        client.close();
      }
      transport.close();
      throw e;
    }
  }

  /** Sends one peer message (the executor's peer port; any thread). */
  void send(int to, long view, MessageType type, MessageLite body) {
    transport.send(to, view, type, body);
  }

  /**
   * Fetches a state transfer from replica from over TCP and installs it on the apply lane (in order
   * with the other storage tasks), then tells the core; a failure tells the core, which asks again.
   */
  void fetchStateTransfer(int from) {
    log.atInfo().addKeyValue("from", from).addKeyValue("applied", stateMachine.applied())
        .log("fetching a state transfer: the ops this replica needs are no longer in the primary's log");
    InetSocketAddress source = directory.address(from);
    if (source == null) {
      transport.suspect(from); // resolved on the transport's resolver thread, never this one
      inbox.post(new Event.StateTransferFailed("replica " + from + "'s peer host does not resolve"));
      return;
    }
    stateTransferClient.fetch(source, config.clusterIdHash(), config.get(REPLICA_ID), inbox.view(),
            stateMachine.applied(), onApplyLane, stateMachine, storage, FETCH_TIMEOUT)
        .whenComplete((ok, err) -> {
          if (err == null) {
            log.atInfo().addKeyValue("op", ok.op()).log("state transfer installed");
            inbox.post(new Event.StateInstalled(ok.op(), ok.checksum(), ok.membership()));
          } else {
            log.atWarn().addKeyValue("from", from).addKeyValue("reason", err.getMessage())
                .log("state transfer failed; will retry");
            inbox.post(new Event.StateTransferFailed(String.valueOf(err.getMessage())));
          }
        });
  }

  /**
   * The membership changed: the peer directory (and with it the datagram codec's senders, the peer
   * streams and the peer TCP port's members) and the state transfer server's askers become its members
   * and this replica; a removed one is a former member (PeerDirectory), which may still send datagrams,
   * be told of the new epoch, and fetch a state transfer, but gets no peer stream.
   */
  void membersChanged(Membership membership) {
    directory.update(peerMap(config, directory, membership));
    // A former member may ask: a replica removed while it was cut off learns of it from the state.
    stateTransferServer.updateMembers(directory.acceptedIds());
  }

  /**
   * Where membership's members are: the peer address the membership records, else the configured one,
   * else the directory's; this replica always (a retired one still serves state transfers).
   */
  static Map<Integer, InetSocketAddress> peerMap(ServerConfig config, PeerDirectory directory,
      Membership membership) {
    Map<Integer, InetSocketAddress> out = new HashMap<>();
    int self = config.get(REPLICA_ID);
    List<Integer> ids = new ArrayList<>(membership.memberIds());
    if (!ids.contains(self)) {
      ids.add(self);
    }
    for (int id : ids) {
      String peer = membership.member(id).map(Membership.Member::peerAddress).orElse("");
      if (peer.isEmpty()) {
        peer = config.get(REPLICAS).stream().filter(r -> r.id() == id).map(r -> r.peer().toString())
            .findFirst().orElseGet(() -> directory.configured(id));
      }
      if (peer == null || peer.isEmpty()) {
        log.atWarn().addKeyValue("peer", id).log("no peer address known for a member: not reachable");
        continue;
      }
      try {
        ReplicaAddress.HostPort hp = ReplicaAddress.HostPort.parse(peer);
        out.put(id, InetSocketAddress.createUnresolved(hp.host(), hp.port()));
      } catch (IllegalArgumentException e) {
        log.atWarn().addKeyValue("peer", id).addKeyValue("address", peer).log("a member's peer address does not parse");
      }
    }
    return out;
  }

  /** The transport's mode (status). */
  TransportMode transportMode() {
    return transport.mode();
  }

  /** With auto: the peers reached by multicast now (status). */
  Set<Integer> multicastPeers() {
    return transport.multicastPeers();
  }

  /** Where the peers are (a membership change replaces its map). */
  PeerDirectory directory() {
    return directory;
  }

  /** Closes the state transfer server and client, then the transport. */
  @Override
  public void close() {
    stateTransferServer.close();
    stateTransferClient.close();
    transport.close();
  }
}
