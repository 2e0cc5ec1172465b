package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.wire.FrameDecoder;
import io.choir.server.metrics.ClientLatency;
import io.choir.server.metrics.RequestTimes;
import io.choir.server.watch.WatchHub;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelPromise;
import io.netty.util.AttributeKey;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.List;
import java.util.Map;
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
 *       (waiting for the event loop or in Netty's outbound buffer, in direct memory): per connection
 *       (max_reply_bytes_per_connection) and in total (max_reply_bytes_total). A connection over its
 *       bound, or holding reply bytes while the total is at its bound, is not read (autoRead off, and its
 *       already-read frames stay undecoded in {@link ClientFrameDecoder}) and none of its reads starts:
 *       the reads the core released for it wait here, as requests of a few bytes, until its replies
 *       drain. A computed read reply is admitted only if it fits (compare-and-set on both counters): a
 *       connection holding none may always take one reply of any size under its own bound; the total
 *       admits a reply only if it fits, except a reply of at most {@link ReplyBudget#SMALL_REPLY_BYTES} to a
 *       connection holding none (so well-behaved clients are served while attackers fill the total) and
 *       a reply larger than the whole bound when nothing else is in flight. A reply that does not fit is
 *       dropped and its read deferred again, first in line, with its size remembered so it is not
 *       computed again before it fits. Write replies (their writes are done) are always admitted.
 *   <li>Requests in flight per connection (max_in_flight_per_connection): decoded and not answered.
 *   <li>Connections per source address (max_connections_per_address) and in all (max_connections).
 * </ul>
 * Per-connection state ({@link ClientConnection}) is owned by the connection's event loop; reply bytes
 * are counted with atomics ({@link ReplyBudget}), because replies are computed on the read pool and the
 * replica thread.
 */
public final class ClientConnections {
  /** The bounds on client connections (settings of the same names). */
  public record Limits(int maxInFlightPerConnection, long maxReplyBytesPerConnection, long maxReplyBytesTotal,
      int maxConnectionsPerAddress, int frameTimeoutMs, int maxReadsPerConnection, long maxFrameBytesTotal) {
    public Limits {
      if (maxInFlightPerConnection < 1 || maxReplyBytesPerConnection < 1 || maxReplyBytesTotal < 1
          || maxConnectionsPerAddress < 1 || frameTimeoutMs < 0 || maxReadsPerConnection < 1
          || maxFrameBytesTotal < 1) {
        throw new IllegalArgumentException("bad client connection limits: " + this);
      }
    }

    /** Without a bound on buffered frame bytes over all connections (tests). */
    public Limits(int maxInFlightPerConnection, long maxReplyBytesPerConnection, long maxReplyBytesTotal,
        int maxConnectionsPerAddress, int frameTimeoutMs, int maxReadsPerConnection) {
      this(maxInFlightPerConnection, maxReplyBytesPerConnection, maxReplyBytesTotal, maxConnectionsPerAddress,
          frameTimeoutMs, maxReadsPerConnection, Long.MAX_VALUE);
    }

    /**
     * max_reply_bytes_total as set, or for 0 a quarter of the JVM's direct memory limit: unsent replies
     * are held in direct buffers, and near that limit every allocation stalls (the JDK calls System.gc()
     * and waits), so the bound leaves room for request buffers, peer traffic and the allocator's slack.
     */
    public static long totalReplyBytes(int setting) {
      return setting != 0 ? setting : Math.max(4096, DirectMemory.max() / 4);
    }

    /** max_frame_bytes_total as set, or for 0 a quarter of the JVM's direct memory limit (sockets read into it). */
    public static long totalFrameBytes(int setting) {
      return FrameMemory.limit(setting);
    }
  }

  static final AttributeKey<ClientConnection> CONNECTION = AttributeKey.valueOf("choir.client.connection");
  /** The outcome of {@link #register}: a connection, or why there is none. */
  record Admission(ClientConnection connection, ClientDrops.Reason refusal, String detail) {}

  private final Map<Long, ClientConnection> open = new ConcurrentHashMap<>();
  private final AtomicLong nextId = new AtomicLong(1);
  private final ReplyBudget replyBudget;
  private final Limits limits;
  private final ClientReads reads;
  private volatile boolean intakePaused;
  private final Counter repliesDropped;
  private final ClientDrops drops;
  private final ConnectionsPerAddress perAddress;
  private final FrameMemory frameMemory;
  private final ClientLatency latency;
  private volatile WatchRequests watches;
  private volatile LeaseReadGate leaseReads;

  /**
   * @param readPool where reads execute (a rejected read is answered UNAVAILABLE)
   * @param reader executes one read against the applied state (on the read pool)
   */
  public ClientConnections(Limits limits, Executor readPool, Function<Request, Response> reader,
      MeterRegistry metrics) {
    this(limits, readPool, reader, request -> null, metrics);
  }

  /**
   * @param readPool where reads execute (a rejected read is answered UNAVAILABLE)
   * @param reader executes one read against the applied state (on the read pool)
   * @param memoryReader answers one read from memory on the event loop, or returns null when answering
   *     it needs the disk (or anything that may block): that read goes to the read pool
   */
  public ClientConnections(Limits limits, Executor readPool, Function<Request, Response> reader,
      Function<Request, Response> memoryReader, MeterRegistry metrics) {
    this.limits = limits;
    this.repliesDropped = metrics.counter("choir.replies.dropped");
    this.drops = new ClientDrops(metrics);
    this.latency = new ClientLatency(metrics);
    this.perAddress = new ConnectionsPerAddress(limits.maxConnectionsPerAddress(), drops);
    this.frameMemory = new FrameMemory(limits.maxFrameBytesTotal());
    this.replyBudget = new ReplyBudget(limits.maxReplyBytesPerConnection(), limits.maxReplyBytesTotal(),
        w -> onLoop(w.connection(), () -> wake(w), 0));
    this.reads = new ClientReads(this, replyBudget, readPool, reader, memoryReader, metrics);
  }

  Limits limits() {
    return limits;
  }

  /** Serves Watch and CancelWatch requests with hub (before the client port opens); without: INVALID. */
  public void watches(WatchHub hub) {
    this.watches = new WatchRequests(hub);
  }

  /**
   * Answers the reads gate admits on the event loops, without the core (before the client port opens):
   * those that waited in it for the applied number come back here, to the read path or refused.
   */
  public void leaseReads(LeaseReadGate gate) {
    gate.route(new LeaseReadGate.Route() {
      @Override
      public void release(ClientConnection c, Request request) {
        readNow(c, request);
      }

      @Override
      public void refuse(ClientConnection c, Request request, String why) {
        Response refusal = Response.newBuilder().setRequestId(request.getRequestId()).setStatus(Status.UNAVAILABLE)
            .setError(why).build();
        onLoop(c, () -> {
          if (c.channel.isActive()) {
            reply(c, refusal);
          }
        }, 1);
      }
    });
    this.leaseReads = gate;
  }

  /** The lease read gate, or null when every read goes through the core. */
  LeaseReadGate leaseReads() {
    return leaseReads;
  }

  /** Executes request, a read of c the lease read gate admitted, as if the core had released it (event loop). */
  void readNow(ClientConnection c, Request request) {
    reads.read(c, request);
  }

  /** The watch requests' route, or null when this replica serves none (tests). */
  WatchRequests watches() {
    return watches;
  }

  ClientDrops drops() {
    return drops;
  }

  /** A frame decoder for a new client channel, gated by that channel's bounds. */
  public ClientFrameDecoder frameDecoder(Channel channel, int maxFrameBytes) {
    return new ClientFrameDecoder(maxFrameBytes, limits.frameTimeoutMs(), () -> {
      ClientConnection c = channel.attr(CONNECTION).get();
      return c != null && acceptsRequests(c);
    }, frameMemory);
  }

  /** Registers channel unless max_connections or the per-address bound is reached. */
  Admission register(Channel channel, int maxConnections) {
    if (open.size() >= maxConnections) {
      return new Admission(null, ClientDrops.Reason.REFUSED_MAX_CONNECTIONS,
          "max_connections " + maxConnections);
    }
    ClientConnection c = new ClientConnection(nextId.getAndIncrement(), channel, address(channel.remoteAddress()),
        channel.pipeline().context(ClientFrameDecoder.class));
    c.times = new RequestTimes(latency);
    open.put(c.id, c);
    channel.attr(CONNECTION).set(c);
    return new Admission(c, null, null);
  }

  /**
   * The handler of the listening channel: connections beyond max_connections_per_address from one
   * source address are closed at accept ({@link ConnectionsPerAddress}).
   */
  public ChannelHandler acceptGate() {
    return perAddress.gate();
  }

  static InetAddress address(SocketAddress remote) {
    return remote instanceof InetSocketAddress inet ? inet.getAddress() : InetAddress.getLoopbackAddress();
  }

  /** Forgets c (its channel closed): its deferred reads are dropped, its reply bytes drain as writes fail. */
  void unregister(ClientConnection c) {
    if (open.remove(c.id) == null) {
      return;
    }
    replyBudget.forget(c);
    repliesDropped.increment(c.deferredReads.size());
    c.deferredReads.clear();
  }

  /** Bytes of unfinished client frames held beyond each connection's free share (status). */
  public long frameBytesHeld() {
    return frameMemory.held();
  }

  public int size() {
    return open.size();
  }

  /** Reply bytes computed and not yet taken by a socket, over all connections. */
  public long replyBytes() {
    return replyBudget.total();
  }

  /** Sends replies to connectionId (any thread); a reply to a closed connection is dropped and counted. */
  public void send(long connectionId, List<Response> replies) {
    ClientConnection c = open.get(connectionId);
    if (c == null) {
      repliesDropped.increment(replies.size());
      return;
    }
    long bytes = reserve(c, replies);
    onLoop(c, () -> write(c, replies, bytes), replies.size());
  }

  public void send(long connectionId, Response reply) {
    send(connectionId, List.of(reply));
  }

  /** Answers one request of c on its event loop (BUSY and the like), counted as any reply. */
  void reply(ClientConnection c, Response reply) {
    List<Response> one = List.of(reply);
    write(c, one, reserve(c, one));
  }


  /**
   * Executes a read the core released for connectionId (any thread): see {@link ClientReads#read}. A read
   * for a closed connection is dropped and counted.
   */
  public void read(long connectionId, Request request) {
    ClientConnection c = open.get(connectionId);
    if (c == null) {
      repliesDropped.increment();
      return;
    }
    reads.read(c, request);
  }

  /**
   * Runs task on c's event loop; once the event loops are shut down (the replica is closing) it is
   * dropped, and the replies it would have sent are counted as dropped.
   */
  void onLoop(ClientConnection c, Runnable task, int replies) {
    try {
      c.channel.eventLoop().execute(task);
    } catch (RejectedExecutionException shuttingDown) {
      repliesDropped.increment(replies);
    }
  }

  private long reserve(ClientConnection c, List<Response> replies) {
    long bytes = 0;
    for (Response r : replies) {
      bytes += FrameDecoder.LENGTH_BYTES + r.getSerializedSize();
    }
    replyBudget.reserve(c, bytes);
    return bytes;
  }

  /** Writes replies (event loop); their bytes are released when the socket has taken the last one. */
  void write(ClientConnection c, List<Response> replies, long bytes) {
    int last = replies.size() - 1;
    for (int i = 0; i < last; i++) {
      c.channel.write(replies.get(i), c.channel.voidPromise());
    }
    ChannelPromise done = c.channel.newPromise();
    done.addListener(f -> release(c, bytes, f.isSuccess())); // success or failure (closed): the bytes are gone
    c.channel.write(replies.get(last), done);
    c.channel.flush();
    if (c.times != null) {
      c.times.finished(replies, System.nanoTime());
    }
    c.inFlight = Math.max(0, c.inFlight - replies.size());
    updateAutoRead(c);
  }

  /**
   * The socket took bytes of c's replies (written) or they failed: the deferred reads may go on. After a
   * failure (the channel is closing: its deferred reads are dropped and counted) not from within the
   * failing write, where a read answered from memory would be written to the closing channel and fail
   * again, one level deeper each time.
   */
  private void release(ClientConnection c, long bytes, boolean written) {
    replyBudget.release(c, bytes);
    updateAutoRead(c);
    if (written) {
      reads.startReads(c);
    } else if (c.channel.isActive()) {
      onLoop(c, () -> reads.startReads(c), 0);
    }
  }

  /** Whether c may take one more request now (event loop): the gate of its frame decoder. */
  boolean acceptsRequests(ClientConnection c) {
    if (c.closing || intakePaused || c.inFlight >= limits.maxInFlightPerConnection() || !c.channel.isWritable()
        || c.replyBytes.get() >= limits.maxReplyBytesPerConnection()) {
      return false;
    }
    if (replyBudget.overTotal(c)) {
      replyBudget.waitForTotal(c);
      return false;
    }
    return true;
  }

  /** Goes on with the connection of w once the total has room for it (event loop). */
  private void wake(ReplyBudget.Waiter w) {
    replyBudget.woke(w);
    ClientConnection c = w.connection();
    updateAutoRead(c);
    reads.startReads(c);
  }

  /** Pauses (true) or resumes (false) reading every client connection: the core's flow control. */
  public void setIntakePaused(boolean paused) {
    intakePaused = paused;
    for (ClientConnection c : open.values()) {
      onLoop(c, () -> updateAutoRead(c), 0);
    }
  }

  /**
   * Reads from c only while it may take requests (event loop); when it may, the frames its decoder held
   * back are decoded first.
   */
  void updateAutoRead(ClientConnection c) {
    boolean read = acceptsRequests(c);
    if (c.channel.config().isAutoRead() != read) {
      c.channel.config().setAutoRead(read);
    }
    if (read && c.decoder != null) {
      c.decoder.resume(c.decoderContext);
    }
  }
}
