package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.wire.FrameDecoder;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.util.AttributeKey;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * ClientConnections maps connection ids to open client connections, so the replica thread can answer a
 * request without holding Netty objects in the core, and bounds what each connection may hold. Thread-safe.
 *
 * <p>Bounds (issue 10, item 7), so that no client can grow the replica's memory by not reading:
 * <ul>
 *   <li>Reply bytes in flight, counted from the moment a reply is computed until the socket took it
 *       (waiting for the event loop or in Netty's outbound buffer): per connection
 *       (maxReplyBytesPerConnection) and in total (maxReplyBytesTotal). A connection over its bound, or
 *       holding reply bytes while the total is over its bound, is not read (autoRead off, and its
 *       already-read frames stay undecoded in {@link ClientFrameDecoder}) and none of its reads is
 *       executed: the reads the core released for it wait here (as requests, a few bytes each) until its
 *       socket drains. A connection holding no reply bytes may always run one read, whatever its size,
 *       so a value above the bound is still served; so the total can exceed its bound by at most one
 *       reply per connection that holds none, plus maxReadsPerConnection replies being computed per
 *       connection under its own bound.
 *   <li>Requests in flight per connection (maxInFlightPerConnection): decoded and not answered.
 *   <li>Connections per source address (maxConnectionsPerAddress) and in all (max_connections).
 * </ul>
 * Per-connection state is owned by the connection's event loop; reply bytes are counted with atomics,
 * because replies are computed on the read pool and the replica thread.
 */
public final class ClientConnections {
  /** The bounds on client connections (settings of the same names). */
  public record Limits(int maxInFlightPerConnection, long maxReplyBytesPerConnection, long maxReplyBytesTotal,
      int maxConnectionsPerAddress, int frameTimeoutMs, int maxReadsPerConnection) {
    public Limits {
      if (maxInFlightPerConnection < 1 || maxReplyBytesPerConnection < 1 || maxReplyBytesTotal < 1
          || maxConnectionsPerAddress < 1 || frameTimeoutMs < 0 || maxReadsPerConnection < 1) {
        throw new IllegalArgumentException("bad client connection limits: " + this);
      }
    }
  }

  static final AttributeKey<Connection> CONNECTION = AttributeKey.valueOf("choir.client.connection");

  /** Per-connection state; fields without atomics are touched on the connection's event loop only. */
  static final class Connection {
    final long id;
    final Channel channel;
    final InetAddress address;
    /** Requests decoded and not yet answered. */
    int inFlight;
    /** Reply bytes computed and not yet taken by the socket. */
    final AtomicLong replyBytes = new AtomicLong();
    /** Reads handed to the read pool whose reply has not reached the event loop yet. */
    int readsRunning;
    /** Reads released by the core, waiting until this connection's replies drain. */
    final ArrayDeque<Request> deferredReads = new ArrayDeque<>();
    /** Whether it sits in totalWaiters. */
    boolean waitingForTotal;
    /** Set when the connection is being closed for bad input: nothing more of it is decoded. */
    boolean closing;
    ClientFrameDecoder decoder;
    ChannelHandlerContext decoderContext;

    Connection(long id, Channel channel, InetAddress address) {
      this.id = id;
      this.channel = channel;
      this.address = address;
    }
  }

  /** The outcome of {@link #register}: a connection, or why there is none. */
  record Admission(Connection connection, ClientDrops.Reason refusal, String detail) {}

  private final Map<Long, Connection> open = new ConcurrentHashMap<>();
  private final Map<InetAddress, Integer> perAddress = new ConcurrentHashMap<>();
  private final Set<Connection> totalWaiters = ConcurrentHashMap.newKeySet();
  private final AtomicLong nextId = new AtomicLong(1);
  private final AtomicLong totalReplyBytes = new AtomicLong();
  private final Limits limits;
  private final Executor readPool;
  private final Function<Request, Response> reader;
  private volatile boolean intakePaused;
  private final Counter repliesDropped;
  private final Counter readsDeferred;
  private final ClientDrops drops;

  /**
   * @param readPool where reads execute (a rejected read is answered UNAVAILABLE)
   * @param reader executes one read against the applied state (on the read pool)
   */
  public ClientConnections(Limits limits, Executor readPool, Function<Request, Response> reader,
      MeterRegistry metrics) {
    this.limits = limits;
    this.readPool = readPool;
    this.reader = reader;
    this.repliesDropped = metrics.counter("choir.replies.dropped");
    this.readsDeferred = metrics.counter("choir.client_reads.deferred");
    this.drops = new ClientDrops(metrics);
  }

  Limits limits() {
    return limits;
  }

  ClientDrops drops() {
    return drops;
  }

  /** A frame decoder for a new client channel, gated by that channel's bounds. */
  public ClientFrameDecoder frameDecoder(Channel channel, int maxFrameBytes) {
    return new ClientFrameDecoder(maxFrameBytes, limits.frameTimeoutMs(), () -> {
      Connection c = channel.attr(CONNECTION).get();
      return c != null && acceptsRequests(c);
    });
  }

  /** Registers channel unless max_connections or the per-address bound is reached. */
  Admission register(Channel channel, int maxConnections) {
    if (open.size() >= maxConnections) {
      return new Admission(null, ClientDrops.Reason.REFUSED_MAX_CONNECTIONS,
          "max_connections " + maxConnections);
    }
    InetAddress address = address(channel.remoteAddress());
    boolean[] admitted = {false};
    perAddress.compute(address, (a, n) -> {
      int count = n == null ? 0 : n;
      if (count >= limits.maxConnectionsPerAddress()) {
        return n;
      }
      admitted[0] = true;
      return count + 1;
    });
    if (!admitted[0]) {
      return new Admission(null, ClientDrops.Reason.REFUSED_PER_ADDRESS,
          "max_connections_per_address " + limits.maxConnectionsPerAddress());
    }
    Connection c = new Connection(nextId.getAndIncrement(), channel, address);
    open.put(c.id, c);
    channel.attr(CONNECTION).set(c);
    return new Admission(c, null, null);
  }

  private static InetAddress address(SocketAddress remote) {
    return remote instanceof InetSocketAddress inet ? inet.getAddress() : InetAddress.getLoopbackAddress();
  }

  /** Forgets c (its channel closed): its deferred reads are dropped, its reply bytes drain as writes fail. */
  void unregister(Connection c) {
    if (open.remove(c.id) == null) {
      return;
    }
    perAddress.computeIfPresent(c.address, (a, n) -> n <= 1 ? null : n - 1);
    totalWaiters.remove(c);
    repliesDropped.increment(c.deferredReads.size());
    c.deferredReads.clear();
  }

  public int size() {
    return open.size();
  }

  /** Reply bytes computed and not yet taken by a socket, over all connections. */
  public long replyBytes() {
    return totalReplyBytes.get();
  }

  /** Sends replies to connectionId (any thread); a reply to a closed connection is dropped and counted. */
  public void send(long connectionId, List<Response> replies) {
    Connection c = open.get(connectionId);
    if (c == null) {
      repliesDropped.increment(replies.size());
      return;
    }
    long bytes = reserve(c, replies);
    c.channel.eventLoop().execute(() -> write(c, replies, bytes));
  }

  public void send(long connectionId, Response reply) {
    send(connectionId, List.of(reply));
  }

  /** Answers one request of c on its event loop (BUSY and the like), counted as any reply. */
  void reply(Connection c, Response reply) {
    List<Response> one = List.of(reply);
    write(c, one, reserve(c, one));
  }

  /**
   * Executes a read the core released for connectionId (any thread): on the read pool as soon as the
   * connection's reply bytes allow it, in the order the core released them.
   */
  public void read(long connectionId, Request request) {
    Connection c = open.get(connectionId);
    if (c == null) {
      repliesDropped.increment();
      return;
    }
    c.channel.eventLoop().execute(() -> {
      if (!c.channel.isActive()) {
        repliesDropped.increment();
        return;
      }
      if (!c.deferredReads.isEmpty() || !mayStartRead(c)) {
        readsDeferred.increment();
      }
      c.deferredReads.add(request);
      startReads(c);
    });
  }

  /** Starts c's deferred reads while its bounds allow (event loop). */
  private void startReads(Connection c) {
    while (!c.deferredReads.isEmpty() && c.channel.isActive() && mayStartRead(c)) {
      Request r = c.deferredReads.poll();
      c.readsRunning++;
      try {
        readPool.execute(() -> runRead(c, r));
      } catch (RejectedExecutionException e) {
        c.readsRunning--;
        reply(c, Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.UNAVAILABLE)
            .setError("replica overloaded or shutting down: the read pool refused the read").build());
      }
    }
    if (!c.deferredReads.isEmpty() && overTotal(c)) {
      waitForTotal(c);
    }
  }

  /** On the read pool: computes the reply and counts its bytes before it is handed to the event loop. */
  private void runRead(Connection c, Request r) {
    Response reply;
    try {
      reply = reader.apply(r);
    } catch (RuntimeException e) {
      reply = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.UNAVAILABLE)
          .setError("read failed: " + e.getMessage()).build();
    }
    List<Response> one = List.of(reply);
    long bytes = reserve(c, one);
    c.channel.eventLoop().execute(() -> {
      c.readsRunning--;
      write(c, one, bytes);
    });
  }

  private long reserve(Connection c, List<Response> replies) {
    long bytes = 0;
    for (Response r : replies) {
      bytes += FrameDecoder.LENGTH_BYTES + r.getSerializedSize();
    }
    c.replyBytes.addAndGet(bytes);
    totalReplyBytes.addAndGet(bytes);
    return bytes;
  }

  /** Writes replies (event loop); their bytes are released when the socket has taken the last one. */
  private void write(Connection c, List<Response> replies, long bytes) {
    int last = replies.size() - 1;
    for (int i = 0; i < last; i++) {
      c.channel.write(replies.get(i), c.channel.voidPromise());
    }
    ChannelPromise done = c.channel.newPromise();
    done.addListener(f -> release(c, bytes)); // success or failure (closed): the bytes are gone either way
    c.channel.write(replies.get(last), done);
    c.channel.flush();
    c.inFlight = Math.max(0, c.inFlight - replies.size());
    updateAutoRead(c);
  }

  private void release(Connection c, long bytes) {
    c.replyBytes.addAndGet(-bytes);
    long after = totalReplyBytes.addAndGet(-bytes);
    if (after < limits.maxReplyBytesTotal() && after + bytes >= limits.maxReplyBytesTotal()) {
      wakeTotalWaiters();
    }
    updateAutoRead(c);
    startReads(c);
  }

  /** True when c holds reply bytes while the replica-wide total is over its bound. */
  private boolean overTotal(Connection c) {
    return totalReplyBytes.get() >= limits.maxReplyBytesTotal() && (c.replyBytes.get() > 0 || c.readsRunning > 0);
  }

  private boolean mayStartRead(Connection c) {
    return c.readsRunning < limits.maxReadsPerConnection()
        && c.replyBytes.get() < limits.maxReplyBytesPerConnection()
        && !overTotal(c);
  }

  /** Whether c may take one more request now (event loop): the gate of its frame decoder. */
  boolean acceptsRequests(Connection c) {
    if (c.closing || intakePaused || c.inFlight >= limits.maxInFlightPerConnection() || !c.channel.isWritable()
        || c.replyBytes.get() >= limits.maxReplyBytesPerConnection()) {
      return false;
    }
    if (overTotal(c)) {
      waitForTotal(c);
      return false;
    }
    return true;
  }

  /**
   * Puts c among the connections to wake when the total drops under its bound. It joins the set before
   * the total is read again, so a drop that happens meanwhile finds it there (no lost wake-up).
   */
  private void waitForTotal(Connection c) {
    if (!c.waitingForTotal) {
      c.waitingForTotal = true;
      totalWaiters.add(c);
    }
    if (totalReplyBytes.get() < limits.maxReplyBytesTotal() && totalWaiters.remove(c)) {
      c.channel.eventLoop().execute(() -> wake(c));
    }
  }

  private void wakeTotalWaiters() {
    for (Connection c : totalWaiters) {
      if (totalWaiters.remove(c)) {
        c.channel.eventLoop().execute(() -> wake(c));
      }
    }
  }

  private void wake(Connection c) {
    c.waitingForTotal = false;
    updateAutoRead(c);
    startReads(c);
  }

  /** Pauses (true) or resumes (false) reading every client connection: the core's flow control. */
  public void setIntakePaused(boolean paused) {
    intakePaused = paused;
    for (Connection c : open.values()) {
      c.channel.eventLoop().execute(() -> updateAutoRead(c));
    }
  }

  /**
   * Reads from c only while it may take requests (event loop); when it may, the frames its decoder held
   * back are decoded first.
   */
  void updateAutoRead(Connection c) {
    boolean read = acceptsRequests(c);
    if (c.channel.config().isAutoRead() != read) {
      c.channel.config().setAutoRead(read);
    }
    if (read && c.decoder != null) {
      c.decoder.resume(c.decoderContext);
    }
  }
}
