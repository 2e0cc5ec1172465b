package io.choir.sim;

import io.choir.client.spi.ClientScheduler;
import io.choir.client.spi.ClientTransport;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.net.ConnectException;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * SimClientIo gives the client library its two ports on the simulation: {@link #scheduler}, the
 * {@link ClientScheduler} on the simulator's clock, and {@link Transport}, a {@link ClientTransport}
 * over {@link SimStream} connections to each replica's client endpoint ({@link
 * SimReplica#acceptClient}). It keeps the transport contract the client's promises rely on:
 *
 * <ul>
 *   <li>a write fails only when nothing was sent (the connection had broken), so "failed" means "not
 *       received";
 *   <li>close() is abortive: what the replica has not received yet is discarded, never delivered later
 *       (SimStream's reset), and the listener hears onClosed once, for a connection whose connect
 *       completed;
 *   <li>responses arrive in the order the replica sent them, each once (a SimStream is ordered);
 *   <li>no listener call happens inside connect() or write(): responses, closes and connect results
 *       all arrive as scheduled events;
 *   <li>each client has its own Transport; closing it closes only that client's connections.
 * </ul>
 *
 * A connect reaches the replica after a network delay: refused when its process is down, timed out
 * (after {@link #CONNECT_TIMEOUT_NS}) when the clients are cut off from it.
 */
final class SimClientIo {
  static final int CLIENT_PORT = 7301;
  /** The client's default connect timeout. */
  static final long CONNECT_TIMEOUT_NS = 1_000 * Simulation.MS;
  /** Where the client's clock starts: the dispatcher reads a time of 0 as "no attempt under way". */
  private static final long CLOCK_ORIGIN_NS = 1_000_000_000L;

  private final Simulation sim;
  private final SimConfig cfg;

  /** The client library's clock and timers: the simulator's, so a run stays a function of its seed. */
  final ClientScheduler scheduler = new ClientScheduler() {
    @Override
    public long nanoTime() {
      return CLOCK_ORIGIN_NS + sim.clock.now();
    }

    @Override
    public Timer schedule(Runnable task, long delayNs) {
      SimScheduler.Timer t = sim.clock.after(delayNs, task); // never runs inside this call
      return t::cancel;
    }
  };

  SimClientIo(Simulation sim, SimConfig cfg) {
    this.sim = sim;
    this.cfg = cfg;
  }

  /** The client address of replica node, as the replicas name each other in NOT_PRIMARY hints. */
  static String address(int node) {
    return "r" + node + ":" + CLIENT_PORT;
  }

  /** The replica at host:port, or 0 when there is none. */
  private int nodeOf(String host, int port) {
    if (port != CLIENT_PORT || !host.startsWith("r")) {
      return 0;
    }
    try {
      int node = Integer.parseInt(host.substring(1));
      return node >= 1 && node <= cfg.replicas() ? node : 0;
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /** One client's connections. */
  final class Transport implements ClientTransport {
    private final List<Conn> open = new ArrayList<>();
    private boolean closed;

    @Override
    public CompletableFuture<Connection> connect(String host, int port, Listener listener) {
      CompletableFuture<Connection> result = new CompletableFuture<>();
      int node = nodeOf(host, port);
      if (closed || node == 0) {
        sim.clock.after(0, () -> result.completeExceptionally(
            new ConnectException(closed ? "transport closed" : "unknown host " + host + ":" + port)));
        return result;
      }
      sim.bump("client_connects");
      sim.clock.after(sim.net.delay(), () -> {
        SimReplica replica = sim.node(node);
        if (closed) {
          result.completeExceptionally(new ConnectException("transport closed"));
        } else if (sim.net.clientCut[node]) {
          // The SYN goes unanswered: the connect times out.
          sim.clock.after(CONNECT_TIMEOUT_NS, () -> result.completeExceptionally(
              new ConnectException("connect to " + host + ":" + port + " timed out")));
        } else if (!replica.up) {
          sim.bump("client_connects_refused");
          sim.clock.after(sim.net.delay(), () -> result.completeExceptionally(
              new ConnectException("connection to " + host + ":" + port + " refused")));
        } else {
          SimStream stream = sim.connect(0, node);
          Conn conn = new Conn(stream.a);
          stream.a.handle(m -> listener.onResponse((Response) m), why -> {
            open.remove(conn);
            if (conn.established) {
              listener.onClosed(); // only for a connection whose connect completed
            } else if (!result.isDone()) {
              result.completeExceptionally(new ConnectException("connection to " + host + ":" + port
                  + " reset while connecting: " + why));
            }
          });
          replica.acceptClient(stream.b);
          open.add(conn);
          // The SYN-ACK comes back after another delay; the connection is usable from then on.
          sim.clock.after(sim.net.delay(), () -> {
            if (result.isDone()) {
              return; // reset meanwhile
            }
            if (closed || stream.broken()) {
              conn.close();
              result.completeExceptionally(new ConnectException("transport closed"));
            } else {
              conn.established = true;
              result.complete(conn);
            }
          });
        }
      });
      return result;
    }

    @Override
    public void close() {
      closed = true;
      for (Conn c : new ArrayList<>(open)) {
        c.close();
      }
    }
  }

  /** One client connection: the client's end of a SimStream. */
  private final class Conn implements ClientTransport.Connection {
    private final SimStream.End end;
    /** The connect future completed with this connection: from now on the listener hears its close. */
    boolean established;

    Conn(SimStream.End end) {
      this.end = end;
    }

    @Override
    public CompletableFuture<Void> write(Request request) {
      if (!end.send(request, request.getSerializedSize())) {
        return CompletableFuture.failedFuture(new ClosedChannelException()); // nothing was sent
      }
      return CompletableFuture.completedFuture(null);
    }

    @Override
    public boolean isActive() {
      return !end.broken();
    }

    @Override
    public void close() {
      end.close();
    }
  }
}
