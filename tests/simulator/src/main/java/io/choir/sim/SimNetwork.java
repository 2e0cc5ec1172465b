package io.choir.sim;

import com.google.protobuf.MessageLite;
import io.choir.proto.MessageType;
import io.choir.server.core.Effects;
import io.choir.server.core.Event;
import io.choir.server.net.PeerRouting;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.ToLongFunction;

/**
 * SimNetwork is the simulated network between replicas, routing every peer message as the server's
 * transport does ({@link PeerRouting#route}, the same code): a body that fits one datagram goes as a
 * datagram, which may be lost, duplicated or delayed (and so reordered), per the run's configuration;
 * a bigger multicast PREPARE goes as UDP fragments of the transport's size, each lost independently,
 * so it arrives only when all of them do; any other message bigger than a datagram goes over the peer
 * TCP stream to its destination ({@link PeerLink}, PeerStreams' behaviour: reliable and in order, one
 * per ordered pair, connected lazily, broken by a cut or a crash of either end, reconnected on the
 * next message after a backoff, a bounded backlog).
 *
 * <p>Faults cut links: {@code cut[from][to]} blocks everything one way, {@code multicastCut[to]}
 * blocks multicast into a node, {@code repairCut[node]} blocks unicast to and from it (PREPARE_OK,
 * NACK, resends, heartbeat answers, the peer streams), {@code clientCut[node]} holds everything
 * between the clients and a node (a firewall rule: TCP keeps retransmitting, connects time out).
 * {@link #reachable} tells the reliable streams ({@link SimStream}) whether a connection between two
 * replicas survives.
 *
 * <p>With {@link SimConfig#unicast} (peer_transport unicast) a send to all becomes one unicast copy
 * per member ({@link #sendToEach}), each drawn on its own.
 */
final class SimNetwork {
  /** A fragment's own fields, as PeerTransport leaves room for them (Reassembler.split(.., room - 40)). */
  private static final int FRAGMENT_OVERHEAD_BYTES = 40;
  /** PeerStreams' per-link bound on queued and unwritten bytes (Settings.DEFAULT_STREAM_BUFFER_BYTES). */
  static final long STREAM_BUFFER_BYTES = 16L << 20;
  private static final long STREAM_INITIAL_BACKOFF_NS = 50 * Simulation.MS;
  private static final long STREAM_MAX_BACKOFF_NS = 1_000 * Simulation.MS;

  private final SimConfig cfg;
  private final SimScheduler clock;
  private final SplittableRandom random;
  private final SimReplica[] nodes;
  private final ToLongFunction<String> stats;
  private final int maxDatagramBytes;
  /** The breakage UDP_ONLY_PEERS: no peer streams, big unicast messages go as fragments too. */
  private final boolean udpOnly;
  final boolean[][] cut;
  final boolean[] multicastCut;
  final boolean[] repairCut;
  final boolean[] clientCut;
  private final PeerLink[][] links;
  /** The message-level fuzz (null: messages arrive as sent). */
  private final SimMutator mutator;

  /** A peer message as it travels over a peer stream. */
  private record Envelope(int from, long view, MessageType type, MessageLite body) {}

  /** The outbound peer stream from one replica to another (PeerStreams.Link). */
  private final class PeerLink {
    final int from;
    final int to;
    SimStream stream;
    /** The sender's process incarnation this link's state belongs to (a restart starts afresh). */
    int incarnation;
    long retryAtNs;
    long backoffNs = STREAM_INITIAL_BACKOFF_NS;

    PeerLink(int from, int to) {
      this.from = from;
      this.to = to;
    }

    void send(Envelope e, int bytes) {
      stats.applyAsLong("stream_sends");
      if (incarnation != nodes[from].incarnation) {
        incarnation = nodes[from].incarnation;
        stream = null;
        retryAtNs = 0;
        backoffNs = STREAM_INITIAL_BACKOFF_NS;
      }
      if (stream == null || stream.broken()) {
        if (clock.now() < retryAtNs) {
          stats.applyAsLong("stream_dropped_backoff");
          return;
        }
        if (!nodes[to].up || !reachable(from, to)) {
          // Refused, or the connect timed out: the waiting frames are dropped and the link backs off.
          retryAtNs = clock.now() + backoffNs;
          backoffNs = Math.min(2 * backoffNs, STREAM_MAX_BACKOFF_NS);
          stats.applyAsLong("stream_dropped_connect");
          return;
        }
        backoffNs = STREAM_INITIAL_BACKOFF_NS;
        stream = new SimStream(clock, SimNetwork.this, nodes, from, to);
        SimReplica target = nodes[to];
        stream.b.handle(m -> {
          Envelope in = (Envelope) m;
          arrive(target, new Event.Peer(in.from(), in.view(), in.type(), in.body()));
        }, why -> { });
      }
      if (stream.a.unreceivedBytes() > 0 && stream.a.unreceivedBytes() + bytes > STREAM_BUFFER_BYTES) {
        stats.applyAsLong("stream_dropped_backlog");
        return;
      }
      if (!stream.a.send(e, bytes)) {
        stats.applyAsLong("stream_dropped_broken");
      }
    }
  }

  SimNetwork(SimConfig cfg, SimScheduler clock, SplittableRandom random, SimReplica[] nodes,
      ToLongFunction<String> stats, int maxDatagramBytes, boolean udpOnly, SimMutator mutator) {
    this.udpOnly = udpOnly;
    this.mutator = mutator;
    this.cfg = cfg;
    this.clock = clock;
    this.random = random;
    this.nodes = nodes;
    this.stats = stats;
    this.maxDatagramBytes = maxDatagramBytes;
    cut = new boolean[nodes.length][nodes.length];
    multicastCut = new boolean[nodes.length];
    repairCut = new boolean[nodes.length];
    clientCut = new boolean[nodes.length];
    links = new PeerLink[nodes.length][nodes.length];
    for (int from = 1; from < nodes.length; from++) {
      for (int to = 1; to < nodes.length; to++) {
        links[from][to] = new PeerLink(from, to);
      }
    }
  }

  /** A random one-way network delay of this run. */
  long delay() {
    return cfg.minDelayNs() + random.nextLong(Math.max(1, cfg.maxDelayNs() - cfg.minDelayNs()));
  }

  /** Sends a peer message (to one replica, or to all others), routed as the server's transport does. */
  void send(int from, int to, long view, MessageType type, MessageLite body) {
    int bytes = body.getSerializedSize();
    int dest = to == Effects.MULTICAST ? PeerRouting.MULTICAST : to;
    PeerRouting.Route route = PeerRouting.route(dest, type, bytes, maxDatagramBytes);
    if (udpOnly && (route == PeerRouting.Route.STREAM || route == PeerRouting.Route.STREAM_TO_EACH)) {
      int room = PeerRouting.datagramRoom(maxDatagramBytes) - FRAGMENT_OVERHEAD_BYTES;
      stats.applyAsLong("unicast_sends_fragmented");
      for (int id = 1; id < nodes.length; id++) {
        if (id != from && (to == Effects.MULTICAST || id == to)) {
          deliver(from, id, view, type, body, false, (bytes + room - 1) / room);
        }
      }
      return;
    }
    if (cfg.unicast() && to == Effects.MULTICAST) {
      sendToEach(from, view, type, body, bytes);
      return;
    }
    switch (route) {
      case DATAGRAM -> {
        if (to == Effects.MULTICAST) {
          stats.applyAsLong("multicast_sends");
          for (int id = 1; id < nodes.length; id++) {
            if (id != from) {
              deliver(from, id, view, type, body, true, 1);
            }
          }
        } else {
          stats.applyAsLong("unicast_sends");
          deliver(from, to, view, type, body, false, 1);
        }
      }
      case FRAGMENTS -> {
        int room = PeerRouting.datagramRoom(maxDatagramBytes) - FRAGMENT_OVERHEAD_BYTES;
        int fragments = (bytes + room - 1) / room;
        stats.applyAsLong("multicast_sends_fragmented");
        for (int id = 1; id < nodes.length; id++) {
          if (id != from) {
            deliver(from, id, view, type, body, true, fragments);
          }
        }
      }
      case STREAM -> links[from][to].send(new Envelope(from, view, type, body), bytes);
      case STREAM_TO_EACH -> {
        for (int id = 1; id < nodes.length; id++) {
          if (id != from) {
            links[from][id].send(new Envelope(from, view, type, body), bytes);
          }
        }
      }
    }
  }

  /**
   * peer_transport unicast: a send to all as the server's transport makes it ({@link
   * PeerRouting#routeToEach}): one unicast copy per other member, each with its own loss, delay and
   * duplication draw (and subject to the repair cuts, not the multicast ones), or, for a body too big
   * for a datagram, one frame over each member's peer stream; never fragments.
   */
  private void sendToEach(int from, long view, MessageType type, MessageLite body, int bytes) {
    PeerRouting.Route route = PeerRouting.routeToEach(bytes, maxDatagramBytes);
    stats.applyAsLong(route == PeerRouting.Route.DATAGRAM_TO_EACH ? "unicast_fanout_sends"
        : "unicast_fanout_streamed");
    for (int id = 1; id < nodes.length; id++) {
      if (id == from) {
        continue;
      }
      if (route == PeerRouting.Route.DATAGRAM_TO_EACH) {
        stats.applyAsLong("unicast_fanout_datagrams");
        deliver(from, id, view, type, body, false, 1);
      } else {
        links[from][id].send(new Envelope(from, view, type, body), bytes);
      }
    }
  }

  /**
   * One datagram, or a message of several fragments each lost on its own (it arrives only when all
   * do, after the slowest; duplicated fragments do not duplicate a reassembled message).
   */
  private void deliver(int from, int to, long view, MessageType type, MessageLite body, boolean multicast,
      int fragments) {
    if (cut[from][to] || (multicast && multicastCut[to]) || (!multicast && (repairCut[to] || repairCut[from]))) {
      stats.applyAsLong("dropped_partition");
      return;
    }
    if (fragments > 1) {
      double arrives = Math.pow(1 - cfg.lossRate(), fragments);
      if (random.nextDouble() >= arrives) {
        stats.applyAsLong("dropped_fragment_loss");
        return;
      }
      SimReplica target = nodes[to];
      if (target.up) {
        long slowest = delay() + (long) (fragments * (long) maxDatagramBytes * SimStream.NS_PER_BYTE);
        clock.after(slowest, target, () -> arrive(target, new Event.Peer(from, view, type, body)));
      }
      return;
    }
    if (random.nextDouble() < cfg.lossRate()) {
      stats.applyAsLong("dropped_loss");
      return;
    }
    int copies = random.nextDouble() < cfg.duplicateRate() ? 2 : 1;
    for (int i = 0; i < copies; i++) {
      SimReplica target = nodes[to];
      if (target.up) {
        clock.after(delay(), target, () -> arrive(target, new Event.Peer(from, view, type, body)));
      }
    }
  }

  /** Hands a peer message to its destination's loop, through the fuzz when one runs. */
  private void arrive(SimReplica target, Event.Peer p) {
    Event.Peer m = mutator == null ? p : mutator.inFlight(target.up ? target.core : null, p);
    if (m != null) {
      target.post(m);
    }
  }

  /** True when a TCP connection between a and b gets through (no cut either way, no repair cut). */
  boolean reachable(int a, int b) {
    return !cut[a][b] && !cut[b][a] && !repairCut[a] && !repairCut[b];
  }

  /** True when a and b are a client (0) and a replica the clients are cut off from. */
  boolean clientCutBetween(int a, int b) {
    return (a == 0 && clientCut[b]) || (b == 0 && clientCut[a]);
  }

  /** Heals every link. */
  void healLinks() {
    for (boolean[] row : cut) {
      Arrays.fill(row, false);
    }
    Arrays.fill(multicastCut, false);
    Arrays.fill(repairCut, false);
    Arrays.fill(clientCut, false);
  }

  /** Cuts victim off from every other replica, both ways. */
  void isolate(int victim) {
    for (int id = 1; id < nodes.length; id++) {
      cut[id][victim] = true;
      cut[victim][id] = true;
    }
  }
}
