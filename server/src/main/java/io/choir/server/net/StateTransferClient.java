package io.choir.server.net;

import io.choir.proto.PeerEnvelope;
import io.choir.server.net.transfer.InstallTarget;
import io.choir.server.net.transfer.StateTransferReceiver;
import io.choir.server.net.transfer.StateTransferReceiver.Installed;
import io.choir.server.net.transfer.TransferCodec;
import io.choir.server.net.transfer.TransferFailedException;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Storage;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.SocketChannel;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * StateTransferClient fetches a state transfer (DESIGN.md "Loss, repair and flow") from another
 * replica's {@link StateTransferServer} and installs it: a thin Netty driver of a {@link
 * StateTransferReceiver}, which holds the protocol (validation, the install steps on the storage
 * thread, the end-to-end digest check, the outcome). This class only connects, sends the request,
 * hands each envelope to the receiver, reads while {@link StateTransferReceiver#wantsRead}, closes
 * once {@link StateTransferReceiver#wantsConnection} is false, and decides the timeout.
 *
 * <p>Ordering assumption: {@code onStorageThread} runs the Runnables it is given one at a time, in the
 * order given, on the one thread that writes storage (the replica's storage stage; a single-thread
 * executor in tests), each exactly once (see {@link StateTransferReceiver}). {@code onStorageThread}
 * may block briefly (a bounded queue): it is called on this client's own event loop, never on the
 * replica's.
 *
 * <p>Failure: any error, the timeout, a disconnect before the last chunk, an invalid stream or a
 * snapshot that does not verify completes the future with {@link TransferFailedException}; see
 * {@link StateTransferReceiver} for what storage then holds.
 *
 * <p>Memory: reads stop while maxQueuedChunks chunks wait for the storage thread (TCP backpressure
 * then stops the source), so at most about that many chunks, plus the client table, are held.
 *
 * <p>Threads: one event loop; every receiver driver call (frames, close, timeout, step-done cues) runs
 * on it.
 */
public final class StateTransferClient implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StateTransferClient.class);

  /**
   * Limits are the client's bounds, each a named setting.
   *
   * @param maxFrameBytes largest chunk frame accepted (above the source's maxChunkBytes plus the
   *     largest key and value)
   * @param maxClientTableBytes total serialized client rows accepted (they are installed in one write)
   * @param maxQueuedChunks chunks received but not yet written by the storage thread before reading
   *     pauses
   * @param connectTimeoutMs time to establish the TCP connection (also bounded by the fetch timeout)
   */
  public record Limits(
      int maxFrameBytes, long maxClientTableBytes, int maxQueuedChunks, long connectTimeoutMs) {
    public Limits {
      if (maxFrameBytes < 1024) {
        throw new IllegalArgumentException("maxFrameBytes must be at least 1 KiB: " + maxFrameBytes);
      }
      receiverLimits(maxClientTableBytes, maxQueuedChunks); // the receiver's Limits checks these two
      if (connectTimeoutMs < 1) {
        throw new IllegalArgumentException("connectTimeoutMs must be positive: " + connectTimeoutMs);
      }
    }

    /** Limits.defaults: 64 MiB frames, 256 MiB of client rows, 4 queued chunks, 5 s to connect. */
    public static Limits defaults() {
      return new Limits(64 << 20, 256L << 20, 4, 5_000);
    }

    /** The receiver's limits (its read-back pages are 4 MiB). */
    StateTransferReceiver.Limits receiverLimits() {
      return receiverLimits(maxClientTableBytes, maxQueuedChunks);
    }

    private static StateTransferReceiver.Limits receiverLimits(long maxClientTableBytes, int maxQueuedChunks) {
      return new StateTransferReceiver.Limits(
          maxClientTableBytes, maxQueuedChunks, StateTransferReceiver.Limits.defaults().readBackBytes());
    }
  }

  private final Limits limits;
  /** Null: plain, unchecked connections (tests only). */
  private final PeerTcpAuth auth;
  private final EventLoopGroup group;
  private final Class<? extends SocketChannel> channelType;
  private final TransferCodec codec = new TransferCodec();

  /**
   * StateTransferClient starts its own one-thread event loop (epoll when available); its connections
   * are not authenticated (tests of the transfer alone: a replica passes its {@link PeerTcpAuth}).
   */
  public StateTransferClient(Limits limits) {
    this(limits, null);
  }

  /**
   * StateTransferClient whose every connection opens as auth says: with the cluster key, the
   * handshake proves both ends before the request is sent, and every byte after it is sealed; a
   * source that fails to prove itself fails the fetch (a {@link PeerTcpRefusedException} cause).
   * Without a key, it connects from this replica's own peer host.
   */
  public StateTransferClient(Limits limits, PeerTcpAuth auth) {
    this.auth = auth;
    this.limits = limits;
    IoHandlerFactory factory = NettyIo.ioHandlerFactory();
    this.channelType = NettyIo.socketChannelType();
    this.group = new MultiThreadIoEventLoopGroup(1, factory);
  }

  /**
   * Fetches a snapshot from source and installs it through stateMachine (see the class comment).
   *
   * @param source the source replica's peer address (its StateTransferServer)
   * @param clusterIdHash this cluster's id, sent and checked on every chunk
   * @param selfId this replica's id (the source checks it is a member)
   * @param view this replica's view (informational)
   * @param applied this replica's applied op: the snapshot must be above it
   * @param onStorageThread runs Runnables in order on the storage-writer thread
   * @param stateMachine the state machine the snapshot is installed through
   * @param storage stateMachine's storage, read back to verify the snapshot before it is installed
   * @param timeout the whole fetch, connect to installed
   * @return completes with the installed op and checksum (on the storage thread), or exceptionally
   *     with TransferFailedException
   */
  public CompletableFuture<Installed> fetch(
      InetSocketAddress source,
      long clusterIdHash,
      int selfId,
      long view,
      long applied,
      Consumer<Runnable> onStorageThread,
      KvStateMachine stateMachine,
      Storage storage,
      Duration timeout) {
    return fetch(
        source,
        clusterIdHash,
        selfId,
        view,
        applied,
        onStorageThread,
        InstallTarget.of(stateMachine, storage),
        timeout);
  }

  /** Fetches a snapshot from source and installs it into target (see the class comment). */
  public CompletableFuture<Installed> fetch(
      InetSocketAddress source,
      long clusterIdHash,
      int selfId,
      long view,
      long applied,
      Consumer<Runnable> onStorageThread,
      InstallTarget target,
      Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive: " + timeout);
    }
    long timeoutMs = Math.max(1, timeout.toMillis());
    if (auth != null && auth.selfId() != selfId) {
      throw new IllegalArgumentException("auth is replica " + auth.selfId() + "'s, not " + selfId + "'s");
    }
    int sourceId = auth == null ? -1 : auth.idOf(source);
    EventLoop loop = group.next();
    Transfer transfer = new Transfer(source, loop);
    transfer.receiver =
        new StateTransferReceiver(
            String.valueOf(source),
            clusterIdHash,
            selfId,
            applied,
            limits.receiverLimits(),
            target,
            onStorageThread::accept,
            transfer::stepDone);
    transfer.view = view;
    transfer.receiver.result().whenComplete(transfer::finished);
    Bootstrap b =
        new Bootstrap()
            .group(loop)
            .channel(channelType)
            .option(ChannelOption.AUTO_READ, false)
            .option(ChannelOption.TCP_NODELAY, true)
            .option(
                ChannelOption.CONNECT_TIMEOUT_MILLIS,
                (int) Math.min(Integer.MAX_VALUE, Math.min(timeoutMs, limits.connectTimeoutMs())))
            .option(
                ChannelOption.RCVBUF_ALLOCATOR,
                new AdaptiveRecvByteBufAllocator(512, 64 << 10, 1 << 20))
            .handler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    codec.addTo(ch.pipeline(), limits.maxFrameBytes())
                        .addLast("transfer", transfer);
                    if (auth != null) {
                      auth.addConnector(ch.pipeline(), sourceId); // first: it proves the source
                    }
                  }
                });
    if (auth != null && auth.connectorLocalAddress() != null) {
      b.localAddress(auth.connectorLocalAddress());
    }
    if (auth != null && auth.authenticated() && sourceId < 0) {
      transfer.receiver.onError("cannot prove a state transfer source that is not a member's peer address: "
          + source, null);
      return transfer.receiver.result();
    }
    // Armed before connecting, so it bounds the connect too; runs on the transfer's loop.
    try {
      transfer.timer =
          loop.schedule(
              () -> transfer.receiver.onTimeout("after " + timeoutMs + " ms"),
              timeoutMs,
              TimeUnit.MILLISECONDS);
      loop.execute(() -> connect(b, source, transfer));
    } catch (RejectedExecutionException e) {
      // Closed: no loop will ever drive this transfer, so it fails here, before anything was queued.
      transfer.receiver.onError("the state transfer client is closed", e);
    }
    return transfer.receiver.result();
  }

  /** Connects (on the transfer's loop); a failure goes to the receiver. */
  private static void connect(Bootstrap b, InetSocketAddress source, Transfer transfer) {
    ChannelFuture connect;
    try {
      connect = b.connect(source);
    } catch (RuntimeException e) {
      transfer.receiver.onError("cannot start connecting to " + source, e);
      return;
    }
    connect.addListener(
        (ChannelFutureListener)
            f -> {
              if (!f.isSuccess()) {
                transfer.receiver.onError("cannot connect to " + source, f.cause());
              }
            });
  }

  /** Stops the event loop; fetches in progress fail (their pending storage steps do nothing). */
  @Override
  public void close() {
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
  }

  /**
   * Transfer drives one receiver over one channel; every call into the receiver runs on loop (the
   * fields are confined to it, except those set before the first event).
   */
  private final class Transfer extends SimpleChannelInboundHandler<PeerEnvelope> {
    private final InetSocketAddress source;
    private final EventLoop loop;
    StateTransferReceiver receiver;
    long view;
    volatile ScheduledFuture<?> timer;
    private Channel channel;

    Transfer(InetSocketAddress source, EventLoop loop) {
      this.source = source;
      this.loop = loop;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      channel = ctx.channel();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      if (!receiver.wantsConnection()) {
        ctx.close(); // failed (timed out) while connecting
        return;
      }
      ctx.writeAndFlush(receiver.request(view))
          .addListener(ChannelFutureListener.FIRE_EXCEPTION_ON_FAILURE);
      ctx.read();
      ctx.fireChannelActive();
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, PeerEnvelope envelope) {
      receiver.onFrame(envelope);
      if (!receiver.wantsConnection()) {
        ctx.close();
      } else if (receiver.wantsRead()) {
        ctx.read();
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      receiver.onClosed();
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      receiver.onError("state transfer connection to " + source + " failed", cause);
      ctx.close();
    }

    /** A storage step ran (storage thread): re-check the receiver on the loop. */
    void stepDone() {
      try {
        loop.execute(
            () -> {
              Channel ch = channel;
              if (ch == null) {
                return;
              }
              if (!receiver.wantsConnection()) {
                ch.close();
              } else if (receiver.wantsRead()) {
                ch.read();
              }
            });
      } catch (RejectedExecutionException e) {
        // The client is closed: nothing more will be read, and the storage thread goes on.
      }
    }

    /** The outcome (any thread): stop the timer, close the connection, log. */
    void finished(Installed installed, Throwable error) {
      ScheduledFuture<?> t = timer;
      if (t != null) {
        t.cancel(false);
      }
      try {
        loop.execute(
            () -> {
              if (channel != null) {
                channel.close();
              }
            });
      } catch (RejectedExecutionException e) {
        // closed: the channel is closed with the loop
      }
      if (error == null) {
        log.atInfo()
            .addKeyValue("from", source)
            .addKeyValue("op", installed.op())
            .addKeyValue("chunks", receiver.chunks())
            .addKeyValue("pairs", receiver.pairs())
            .log("state transfer installed");
      } else {
        boolean started =
            error instanceof TransferFailedException f && f.installStarted();
        log.atWarn()
            .addKeyValue("from", source)
            .addKeyValue("install_started", started)
            .log("state transfer failed: {}{}", error.getMessage(),
                error.getCause() == null ? "" : ": " + error.getCause());
      }
    }
  }
}
