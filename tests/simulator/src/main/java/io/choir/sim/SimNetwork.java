package io.choir.sim;

import com.google.protobuf.MessageLite;
import io.choir.proto.MessageType;
import io.choir.server.core.Effects;
import io.choir.server.core.Event;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.ToLongFunction;

/**
 * SimNetwork is the simulated datagram network between replicas: every datagram may be lost,
 * duplicated or delayed (and so reordered), per the run's configuration, and faults cut links: {@code
 * cut[from][to]} blocks everything one way, {@code multicastCut[to]} blocks multicast into a node,
 * {@code repairCut[node]} blocks unicast to and from it (PREPARE_OK, NACK, resends, heartbeat
 * answers). {@link #reachable} tells the reliable streams ({@link SimStream}) whether a connection
 * between two nodes survives.
 */
final class SimNetwork {
  private final SimConfig cfg;
  private final SimScheduler clock;
  private final SplittableRandom random;
  private final SimReplica[] nodes;
  private final ToLongFunction<String> stats;
  final boolean[][] cut;
  final boolean[] multicastCut;
  final boolean[] repairCut;

  SimNetwork(SimConfig cfg, SimScheduler clock, SplittableRandom random, SimReplica[] nodes,
      ToLongFunction<String> stats) {
    this.cfg = cfg;
    this.clock = clock;
    this.random = random;
    this.nodes = nodes;
    this.stats = stats;
    cut = new boolean[nodes.length][nodes.length];
    multicastCut = new boolean[nodes.length];
    repairCut = new boolean[nodes.length];
  }

  /** A random one-way network delay of this run. */
  long delay() {
    return cfg.minDelayNs() + random.nextLong(Math.max(1, cfg.maxDelayNs() - cfg.minDelayNs()));
  }

  /** Sends a peer datagram (to one replica, or to all others by multicast). */
  void send(int from, int to, long view, MessageType type, MessageLite body) {
    if (to == Effects.MULTICAST) {
      stats.applyAsLong("multicast_sends");
      for (int id = 1; id < nodes.length; id++) {
        if (id != from) {
          deliver(from, id, view, type, body, true);
        }
      }
    } else {
      stats.applyAsLong("unicast_sends");
      deliver(from, to, view, type, body, false);
    }
  }

  private void deliver(int from, int to, long view, MessageType type, MessageLite body, boolean multicast) {
    if (cut[from][to] || (multicast && multicastCut[to]) || (!multicast && (repairCut[to] || repairCut[from]))) {
      stats.applyAsLong("dropped_partition");
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
        clock.after(delay(), target, () -> target.post(new Event.Peer(from, view, type, body)));
      }
    }
  }

  /** True when a TCP connection between a and b gets through (no cut either way, no repair cut). */
  boolean reachable(int a, int b) {
    return !cut[a][b] && !cut[b][a] && !repairCut[a] && !repairCut[b];
  }

  /** Heals every link. */
  void healLinks() {
    for (boolean[] row : cut) {
      Arrays.fill(row, false);
    }
    Arrays.fill(multicastCut, false);
    Arrays.fill(repairCut, false);
  }

  /** Cuts victim off from every other replica, both ways. */
  void isolate(int victim) {
    for (int id = 1; id < nodes.length; id++) {
      cut[id][victim] = true;
      cut[victim][id] = true;
    }
  }
}
