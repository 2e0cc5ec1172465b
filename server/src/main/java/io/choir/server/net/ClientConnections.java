package io.choir.server.net;

import io.choir.proto.Response;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * ClientConnections maps connection ids to open client connections, so the replica thread can answer a
 * request without holding Netty objects in the core, and applies intake pausing (flow control) to all
 * of them. Thread-safe.
 */
public final class ClientConnections {
  /** Per-connection state; mutated on the connection's event loop only, except the paused flag. */
  static final class Connection {
    final long id;
    final Channel channel;
    int inFlight;

    Connection(long id, Channel channel) {
      this.id = id;
      this.channel = channel;
    }
  }

  private final Map<Long, Connection> open = new ConcurrentHashMap<>();
  private final AtomicLong nextId = new AtomicLong(1);
  private final int maxInFlightPerConnection;
  private volatile boolean intakePaused;
  private final Counter repliesDropped;

  public ClientConnections(int maxInFlightPerConnection, MeterRegistry metrics) {
    this.maxInFlightPerConnection = maxInFlightPerConnection;
    this.repliesDropped = metrics.counter("choir.replies.dropped");
  }

  Connection register(Channel channel) {
    Connection c = new Connection(nextId.getAndIncrement(), channel);
    open.put(c.id, c);
    return c;
  }

  void unregister(Connection c) {
    open.remove(c.id);
  }

  public int size() {
    return open.size();
  }

  /** Sends replies to connectionId (any thread); a reply to a closed connection is dropped and counted. */
  public void send(long connectionId, List<Response> replies) {
    Connection c = open.get(connectionId);
    if (c == null) {
      repliesDropped.increment(replies.size());
      return;
    }
    if (c.channel.eventLoop().inEventLoop()) {
      writeAll(c, replies);
    } else {
      c.channel.eventLoop().execute(() -> writeAll(c, replies));
    }
  }

  public void send(long connectionId, Response reply) {
    send(connectionId, List.of(reply));
  }

  private void writeAll(Connection c, List<Response> replies) {
    for (Response r : replies) {
      c.channel.write(r, c.channel.voidPromise());
    }
    c.channel.flush();
    c.inFlight = Math.max(0, c.inFlight - replies.size());
    updateAutoRead(c);
  }

  /** Pauses (true) or resumes (false) reading every client connection: the core's flow control. */
  public void setIntakePaused(boolean paused) {
    intakePaused = paused;
    for (Connection c : open.values()) {
      c.channel.eventLoop().execute(() -> updateAutoRead(c));
    }
  }

  /** Reads from c only while intake is open, c is under its in-flight limit and its writes drain. */
  void updateAutoRead(Connection c) {
    boolean read = !intakePaused && c.inFlight < maxInFlightPerConnection && c.channel.isWritable();
    if (c.channel.config().isAutoRead() != read) {
      c.channel.config().setAutoRead(read);
    }
  }
}
