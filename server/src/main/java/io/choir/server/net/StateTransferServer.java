package io.choir.server.net;

import com.google.protobuf.InvalidProtocolBufferException;
import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.StateTransferChunk;
import io.choir.proto.wire.DatagramHeader;
import io.choir.proto.wire.FrameDecoder;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.socket.SocketChannel;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * StateTransferServer serves state transfers (DESIGN.md "Loss, repair and flow"): a replica that needs
 * ops this replica's log no longer holds connects over TCP to this replica's peer address, sends one
 * {@link PeerEnvelope} with a StateTransferRequest, and receives a consistent snapshot of this
 * replica's applied state as a stream of StateTransferChunk envelopes, then the server closes.
 *
 * <p>Stream: every chunk carries the snapshot's op (applied number) and checksum; first the data pairs
 * in key order (each chunk at most maxChunkPairs pairs and about maxChunkBytes of keys and values; a
 * single larger pair goes alone), then the client table rows (spread over chunks by the same byte
 * bound); the final chunk has last = true (it may carry nothing else). When the snapshot's op is not
 * above the request's applied number, the answer is that one empty last chunk: the asker refuses it
 * (installing it would move the asker back), and nothing else is read or sent.
 *
 * <p>Why a snapshot and not the live state: the replica keeps applying while it streams, and a
 * receiver that installed keys from different ops under one applied number would silently diverge.
 * The storage snapshot reads applied, checksum, data and clients as of one instant, and they were
 * written together in one WriteSet, so they agree.
 *
 * <p>Bounds: at most maxConnections open connections and maxConcurrentTransfers snapshots at a time
 * (a snapshot pins old RocksDB versions); more are refused by closing. A connection must send its
 * request within requestTimeoutMs and finish within transferTimeoutMs, else it is closed (a receiver
 * that stops reading must not pin a snapshot forever). Memory: chunks are read from the snapshot only
 * while the channel is writable (write-buffer high watermark 2 * maxChunkBytes), so the database is
 * never buffered, only about three chunks per transfer.
 *
 * <p>Refusals (closing without an answer): another protocol version or cluster id, a sender that is
 * not a member, a body that is not a state transfer request, a second request on one connection, a
 * transfer limit reached, or a snapshot that is itself mid-install (this replica is catching up).
 *
 * <p>Threads: a dedicated event loop group (state transfers are rare and their storage reads block,
 * so they must not share the client or peer loops); every transfer's snapshot is used and closed on
 * its channel's event loop.
 */
public final class StateTransferServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StateTransferServer.class);

  private static final byte[] APPLIED = MetaKeys.bytes(MetaKeys.APPLIED);
  private static final byte[] CHECKSUM = MetaKeys.bytes(MetaKeys.CHECKSUM);
  private static final byte[] CLIENTS = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
  private static final byte[] INSTALLING = MetaKeys.bytes(MetaKeys.INSTALLING);

  /** A request envelope is tiny; anything bigger is not one. */
  private static final int MAX_REQUEST_FRAME_BYTES = 4096;

  /**
   * Limits are the server's bounds, each a named setting.
   *
   * @param maxConcurrentTransfers snapshots streamed at the same time; more requests are refused
   * @param maxConnections open connections (with or without a request yet); more are closed at once
   * @param maxChunkBytes key and value bytes per chunk (a single larger pair goes alone)
   * @param maxChunkPairs pairs per chunk
   * @param requestTimeoutMs time from connect to the request
   * @param transferTimeoutMs time from the request to the last chunk written
   */
  public record Limits(
      int maxConcurrentTransfers,
      int maxConnections,
      int maxChunkBytes,
      int maxChunkPairs,
      long requestTimeoutMs,
      long transferTimeoutMs) {
    public Limits {
      if (maxConcurrentTransfers < 1) {
        throw new IllegalArgumentException(
            "maxConcurrentTransfers must be at least 1: " + maxConcurrentTransfers);
      }
      if (maxConnections < maxConcurrentTransfers) {
        throw new IllegalArgumentException(
            "maxConnections must be at least maxConcurrentTransfers: " + maxConnections);
      }
      if (maxChunkBytes < 1024 || maxChunkBytes > 1 << 30) {
        throw new IllegalArgumentException("maxChunkBytes must be in [1 KiB, 1 GiB]: " + maxChunkBytes);
      }
      if (maxChunkPairs < 1) {
        throw new IllegalArgumentException("maxChunkPairs must be at least 1: " + maxChunkPairs);
      }
      if (requestTimeoutMs < 1 || transferTimeoutMs < 1) {
        throw new IllegalArgumentException(
            "timeouts must be positive: " + requestTimeoutMs + ", " + transferTimeoutMs);
      }
    }

    /**
     * Limits.defaults: 2 transfers, 8 connections, 1 MiB and 65,536 pairs per chunk, 10 s to send the
     * request, 10 minutes per transfer.
     */
    public static Limits defaults() {
      return new Limits(2, 8, 1 << 20, 65_536, 10_000, 600_000);
    }
  }

  private final int selfId;
  private final long clusterIdHash;
  private final Set<Integer> memberIds;
  private final LongSupplier view;
  private final Storage storage;
  private final Limits limits;
  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final Channel serverChannel;
  private final FrameEncoder encoder = new FrameEncoder();
  private final ProtobufFrameDecoder<PeerEnvelope> decoder =
      new ProtobufFrameDecoder<>(PeerEnvelope.parser());

  private final AtomicInteger connections = new AtomicInteger();
  private final AtomicInteger transfers = new AtomicInteger();
  private final AtomicLong served = new AtomicLong();
  private final AtomicLong refused = new AtomicLong();
  private final AtomicLong chunksWritten = new AtomicLong();

  /**
   * StateTransferServer binds bind (the replica's peer address, TCP) and serves snapshots of storage.
   *
   * @param selfId this replica's id (the sender of every chunk)
   * @param clusterIdHash the cluster id a request must carry
   * @param memberIds the replica ids allowed to ask
   * @param view the current view, stamped on chunks (informational: the snapshot is of committed state)
   * @param ioThreads worker event loop threads (1 is plenty)
   */
  public StateTransferServer(
      InetSocketAddress bind,
      int selfId,
      long clusterIdHash,
      Set<Integer> memberIds,
      LongSupplier view,
      Storage storage,
      Limits limits,
      int ioThreads)
      throws InterruptedException {
    if (ioThreads < 1) {
      throw new IllegalArgumentException("ioThreads must be at least 1: " + ioThreads);
    }
    this.selfId = selfId;
    this.clusterIdHash = clusterIdHash;
    this.memberIds = Set.copyOf(memberIds);
    this.view = view;
    this.storage = storage;
    this.limits = limits;
    IoHandlerFactory factory = NettyIo.ioHandlerFactory();
    Class<? extends ServerChannel> channelType = NettyIo.serverChannelType();
    this.boss = new MultiThreadIoEventLoopGroup(1, factory);
    this.workers = new MultiThreadIoEventLoopGroup(ioThreads, factory);
    int high = (int) Math.min(Integer.MAX_VALUE, 2L * limits.maxChunkBytes());
    ServerBootstrap b =
        new ServerBootstrap()
            .group(boss, workers)
            .channel(channelType)
            .option(ChannelOption.SO_BACKLOG, 64)
            .option(ChannelOption.SO_REUSEADDR, true)
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childOption(
                ChannelOption.WRITE_BUFFER_WATER_MARK,
                new WriteBufferWaterMark(limits.maxChunkBytes(), high))
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    ch.pipeline()
                        .addLast("frames", new FrameDecoder(MAX_REQUEST_FRAME_BYTES))
                        .addLast("decode", decoder)
                        .addLast("encode", encoder)
                        .addLast("handler", new TransferHandler());
                  }
                });
    try {
      this.serverChannel = b.bind(bind).sync().channel();
    } catch (RuntimeException | InterruptedException e) {
      boss.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      workers.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      throw e;
    }
  }

  /** The bound address (the real port when the configured one was 0). */
  public InetSocketAddress localAddress() {
    return (InetSocketAddress) serverChannel.localAddress();
  }

  /** Transfers whose last chunk was written. */
  public long transfersServed() {
    return served.get();
  }

  /** Connections closed without a transfer: invalid or unauthorized requests, limits reached. */
  public long transfersRefused() {
    return refused.get();
  }

  /** Chunks handed to the network, over every transfer. */
  public long chunksWritten() {
    return chunksWritten.get();
  }

  /** Transfers streaming now. */
  public int activeTransfers() {
    return transfers.get();
  }

  /** Closes the listener and every connection (their snapshots are closed as they go inactive). */
  @Override
  public void close() {
    serverChannel.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
  }

  /**
   * TransferHandler serves one connection: it waits for the request, checks it, then streams the
   * snapshot chunk by chunk as the channel drains. All its state is confined to the channel's loop.
   */
  private final class TransferHandler extends SimpleChannelInboundHandler<PeerEnvelope> {
    private boolean counted;
    private boolean requested;
    private boolean holdsPermit;
    private ScheduledFuture<?> deadline;
    private StorageSnapshot snapshot;
    private long op;
    private long checksum;
    /** Next data key to read; null once the data is exhausted. */
    private byte[] cursor = new byte[0];
    private List<ClientRecord> clients;
    private int nextClient;
    private boolean lastWritten;
    private long chunks;

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      counted = true;
      if (connections.incrementAndGet() > limits.maxConnections()) {
        refuse(ctx, "too many state transfer connections");
        return;
      }
      deadline =
          ctx.executor()
              .schedule(
                  () -> refuse(ctx, "no state transfer request within the request timeout"),
                  limits.requestTimeoutMs(),
                  TimeUnit.MILLISECONDS);
      ctx.fireChannelActive();
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, PeerEnvelope envelope) {
      if (requested) {
        refuse(ctx, "a second request on one connection");
        return;
      }
      requested = true;
      String problem = check(envelope);
      if (problem != null) {
        refuse(ctx, problem);
        return;
      }
      if (transfers.incrementAndGet() > limits.maxConcurrentTransfers()) {
        transfers.decrementAndGet();
        refuse(ctx, "state transfer limit reached (" + limits.maxConcurrentTransfers() + ")");
        return;
      }
      holdsPermit = true;
      deadline.cancel(false);
      deadline =
          ctx.executor()
              .schedule(
                  () -> refuse(ctx, "state transfer timed out"),
                  limits.transferTimeoutMs(),
                  TimeUnit.MILLISECONDS);
      try {
        snapshot = storage.snapshot();
        if (snapshot.getMeta(INSTALLING) != null) {
          refuse(ctx, "this replica is installing a state transfer itself");
          return;
        }
        op = metaLong(APPLIED);
        checksum = metaLong(CHECKSUM);
        clients = new ArrayList<>();
        if (op <= envelope.getStateTransferRequest().getApplied()) {
          // Not ahead of the asker: one empty last chunk tells it so, instead of the whole state.
          cursor = null;
        } else {
          for (Map.Entry<byte[], byte[]> row : snapshot.scanMeta(CLIENTS)) {
            clients.add(ClientRecord.parseFrom(row.getValue()));
          }
        }
      } catch (InvalidProtocolBufferException | RuntimeException e) {
        log.atWarn().setCause(e).log("cannot snapshot the state for a state transfer");
        refuse(ctx, "cannot snapshot the state: " + e.getMessage());
        return;
      }
      log.atInfo()
          .addKeyValue("to", envelope.getSender())
          .addKeyValue("op", op)
          .addKeyValue("their_applied", envelope.getStateTransferRequest().getApplied())
          .log("serving a state transfer");
      // Stop reading: nothing more is expected, and a peer that sends more is ignored, not buffered.
      ctx.channel().config().setAutoRead(false);
      pump(ctx);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      if (snapshot != null && ctx.channel().isWritable()) {
        pump(ctx);
      }
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      release();
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      refuse(ctx, "connection failed: " + cause.getMessage());
    }

    /** Returns why envelope is refused, or null when it is a valid request from a member. */
    private String check(PeerEnvelope envelope) {
      if (envelope.getProtocolVersion() != DatagramHeader.PROTOCOL_VERSION) {
        return "protocol version " + envelope.getProtocolVersion();
      }
      if (envelope.getClusterId() != clusterIdHash) {
        return "another cluster id " + Long.toHexString(envelope.getClusterId());
      }
      if (!memberIds.contains(envelope.getSender())) {
        return "sender " + envelope.getSender() + " is not a member";
      }
      if (envelope.getBodyCase() != PeerEnvelope.BodyCase.STATE_TRANSFER_REQUEST) {
        return "not a state transfer request: " + envelope.getBodyCase();
      }
      return null;
    }

    /** Writes chunks while the channel is writable; the last one closes the connection. */
    private void pump(ChannelHandlerContext ctx) {
      Channel channel = ctx.channel();
      while (!lastWritten && channel.isActive() && channel.isWritable()) {
        StateTransferChunk chunk;
        try {
          chunk = nextChunk();
        } catch (RuntimeException e) {
          log.atWarn().setCause(e).log("cannot read the snapshot for a state transfer");
          refuse(ctx, "cannot read the snapshot: " + e.getMessage());
          return;
        }
        chunks++;
        chunksWritten.incrementAndGet();
        ChannelFuture written =
            ctx.writeAndFlush(
                PeerEnvelope.newBuilder()
                    .setProtocolVersion(DatagramHeader.PROTOCOL_VERSION)
                    .setClusterId(clusterIdHash)
                    .setView(view.getAsLong())
                    .setSender(selfId)
                    .setStateTransferChunk(chunk)
                    .build());
        written.addListener(ChannelFutureListener.CLOSE_ON_FAILURE);
        if (chunk.getLast()) {
          lastWritten = true;
          written.addListener(
              (ChannelFutureListener)
                  f -> {
                    if (f.isSuccess()) {
                      served.incrementAndGet();
                      log.atInfo()
                          .addKeyValue("op", op)
                          .addKeyValue("chunks", chunks)
                          .log("state transfer served");
                    }
                    f.channel().close();
                  });
          // Every chunk is read; the snapshot is no longer needed while the last bytes drain (the
          // deadline still bounds the drain).
          releaseSnapshot();
        }
      }
    }

    /** Reads the next chunk: data pairs first, then client rows; last once both are exhausted. */
    private StateTransferChunk nextChunk() {
      StateTransferChunk.Builder chunk =
          StateTransferChunk.newBuilder().setOp(op).setChecksum(checksum);
      if (cursor != null) {
        List<KeyValue> kvs =
            snapshot.scanData(cursor, limits.maxChunkPairs(), limits.maxChunkBytes());
        if (!kvs.isEmpty()) {
          cursor = Bytes.successor(kvs.get(kvs.size() - 1).getKey().toByteArray());
          return chunk.addAllKvs(kvs).build();
        }
        cursor = null; // data exhausted: this chunk carries client rows
      }
      long bytes = 0;
      while (nextClient < clients.size()) {
        ClientRecord record = clients.get(nextClient);
        int size = record.getSerializedSize();
        if (chunk.getClientsCount() > 0 && bytes + size > limits.maxChunkBytes()) {
          break;
        }
        chunk.addClients(record);
        bytes += size;
        nextClient++;
      }
      return chunk.setLast(nextClient == clients.size()).build();
    }

    private long metaLong(byte[] key) {
      byte[] value = snapshot.getMeta(key);
      return value == null ? 0 : Bytes.bytesToLong(value);
    }

    private void refuse(ChannelHandlerContext ctx, String why) {
      if (!lastWritten) {
        refused.incrementAndGet();
        log.atWarn()
            .addKeyValue("remote", ctx.channel().remoteAddress())
            .log("state transfer connection refused or aborted: {}", why);
      }
      lastWritten = true; // nothing more goes out on this connection
      release();
      ctx.close();
    }

    /** Closes the snapshot, cancels the deadline and gives back both permits, once. */
    private void release() {
      if (deadline != null) {
        deadline.cancel(false);
        deadline = null;
      }
      releaseSnapshot();
      if (counted) {
        counted = false;
        connections.decrementAndGet();
      }
    }

    /** Closes the snapshot and gives back the transfer permit, once. */
    private void releaseSnapshot() {
      if (snapshot != null) {
        try {
          snapshot.close();
        } catch (RuntimeException e) {
          log.atWarn().setCause(e).log("cannot close a state transfer snapshot");
        }
        snapshot = null;
      }
      if (holdsPermit) {
        holdsPermit = false;
        transfers.decrementAndGet();
      }
    }
  }
}
