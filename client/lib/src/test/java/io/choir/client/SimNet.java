package io.choir.client;

import io.choir.client.spi.ClientTransport;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * SimNet is a simulated client network on a {@link SimClock}: every connection is an ordered stream
 * each way (like TCP) with a seeded random latency per message; a connection can be closed from either
 * side, after which nothing more is delivered on it. Replicas are plain callbacks that answer on the
 * connection a request came on, now or later. It keeps the transport contract: listeners are called
 * only from clock tasks, never inside connect() or write(). As a transport it serves one client (its
 * close() closes everything); {@link #newClientTransport()} gives each further client its own.
 */
final class SimNet implements ClientTransport {
  /** Replica is what a simulated endpoint does with each request that reaches it. */
  interface Replica {
    void onRequest(Conn conn, Request request);
  }

  private final SimClock clock;
  private final Random random;
  private final long minLatencyNs;
  private final long maxLatencyNs;
  private final Map<String, Replica> replicas = new HashMap<>();
  private final List<Conn> open = new ArrayList<>();
  /** address -> until when the clients are cut off from it (a firewall rule; TCP keeps retransmitting). */
  private final Map<String, Long> cutUntilNs = new HashMap<>();
  private boolean closed;
  int connects;

  SimNet(SimClock clock, Random random, long minLatencyNs, long maxLatencyNs) {
    this.clock = clock;
    this.random = random;
    this.minLatencyNs = minLatencyNs;
    this.maxLatencyNs = maxLatencyNs;
  }

  /** Registers (or replaces) the replica at address; null makes the address refuse connections. */
  void replica(String address, Replica replica) {
    if (replica == null) {
      replicas.remove(address);
    } else {
      replicas.put(address, replica);
    }
  }

  List<Conn> openConnections() {
    return List.copyOf(open);
  }

  /**
   * Cuts the clients off from address for durationNs, like a firewall rule: what is sent either way
   * on its connections waits and is delivered when the cut heals (TCP retransmits), unless the
   * connection was closed (reset) first; a connect to it hangs for the connect timeout and fails.
   */
  void cut(String address, long durationNs) {
    cutUntilNs.merge(address, clock.nanoTime() + durationNs, Math::max);
  }

  private long cutEndNs(String address) {
    Long until = cutUntilNs.get(address);
    return until == null ? 0 : until;
  }

  /** How long a connect to a cut replica hangs before it fails (the client's connect timeout). */
  static final long CONNECT_TIMEOUT_NS = 1_000_000_000L;

  private long latency() {
    return minLatencyNs + (maxLatencyNs > minLatencyNs ? (long) (random.nextDouble() * (maxLatencyNs - minLatencyNs)) : 0);
  }

  /** A transport for one more client on this network: its close() closes only its own connections. */
  ClientTransport newClientTransport() {
    return new ClientTransport() {
      private final List<Conn> mine = new ArrayList<>();
      private boolean closedHere;

      @Override
      public CompletableFuture<Connection> connect(String host, int port, Listener listener) {
        if (closedHere) {
          return CompletableFuture.failedFuture(new UnavailableException("transport closed"));
        }
        return SimNet.this.connect(host, port, listener).thenApply(c -> {
          mine.add((Conn) c);
          if (closedHere) {
            c.close();
          }
          return c;
        });
      }

      @Override
      public void close() {
        closedHere = true;
        for (Conn c : List.copyOf(mine)) {
          c.close();
        }
      }
    };
  }

  @Override
  public CompletableFuture<Connection> connect(String host, int port, Listener listener) {
    String address = new Endpoint(host, port).toString();
    CompletableFuture<Connection> result = new CompletableFuture<>();
    connects++;
    if (cutEndNs(address) > clock.nanoTime()) {
      clock.schedule(() -> result.completeExceptionally(
          new UnavailableException("cannot connect to " + address + ": connect timed out")), CONNECT_TIMEOUT_NS);
      return result;
    }
    clock.schedule(() -> {
      Replica replica = replicas.get(address);
      if (closed) {
        result.completeExceptionally(new UnavailableException("transport closed"));
      } else if (replica == null) {
        result.completeExceptionally(new UnavailableException("cannot connect to " + address + ": refused"));
      } else {
        Conn c = new Conn(address, listener);
        open.add(c);
        result.complete(c);
      }
    }, latency());
    return result;
  }

  @Override
  public void close() {
    closed = true;
    for (Conn c : List.copyOf(open)) {
      c.close();
    }
  }

  /** Conn is one simulated connection; its two directions keep their order. */
  final class Conn implements Connection {
    final String address;
    private final Listener listener;
    private boolean isClosed;
    private long lastToServerNs;
    private long lastToClientNs;

    Conn(String address, Listener listener) {
      this.address = address;
      this.listener = listener;
    }

    @Override
    public CompletableFuture<Void> write(Request request) {
      if (isClosed) {
        return CompletableFuture.failedFuture(new ClosedChannelException());
      }
      lastToServerNs = Math.max(lastToServerNs, Math.max(cutEndNs(address), clock.nanoTime()) + latency());
      clock.schedule(() -> {
        if (isClosed) {
          return;
        }
        // Looked up at delivery, so a test can change what a replica does under an open connection.
        Replica replica = replicas.get(address);
        if (replica == null) {
          close();
        } else {
          replica.onRequest(this, request);
        }
      }, lastToServerNs - clock.nanoTime());
      return CompletableFuture.completedFuture(null);
    }

    /** The replica answers on this connection; lost if it closes first. */
    void reply(Response response) {
      if (isClosed) {
        return;
      }
      lastToClientNs = Math.max(lastToClientNs, Math.max(cutEndNs(address), clock.nanoTime()) + latency());
      clock.schedule(() -> {
        if (!isClosed) {
          listener.onResponse(response);
        }
      }, lastToClientNs - clock.nanoTime());
    }

    @Override
    public boolean isActive() {
      return !isClosed;
    }

    /** Closes from either side: nothing more is delivered; the client hears of it after a latency. */
    @Override
    public void close() {
      if (isClosed) {
        return;
      }
      isClosed = true;
      open.remove(this);
      clock.schedule(listener::onClosed, latency());
    }

    boolean isClosed() {
      return isClosed;
    }
  }
}
