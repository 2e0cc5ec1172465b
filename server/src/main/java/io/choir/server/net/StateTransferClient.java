package io.choir.server.net;

import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.StateTransferChunk;
import io.choir.proto.StateTransferRequest;
import io.choir.proto.wire.DatagramHeader;
import io.choir.proto.wire.FrameDecoder;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.choir.server.statemachine.KvStateMachine;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.SocketChannel;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * StateTransferClient fetches a state transfer (DESIGN.md "Loss, repair and flow") from another
 * replica's {@link StateTransferServer} and installs it through the {@link KvStateMachine}, on the
 * storage-writer thread: {@link KvStateMachine#beginInstall} on the first chunk, {@link
 * KvStateMachine#installData} per chunk, {@link KvStateMachine#installSnapshot} after the last.
 *
 * <p>Ordering assumption: {@code onStorageThread} runs the Runnables it is given one at a time, in the
 * order given, on the one thread that writes storage (the replica's storage stage; a single-thread
 * executor in tests), each exactly once. The install steps then interleave safely with the stage's
 * other writes, and the returned future completes ON that thread right after installSnapshot, so a
 * callback that posts Event.StateInstalled is ordered before any later storage event. The Runnables
 * rethrow a storage failure after failing the future, so the stage fails-stop as with any storage
 * error. {@code onStorageThread} may block briefly (a bounded queue): it is called on this client's
 * own event loop, never on the replica's.
 *
 * <p>Failure: any error, the timeout, a disconnect before the last chunk or an invalid stream (other
 * cluster id, op or checksum changing between chunks, keys not strictly ascending, a client table
 * above maxClientTableBytes) completes the future with {@link TransferFailedException}; Runnables not
 * yet run then do nothing. If the install had begun ({@link TransferFailedException#installStarted()})
 * storage holds the "installing" marker and a partial state, which the next fetch's beginInstall
 * resets (or {@link KvStateMachine#load} wipes after a restart): until then nothing may be applied.
 * Once the last chunk is in hand the connection is no longer needed, and once installSnapshot has
 * started the outcome is its own (the timeout no longer interrupts a local write).
 *
 * <p>A snapshot at an op not above the caller's applied number is refused before storage is touched:
 * installing it would move the replica back in time.
 *
 * <p>Memory: reads stop while maxQueuedChunks chunks wait for the storage thread (TCP backpressure
 * then stops the source), so at most about that many chunks, plus the client table, are held.
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
      if (maxClientTableBytes < 0) {
        throw new IllegalArgumentException(
            "maxClientTableBytes must not be negative: " + maxClientTableBytes);
      }
      if (maxQueuedChunks < 1) {
        throw new IllegalArgumentException("maxQueuedChunks must be at least 1: " + maxQueuedChunks);
      }
      if (connectTimeoutMs < 1) {
        throw new IllegalArgumentException("connectTimeoutMs must be positive: " + connectTimeoutMs);
      }
    }

    /** Limits.defaults: 64 MiB frames, 256 MiB of client rows, 4 queued chunks, 5 s to connect. */
    public static Limits defaults() {
      return new Limits(64 << 20, 256L << 20, 4, 5_000);
    }
  }

  /** Installed is what a successful fetch installed: the snapshot's op and the checksum at it. */
  public record Installed(long op, long checksum) {}

  /** TransferFailedException says why a fetch failed and whether storage was touched. */
  public static final class TransferFailedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final boolean installStarted;

    public TransferFailedException(String message, Throwable cause, boolean installStarted) {
      super(message, cause);
      this.installStarted = installStarted;
    }

    /**
     * True when beginInstall may have run: storage may hold the "installing" marker and a partial
     * state, so the replica must not apply anything until a later fetch succeeds (or a restart wipes).
     */
    public boolean installStarted() {
      return installStarted;
    }
  }

  private final Limits limits;
  private final EventLoopGroup group;
  private final Class<? extends SocketChannel> channelType;
  private final FrameEncoder encoder = new FrameEncoder();
  private final ProtobufFrameDecoder<PeerEnvelope> decoder =
      new ProtobufFrameDecoder<>(PeerEnvelope.parser());

  /** StateTransferClient starts its own one-thread event loop (epoll when available). */
  public StateTransferClient(Limits limits) {
    this.limits = limits;
    IoHandlerFactory factory = NettyIo.ioHandlerFactory();
    this.channelType = NettyIo.socketChannelType();
    this.group = new MultiThreadIoEventLoopGroup(1, factory);
  }

  /**
   * Fetches a snapshot from source and installs it (see the class comment).
   *
   * @param source the source replica's peer address (its StateTransferServer)
   * @param clusterIdHash this cluster's id, sent and checked on every chunk
   * @param selfId this replica's id (the source checks it is a member)
   * @param view this replica's view (informational)
   * @param applied this replica's applied op: the snapshot must be above it
   * @param onStorageThread runs Runnables in order on the storage-writer thread
   * @param stateMachine the state machine the snapshot is installed through
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
      Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("timeout must be positive: " + timeout);
    }
    Transfer transfer =
        new Transfer(source, clusterIdHash, selfId, view, applied, onStorageThread, stateMachine);
    long timeoutMs = Math.max(1, timeout.toMillis());
    Bootstrap b =
        new Bootstrap()
            .group(group)
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
                    ch.pipeline()
                        .addLast("frames", new FrameDecoder(limits.maxFrameBytes()))
                        .addLast("decode", decoder)
                        .addLast("encode", encoder)
                        .addLast("transfer", transfer);
                  }
                });
    transfer.armTimeout(timeoutMs);
    ChannelFuture connect;
    try {
      connect = b.connect(source);
    } catch (RuntimeException e) {
      transfer.fail("cannot start connecting to " + source, e);
      return transfer.result;
    }
    connect.addListener(
        (ChannelFutureListener)
            f -> {
              if (!f.isSuccess()) {
                transfer.fail("cannot connect to " + source, f.cause());
              }
            });
    return transfer.result;
  }

  /** Stops the event loop; fetches in progress fail (their pending storage steps do nothing). */
  @Override
  public void close() {
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
  }

  /** Phase of one transfer; moves only forward. */
  private enum Phase {
    /** Chunks are arriving. */
    RECEIVING,
    /** The last chunk is in hand; the connection is closed; storage steps may still be queued. */
    RECEIVED,
    /** installSnapshot runs on the storage thread; only its outcome decides. */
    FINISHING,
    DONE,
    FAILED
  }

  /**
   * Transfer is one fetch: the channel's handler (its fields without volatile are confined to the
   * channel's event loop) and the storage steps it queues.
   */
  private final class Transfer extends SimpleChannelInboundHandler<PeerEnvelope> {
    final CompletableFuture<Installed> result = new CompletableFuture<>();
    private final AtomicReference<Phase> phase = new AtomicReference<>(Phase.RECEIVING);
    private final InetSocketAddress source;
    private final long clusterIdHash;
    private final int selfId;
    private final long view;
    private final long applied;
    private final Consumer<Runnable> onStorageThread;
    private final KvStateMachine stateMachine;
    private volatile boolean installStarted;
    private volatile Channel channel;
    private volatile ScheduledFuture<?> timer;

    private boolean begun;
    private long op;
    private long checksum;
    private byte[] lastKey;
    private final List<ClientRecord> clients = new ArrayList<>();
    private long clientBytes;
    private int queued;
    private long chunks;
    private long pairs;

    Transfer(
        InetSocketAddress source,
        long clusterIdHash,
        int selfId,
        long view,
        long applied,
        Consumer<Runnable> onStorageThread,
        KvStateMachine stateMachine) {
      this.source = source;
      this.clusterIdHash = clusterIdHash;
      this.selfId = selfId;
      this.view = view;
      this.applied = applied;
      this.onStorageThread = onStorageThread;
      this.stateMachine = stateMachine;
    }

    /** Arms the timeout of the whole fetch (before connecting, so it bounds the connect too). */
    void armTimeout(long timeoutMs) {
      timer =
          group.schedule(
              () -> fail("timed out after " + timeoutMs + " ms", null),
              timeoutMs,
              TimeUnit.MILLISECONDS);
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      channel = ctx.channel();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      if (phase.get() != Phase.RECEIVING) {
        ctx.close(); // failed (timed out) while connecting
        return;
      }
      ctx.writeAndFlush(
              PeerEnvelope.newBuilder()
                  .setProtocolVersion(DatagramHeader.PROTOCOL_VERSION)
                  .setClusterId(clusterIdHash)
                  .setView(view)
                  .setSender(selfId)
                  .setStateTransferRequest(StateTransferRequest.newBuilder().setApplied(applied))
                  .build())
          .addListener(ChannelFutureListener.FIRE_EXCEPTION_ON_FAILURE);
      ctx.read();
      ctx.fireChannelActive();
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, PeerEnvelope envelope) {
      if (phase.get() != Phase.RECEIVING) {
        return; // failed, or past the last chunk: nothing more is wanted
      }
      String problem = check(envelope);
      if (problem != null) {
        fail("invalid state transfer stream from " + source + ": " + problem, null);
        return;
      }
      StateTransferChunk chunk = envelope.getStateTransferChunk();
      chunks++;
      if (!begun) {
        op = chunk.getOp();
        checksum = chunk.getChecksum();
        if (op <= applied) {
          fail("source " + source + " is at op " + op + ", not above our applied " + applied, null);
          return;
        }
        begun = true;
        queue(
            () -> {
              installStarted = true; // before the phase check: a racing failure reports it
              if (live()) {
                stateMachine.beginInstall();
              }
            });
      }
      if (chunk.getKvsCount() > 0) {
        List<KeyValue> kvs = chunk.getKvsList();
        pairs += kvs.size();
        queue(
            () -> {
              if (live()) {
                stateMachine.installData(kvs);
              }
            });
      }
      for (ClientRecord record : chunk.getClientsList()) {
        clientBytes += record.getSerializedSize();
        if (clientBytes > limits.maxClientTableBytes()) {
          fail("client table exceeds maxClientTableBytes " + limits.maxClientTableBytes(), null);
          return;
        }
        clients.add(record);
      }
      if (chunk.getLast()) {
        if (phase.compareAndSet(Phase.RECEIVING, Phase.RECEIVED)) {
          ctx.close();
          finish();
        }
        return;
      }
      if (queued < limits.maxQueuedChunks()) {
        ctx.read();
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (phase.get() == Phase.RECEIVING) {
        fail("source " + source + " closed the connection before the last chunk", null);
      }
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      if (phase.get() == Phase.RECEIVING) {
        fail("state transfer connection to " + source + " failed", cause);
      }
      ctx.close();
    }

    /** Returns what is wrong with a chunk envelope, or null (event loop). */
    private String check(PeerEnvelope envelope) {
      if (envelope.getProtocolVersion() != DatagramHeader.PROTOCOL_VERSION) {
        return "protocol version " + envelope.getProtocolVersion();
      }
      if (envelope.getClusterId() != clusterIdHash) {
        return "another cluster id " + Long.toHexString(envelope.getClusterId());
      }
      if (envelope.getBodyCase() != PeerEnvelope.BodyCase.STATE_TRANSFER_CHUNK) {
        return "not a state transfer chunk: " + envelope.getBodyCase();
      }
      StateTransferChunk chunk = envelope.getStateTransferChunk();
      if (begun && (chunk.getOp() != op || chunk.getChecksum() != checksum)) {
        return "chunk " + chunks + " is at op " + chunk.getOp() + ", the first at op " + op;
      }
      for (KeyValue kv : chunk.getKvsList()) {
        byte[] key = kv.getKey().toByteArray();
        if (lastKey != null && Arrays.compareUnsigned(key, lastKey) <= 0) {
          return "keys are not strictly ascending";
        }
        lastKey = key;
      }
      return null;
    }

    /** Queues the last step: installSnapshot, which completes the future (event loop). */
    private void finish() {
      List<ClientRecord> rows = List.copyOf(clients);
      long finalOp = op;
      long finalChecksum = checksum;
      long total = pairs;
      submit(
          () -> {
            if (!phase.compareAndSet(Phase.RECEIVED, Phase.FINISHING)) {
              return; // failed meanwhile (timeout): leave the marker for the next fetch
            }
            try {
              stateMachine.installSnapshot(finalOp, finalChecksum, rows);
            } catch (Throwable t) {
              phase.set(Phase.FAILED);
              cancelTimer();
              result.completeExceptionally(
                  new TransferFailedException("cannot install the state transfer", t, true));
              throw t;
            }
            phase.set(Phase.DONE);
            cancelTimer();
            log.atInfo()
                .addKeyValue("from", source)
                .addKeyValue("op", finalOp)
                .addKeyValue("pairs", total)
                .addKeyValue("clients", rows.size())
                .log("state transfer installed");
            result.complete(new Installed(finalOp, finalChecksum));
          });
    }

    /** Queues a storage step counted against maxQueuedChunks; reading resumes as steps finish. */
    private void queue(Runnable step) {
      queued++;
      submit(
          () -> {
            try {
              step.run();
            } catch (Throwable t) {
              fail("cannot write the state transfer to storage", t);
              throw t;
            } finally {
              try {
                channel.eventLoop().execute(this::stepDone);
              } catch (RejectedExecutionException e) {
                // The client is closed: nothing more will be read, and the storage thread goes on.
              }
            }
          });
    }

    /** A queued step ran (event loop): read on when the window has room. */
    private void stepDone() {
      queued--;
      if (phase.get() == Phase.RECEIVING && queued < limits.maxQueuedChunks()) {
        channel.read();
      }
    }

    private void submit(Runnable step) {
      try {
        onStorageThread.accept(step);
      } catch (RuntimeException e) {
        fail("cannot queue a state transfer step on the storage thread", e);
      }
    }

    /** True while storage steps should still run. */
    private boolean live() {
      Phase p = phase.get();
      return p == Phase.RECEIVING || p == Phase.RECEIVED;
    }

    /** Fails the transfer unless it finished or is finishing (any thread). */
    void fail(String why, Throwable cause) {
      Phase p = phase.get();
      while (p == Phase.RECEIVING || p == Phase.RECEIVED) {
        if (phase.compareAndSet(p, Phase.FAILED)) {
          cancelTimer();
          Channel ch = channel;
          if (ch != null) {
            ch.close();
          }
          log.atWarn()
              .addKeyValue("from", source)
              .addKeyValue("install_started", installStarted)
              .log("state transfer failed: {}{}", why, cause == null ? "" : ": " + cause);
          result.completeExceptionally(new TransferFailedException(why, cause, installStarted));
          return;
        }
        p = phase.get();
      }
    }

    private void cancelTimer() {
      ScheduledFuture<?> t = timer;
      if (t != null) {
        t.cancel(false);
      }
    }
  }
}
