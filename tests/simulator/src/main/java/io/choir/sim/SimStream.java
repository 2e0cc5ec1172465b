package io.choir.sim;

import java.util.ArrayDeque;
import java.util.function.Consumer;

/**
 * SimStream is a simulated TCP connection between two endpoints: messages arrive reliably and in
 * order (each after a network delay plus its bytes at the link's rate, never before the one sent
 * before it), until the connection breaks, which it does when a link between its two replicas is cut,
 * when the process at either end crashes, or when either end closes it; then both ends hear {@code
 * onClosed} once (after a delay), and nothing more arrives. An end of node 0 is outside the replicas
 * (a client): it never crashes and no replica link cut separates it; a cut between the clients and a
 * replica ({@link SimNetwork#clientCut}) holds what is sent either way until it heals (TCP
 * retransmits; nothing is lost, the connection stays up), unless the connection is closed first.
 * Client connections, peer streams and state transfers run over these.
 */
final class SimStream {
  /** Transfer time per byte (about 1 GB/s, loopback-like): a 1 MiB frame takes about 1 ms. */
  static final double NS_PER_BYTE = 1.0;
  /** How often a message held by a client cut is tried again (a TCP retransmission). */
  private static final long RETRANSMIT_NS = 20 * Simulation.MS;

  private final SimScheduler clock;
  private final SimNetwork network;
  private final SimReplica[] nodes;
  final End a;
  final End b;
  private boolean broken;
  private String why;

  /** A message on its way to an end, due at atNs. */
  private record InFlight(long atNs, Object message, long bytes) {}

  /** One end: what it sends reaches the other end's onMessage. */
  final class End {
    final int node;
    private final int incarnation;
    private Consumer<Object> onMessage = m -> { };
    private Consumer<String> onClosed = w -> { };
    private long lastArrivalNs;
    /** What the other end has sent to this one and this one has not received yet, in order. */
    private final ArrayDeque<InFlight> inbound = new ArrayDeque<>();
    private long inboundBytes;
    private boolean retransmitScheduled;
    /** Whatever the owner of this end wants to find it by (a client, a transfer). */
    Object tag;

    private End(int node) {
      this.node = node;
      this.incarnation = node == 0 ? 0 : nodes[node].incarnation;
    }

    /** Sets what happens when a message arrives at this end and when the connection breaks. */
    End handle(Consumer<Object> onMessage, Consumer<String> onClosed) {
      this.onMessage = onMessage;
      this.onClosed = onClosed;
      return this;
    }

    boolean broken() {
      return broken;
    }

    End other() {
      return this == a ? b : a;
    }

    /** Bytes this end has sent that the other end has not received yet (the socket's backlog). */
    long unreceivedBytes() {
      return other().inboundBytes;
    }

    /**
     * Sends message to the other end; returns false (and sends nothing) once the connection is broken
     * (the sender hears onClosed), as a failed write on a closed socket.
     */
    boolean send(Object message) {
      return send(message, 0);
    }

    /** Sends message of bytes bytes (they take their time on the link, after the one before). */
    boolean send(Object message, long bytes) {
      if (!check()) {
        return false;
      }
      End to = other();
      long at = Math.max(clock.now() + network.delay(), to.lastArrivalNs) + (long) (bytes * NS_PER_BYTE);
      to.lastArrivalNs = at;
      to.inbound.add(new InFlight(at, message, bytes));
      to.inboundBytes += bytes;
      clock.after(at - clock.now(), to::deliverDue);
      return true;
    }

    /** Delivers what is due, in order; a client cut holds it (and everything after it) for now. */
    private void deliverDue() {
      while (!inbound.isEmpty() && inbound.peek().atNs() <= clock.now()) {
        if (!check()) {
          return;
        }
        if (network.clientCutBetween(a.node, b.node)) {
          if (!retransmitScheduled) {
            retransmitScheduled = true;
            clock.after(RETRANSMIT_NS, () -> {
              retransmitScheduled = false;
              deliverDue();
            });
          }
          return;
        }
        InFlight m = inbound.poll();
        inboundBytes -= m.bytes();
        onMessage.accept(m.message());
      }
    }

    /**
     * Closes the connection abortively (TCP with SO_LINGER 0: a reset): what the other end has not
     * received yet is discarded; both ends hear onClosed.
     */
    void close() {
      breakWith("closed by node " + node);
    }

    /** Closes the connection gracefully (TCP FIN): everything sent arrives first, then the close. */
    void closeAfterDelivery() {
      End to = other();
      long at = Math.max(clock.now(), to.lastArrivalNs);
      clock.after(at - clock.now(), () -> {
        if (to.inbound.isEmpty()) {
          breakWith("closed by node " + node);
        } else {
          // Still held by a client cut: the FIN waits behind the data.
          clock.after(RETRANSMIT_NS, this::closeAfterDelivery);
        }
      });
    }

    private boolean alive() {
      return node == 0 || (nodes[node].up && nodes[node].incarnation == incarnation);
    }
  }

  SimStream(SimScheduler clock, SimNetwork network, SimReplica[] nodes, int nodeA, int nodeB) {
    this.clock = clock;
    this.network = network;
    this.nodes = nodes;
    this.a = new End(nodeA);
    this.b = new End(nodeB);
  }

  boolean broken() {
    return broken;
  }

  /** True when still connected; otherwise breaks the connection (once) and returns false. */
  private boolean check() {
    if (broken) {
      return false;
    }
    if (!a.alive() || !b.alive()) {
      breakWith("a process at one end crashed");
    } else if (a.node != 0 && b.node != 0 && !network.reachable(a.node, b.node)) {
      breakWith("the link between nodes " + a.node + " and " + b.node + " is cut");
    }
    return !broken;
  }

  private void breakWith(String reason) {
    if (broken) {
      return;
    }
    broken = true;
    why = reason;
    for (End end : new End[] {a, b}) {
      end.inbound.clear();
      end.inboundBytes = 0;
      if (end.alive()) {
        clock.after(network.delay(), () -> {
          if (end.alive()) {
            end.onClosed.accept(why);
          }
        });
      }
    }
  }
}
