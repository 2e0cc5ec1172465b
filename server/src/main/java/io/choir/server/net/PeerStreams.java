package io.choir.server.net;

import io.choir.proto.PeerEnvelope;
import io.choir.proto.wire.FrameDecoder;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerStreams sends the unicast peer messages too big for one datagram (see {@link PeerRouting}) as
 * PeerEnvelope frames (4-byte length, then the envelope) over one TCP connection per peer, to the
 * peer's address, where its {@link StateTransferServer} accepts peer streams.
 *
 * <p>Each link connects lazily, on the first message for its peer; frames given while it connects
 * wait for it. When a connect fails, the waiting frames are dropped and the link waits a backoff
 * (50 ms, doubling to 1 s, reset by a successful connect) before it tries again; messages for it
 * meanwhile are dropped. A link whose connection closes (the peer restarted, say) reconnects on the
 * next message. Every drop is counted by reason; the protocol repairs by NACK, as for a lost
 * datagram.
 *
 * <p>Bound: per link at most bufferBytes of frames are queued or unwritten (the socket's own buffers
 * aside); a message that would go beyond is dropped and counted (stream_backlog). A single message
 * bigger than bufferBytes is still taken when nothing else is queued, so the bound is bufferBytes or
 * one frame (at most maxFrameBytes), whichever is larger. Frames above maxFrameBytes are never sent
 * (the receiver would refuse them).
 *
 * <p>Threads: {@link #send} from any thread (it serializes the frame on the caller's thread, so the
 * event loop only writes); every link's state is confined to the one event loop, except its queued
 * byte count.
 */
final class PeerStreams implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PeerStreams.class);

  static final long INITIAL_BACKOFF_NS = TimeUnit.MILLISECONDS.toNanos(50);
  static final long MAX_BACKOFF_NS = TimeUnit.SECONDS.toNanos(1);
  private static final int CONNECT_TIMEOUT_MS = 1000;

  private final int maxFrameBytes;
  private final long bufferBytes;
  private final LongSupplier nanoClock;
  private final Consumer<String> drops;
  private final Runnable sentCounter;
  private final EventLoopGroup group;
  private final EventLoop loop;
  private final Bootstrap bootstrap;
  private static final Discard DISCARD = new Discard();
  private final Map<Integer, Link> links = new ConcurrentHashMap<>();
  private final PeerDirectory directory;
  /** Told of a failed connect to a peer (its name is resolved again). */
  private final IntConsumer onConnectFailed;
  /** How each connection opens; null: plain and unchecked (tests of the transport alone). */
  private final PeerTcpAuth auth;
  private volatile boolean closed;

  /**
   * PeerStreams to the members of directory (each connect goes to the peer's address then).
   *
   * @param maxFrameBytes largest envelope sent (the receivers' limit)
   * @param bufferBytes queued and unwritten bytes per peer before messages are dropped
   * @param nanoClock monotonic time for the reconnect backoff
   * @param drops counts a dropped message by reason (without the stream_ prefix)
   * @param sentCounter counts a frame written to a socket
   * @param auth how every connection opens: proven with the cluster key and sealed, or without a key
   *     from this replica's peer host; null: plain and unchecked (tests of the transport alone)
   * @param onConnectFailed told the peer id of every failed connect
   */
  PeerStreams(
      PeerDirectory directory,
      int maxFrameBytes,
      long bufferBytes,
      LongSupplier nanoClock,
      Consumer<String> drops,
      Runnable sentCounter,
      PeerTcpAuth auth,
      IntConsumer onConnectFailed) {
    this.directory = directory;
    this.onConnectFailed = onConnectFailed;
    this.auth = auth;
    this.maxFrameBytes = maxFrameBytes;
    this.bufferBytes = bufferBytes;
    this.nanoClock = nanoClock;
    this.drops = drops;
    this.sentCounter = sentCounter;
    this.group = new MultiThreadIoEventLoopGroup(1, NettyIo.ioHandlerFactory());
    this.loop = group.next();
    this.bootstrap =
        new Bootstrap()
            .group(loop)
            .channel(NettyIo.socketChannelType())
            .option(ChannelOption.TCP_NODELAY, true)
            .option(ChannelOption.SO_KEEPALIVE, true)
            .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MS)
            .handler(DISCARD);
    directory.ids().forEach(id -> links.put(id, new Link(id)));
  }

  /** Follows a membership change: links for new members, the links of removed ones closed (any thread). */
  void updateLinks(Set<Integer> ids) {
    for (int id : ids) {
      links.computeIfAbsent(id, Link::new);
    }
    for (Map.Entry<Integer, Link> e : links.entrySet()) {
      if (!ids.contains(e.getKey())) {
        Link gone = links.remove(e.getKey());
        if (gone != null) {
          try {
            loop.execute(gone::shutdown);
          } catch (RejectedExecutionException closing) {
            // closed already
          }
        }
      }
    }
  }

  /**
   * Sends envelope to peer to over its stream (any thread); false when it was dropped (and counted):
   * unknown peer, too large, the link's buffer full, or the transport closed.
   */
  boolean send(int to, PeerEnvelope envelope) {
    Link link = links.get(to);
    if (link == null) {
      drops.accept("unknown_destination");
      return false;
    }
    int bodyBytes = envelope.getSerializedSize();
    if (bodyBytes > maxFrameBytes) {
      drops.accept("too_large");
      return false;
    }
    int size = FrameDecoder.LENGTH_BYTES + bodyBytes;
    if (closed || !link.reserve(size)) {
      drops.accept(closed ? "closed" : "backlog");
      return false;
    }
    ByteBuf frame = Unpooled.buffer(size, size);
    try (ByteBufOutputStream out = new ByteBufOutputStream(frame)) {
      out.writeInt(bodyBytes);
      envelope.writeTo(out);
    } catch (IOException | RuntimeException e) {
      frame.release();
      link.unreserve(size);
      drops.accept("malformed");
      return false;
    }
    try {
      loop.execute(() -> link.enqueue(frame, size));
    } catch (RejectedExecutionException e) {
      frame.release();
      link.unreserve(size);
      drops.accept("closed");
      return false;
    }
    return true;
  }

  /** Bytes queued or unwritten for peer to (tests and status). */
  long queuedBytes(int to) {
    Link link = links.get(to);
    return link == null ? 0 : link.queued.get();
  }

  /** Closes every connection and the event loop; later sends are dropped. */
  @Override
  public void close() {
    closed = true;
    try {
      loop.submit(() -> links.values().forEach(Link::shutdown)).awaitUninterruptibly(1, TimeUnit.SECONDS);
    } catch (RejectedExecutionException e) {
      // already shut down
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(2, TimeUnit.SECONDS);
  }

  /** Link is the stream to one peer. */
  private final class Link {
    final int id;
    /** The address of the connection being made or made (loop). */
    private InetSocketAddress address;
    /** Bytes reserved by send and not yet written or dropped (any thread). */
    final AtomicLong queued = new AtomicLong();
    // Confined to the loop:
    private Channel channel;
    private ChannelFuture connecting;
    private final ArrayDeque<ByteBuf> waiting = new ArrayDeque<>();
    private boolean backingOff;
    private long retryAtNs;
    private long backoffNs = INITIAL_BACKOFF_NS;

    Link(int id) {
      this.id = id;
    }

    /** Reserves size bytes of the buffer: always when empty, else within bufferBytes (any thread). */
    boolean reserve(long size) {
      while (true) {
        long q = queued.get();
        if (q > 0 && q + size > bufferBytes) {
          return false;
        }
        if (queued.compareAndSet(q, q + size)) {
          return true;
        }
      }
    }

    void unreserve(long size) {
      queued.addAndGet(-size);
    }

    /** Writes frame, or holds it while connecting, or drops it while backing off (loop). */
    void enqueue(ByteBuf frame, int size) {
      if (closed) {
        drop(frame, "closed");
        return;
      }
      if (channel != null && channel.isActive()) {
        write(frame, size);
        return;
      }
      if (connecting == null) {
        if (backingOff && nanoClock.getAsLong() - retryAtNs < 0) {
          drop(frame, "unreachable");
          return;
        }
        if (!connect()) {
          drop(frame, "unresolved");
          return;
        }
      }
      waiting.add(frame);
    }

    /** Connects to the peer's address now; false when it has none (its name does not resolve yet). */
    private boolean connect() {
      address = directory.address(id);
      if (address == null) {
        onConnectFailed.accept(id);
        backingOff = true;
        retryAtNs = nanoClock.getAsLong() + backoffNs;
        backoffNs = Math.min(MAX_BACKOFF_NS, backoffNs * 2);
        return false;
      }
      PeerTcpAuth a = auth;
      Bootstrap b = bootstrap;
      if (a != null) {
        b = bootstrap.clone().handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline().addLast("discard", DISCARD);
            a.addConnector(ch.pipeline(), id);
          }
        });
        if (a.connectorLocalAddress() != null) {
          b.localAddress(a.connectorLocalAddress());
        }
      }
      ChannelFuture f = b.connect(address);
      connecting = f;
      // Connected is not enough: the link is up once the handshake proved the peer.
      f.addListener((ChannelFutureListener) c -> {
        if (!c.isSuccess()) {
          connected(c, c.cause());
          return;
        }
        PeerTcpAuth.ready(c.channel()).addListener(r -> connected(c, r.cause()));
      });
      return true;
    }

    private void connected(ChannelFuture f, Throwable failure) {
      if (connecting != f) {
        f.channel().close(); // a connect abandoned meanwhile (shutdown)
        return;
      }
      connecting = null;
      if (failure == null && !closed) {
        Channel ch = f.channel();
        channel = ch;
        backingOff = false;
        backoffNs = INITIAL_BACKOFF_NS;
        ch.closeFuture().addListener(c -> disconnected(ch));
        log.atDebug().addKeyValue("peer", id).addKeyValue("address", address).log("peer stream connected");
        while (!waiting.isEmpty()) {
          ByteBuf frame = waiting.poll();
          write(frame, frame.readableBytes());
        }
        return;
      }
      f.channel().close(); // refused, failed its handshake, or closed meanwhile
      onConnectFailed.accept(id); // perhaps its name points elsewhere now
      backingOff = true;
      retryAtNs = nanoClock.getAsLong() + backoffNs;
      backoffNs = Math.min(MAX_BACKOFF_NS, backoffNs * 2);
      log.atDebug()
          .addKeyValue("peer", id)
          .addKeyValue("address", address)
          .addKeyValue("reason", failure == null ? "closed" : failure.getMessage())
          .log("cannot connect a peer stream; backing off");
      while (!waiting.isEmpty()) {
        drop(waiting.poll(), "unreachable");
      }
    }

    private void disconnected(Channel ch) {
      if (channel == ch) {
        channel = null; // the next message reconnects
      }
    }

    private void write(ByteBuf frame, int size) {
      channel
          .writeAndFlush(frame)
          .addListener(
              (ChannelFutureListener)
                  f -> {
                    unreserve(size);
                    if (f.isSuccess()) {
                      sentCounter.run();
                    } else {
                      drops.accept("write_failed");
                      f.channel().close();
                    }
                  });
    }

    private void drop(ByteBuf frame, String reason) {
      int size = frame.readableBytes();
      frame.release();
      unreserve(size);
      drops.accept(reason);
    }

    void shutdown() {
      while (!waiting.isEmpty()) {
        drop(waiting.poll(), "closed");
      }
      if (connecting != null) {
        connecting.cancel(false);
        connecting.channel().close();
      }
      if (channel != null) {
        channel.close();
      }
    }
  }

  /** Discard reads whatever a peer sends back on a stream (nothing is expected) and drops it. */
  @ChannelHandler.Sharable
  private static final class Discard extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ReferenceCountUtil.release(msg);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close(); // the link reconnects on its next message
    }
  }
}
