package io.choir.server.net;

import io.choir.proto.PeerEnvelope;
import io.choir.server.net.transfer.StateTransferSender;
import io.choir.server.net.transfer.TransferCodec;
import io.choir.server.storage.Storage;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.socket.SocketChannel;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * StateTransferServer is the listener on a replica's peer address (TCP): it serves state transfers
 * (DESIGN.md "Loss, repair and flow") and accepts peer streams (the unicast peer messages too big for
 * one datagram, see {@link PeerRouting}). A connection's first envelope decides which it is.
 *
 * <p>State transfer: a replica that needs ops this replica's log no longer holds connects, sends one
 * {@link PeerEnvelope} with a StateTransferRequest, and receives a consistent snapshot of this
 * replica's applied state as a stream of StateTransferChunk envelopes, then the server closes. The
 * stream itself (chunking, the snapshot's consistency, the digest in the last chunk) is the pure
 * {@link StateTransferSender}'s; this class and its {@link TransferConnection}s (one per connection,
 * sharing a {@link TransferServerState}) are its Netty driver: a connection asks the sender for the next
 * chunk only while the channel is writable, within the bounds and timeouts below.
 *
 * <p>Bounds: at most maxConnections open connections not yet known as peer streams and
 * maxConcurrentTransfers snapshots at a time (a snapshot pins old RocksDB versions); more are refused
 * by closing. A connection must send its first envelope within requestTimeoutMs and a transfer finish
 * within transferTimeoutMs, else it is closed (a receiver that stops reading must not pin a snapshot
 * forever). Memory: chunks are read from the snapshot only while the channel is writable
 * (write-buffer high watermark 2 * maxChunkBytes), so the database is never buffered, only about
 * three chunks per transfer.
 *
 * <p>Admission ({@link PeerTcpAuth}): with the cluster key, a connection is read only once it has
 * proven itself (the mutual handshake, then sealed records), and its envelopes must name the sender
 * it proved; without a key, only from a member host. The bounds and timeouts below start once a
 * connection is admitted (the handshake has its own).
 *
 * <p>Refusals (closing without an answer): another protocol version or cluster id, a sender that is
 * not a member, a request envelope above 4 KiB, a second request on one connection, a transfer limit
 * reached, or a snapshot that is itself mid-install (this replica is catching up); without a peer
 * stream sink, also any first envelope that is not a state transfer request.
 *
 * <p>Peer streams (only with a {@link PeerStreamSink}): a connection whose first envelope is a peer
 * message becomes a peer stream: every envelope on it goes to the sink, which checks it like a
 * datagram (version, cluster id, member sender, type) and counts drops by reason. A stream whose first
 * envelope the sink refuses is closed; so is a stream whose frame is above the sink's maxFrameBytes
 * (counted frame_too_large) or does not parse (malformed). Envelopes naming another sender than the
 * stream's first are dropped (sender_changed). One stream per sender: a new one (the peer restarted
 * and reconnected) closes the older, so peer streams are at most one per other member, besides the
 * maxConnections bound. Memory per connection: at most one frame being assembled, so every frame
 * limit here is the sink's maxFrameBytes when a sink is given (4 KiB without).
 *
 * <p>Threads: a dedicated event loop group (state transfers are rare and their storage reads block,
 * so they must not share the client or peer datagram loops); every transfer's snapshot is used and
 * closed on its channel's event loop.
 */
public final class StateTransferServer implements AutoCloseable {
  /** A request envelope is tiny; anything bigger is not one. */
  static final int MAX_REQUEST_FRAME_BYTES = 4096;

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

  /** Replaced whole when the members change ({@link #updateMembers}); read per new connection. */
  private volatile StateTransferSender.Config senderConfig;
  private final PeerTcpAuth auth;
  private final PeerStreamSink peerStreams;
  private final LongSupplier view;
  private final Storage storage;
  private final Limits limits;
  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final Channel serverChannel;
  private final TransferCodec codec = new TransferCodec();
  private final TransferServerState state;

  /**
   * StateTransferServer binds bind (the replica's peer address, TCP) and serves snapshots of storage;
   * no peer streams (a first envelope that is not a state transfer request is refused).
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
    this(bind, selfId, clusterIdHash, memberIds, view, storage, limits, ioThreads, null);
  }

  /**
   * StateTransferServer binds bind (the replica's peer address, TCP), serves snapshots of storage,
   * and hands peer streams to peerStreams.
   *
   * @param selfId this replica's id (the sender of every chunk)
   * @param clusterIdHash the cluster id a request must carry
   * @param memberIds the replica ids allowed to ask
   * @param view the current view, stamped on chunks (informational: the snapshot is of committed state)
   * @param ioThreads worker event loop threads (1 is plenty)
   * @param peerStreams where peer stream envelopes go ({@link PeerTransport#streamSink()}), or null to
   *     refuse peer streams
   */
  public StateTransferServer(
      InetSocketAddress bind,
      int selfId,
      long clusterIdHash,
      Set<Integer> memberIds,
      LongSupplier view,
      Storage storage,
      Limits limits,
      int ioThreads,
      PeerStreamSink peerStreams)
      throws InterruptedException {
    this(bind, selfId, clusterIdHash, memberIds, view, storage, limits, ioThreads, peerStreams,
        PeerTcpAuth.unchecked(selfId, clusterIdHash, memberIds));
  }

  /**
   * StateTransferServer binds bind, serves snapshots of storage and hands peer streams to peerStreams
   * (or null), admitting only the connections auth admits: proven with the cluster key, or without a
   * key from a member host (see {@link PeerTcpAuth}); others are closed before their first envelope
   * is read.
   */
  public StateTransferServer(
      InetSocketAddress bind,
      int selfId,
      long clusterIdHash,
      Set<Integer> memberIds,
      LongSupplier view,
      Storage storage,
      Limits limits,
      int ioThreads,
      PeerStreamSink peerStreams,
      PeerTcpAuth auth)
      throws InterruptedException {
    if (auth.selfId() != selfId) {
      throw new IllegalArgumentException("auth is replica " + auth.selfId() + "'s, not " + selfId + "'s");
    }
    this.auth = auth;
    if (ioThreads < 1) {
      throw new IllegalArgumentException("ioThreads must be at least 1: " + ioThreads);
    }
    this.senderConfig =
        new StateTransferSender.Config(
            selfId, clusterIdHash, memberIds, limits.maxChunkBytes(), limits.maxChunkPairs());
    this.peerStreams = peerStreams;
    this.view = view;
    this.storage = storage;
    this.limits = limits;
    this.state = new TransferServerState(limits.maxConnections(), limits.maxConcurrentTransfers());
    IoHandlerFactory factory = NettyIo.ioHandlerFactory();
    Class<? extends ServerChannel> channelType = NettyIo.serverChannelType();
    this.boss = new MultiThreadIoEventLoopGroup(1, factory);
    this.workers = new MultiThreadIoEventLoopGroup(ioThreads, factory);
    int high = (int) Math.min(Integer.MAX_VALUE, 2L * limits.maxChunkBytes());
    int maxFrameBytes =
        peerStreams == null
            ? MAX_REQUEST_FRAME_BYTES
            : Math.max(MAX_REQUEST_FRAME_BYTES, peerStreams.maxFrameBytes());
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
                    codec.addTo(ch.pipeline(), maxFrameBytes)
                        .addLast("handler", new TransferConnection(state, limits, senderConfig, auth, peerStreams, storage, view));
                    auth.addAcceptor(ch.pipeline()); // first: nothing is read before it admits
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

  /**
   * The replica ids allowed to ask for a state transfer from now on (a membership change); transfers
   * already running finish under the set they started with.
   */
  public void updateMembers(Set<Integer> memberIds) {
    StateTransferSender.Config c = senderConfig;
    senderConfig = new StateTransferSender.Config(c.selfId(), c.clusterIdHash(), memberIds, c.maxChunkBytes(),
        c.maxChunkPairs());
  }

  /** The replica ids allowed to ask now. */
  public Set<Integer> memberIds() {
    return senderConfig.memberIds();
  }

  /** The bound address (the real port when the configured one was 0). */
  public InetSocketAddress localAddress() {
    return (InetSocketAddress) serverChannel.localAddress();
  }

  /** Transfers whose last chunk was written. */
  public long transfersServed() {
    return state.served();
  }

  /** Connections closed without a transfer: invalid or unauthorized requests, limits reached. */
  public long transfersRefused() {
    return state.refused();
  }

  /** Chunks handed to the network, over every transfer. */
  public long chunksWritten() {
    return state.chunksWritten();
  }

  /** Connections accepted as peer streams. */
  public long peerStreamsAccepted() {
    return state.streamsAccepted();
  }

  /** Peer streams open now. */
  public int openPeerStreams() {
    return state.openStreams();
  }

  /** Transfers streaming now. */
  public int activeTransfers() {
    return state.activeTransfers();
  }

  /** Closes the listener and every connection (their snapshots are closed as they go inactive). */
  @Override
  public void close() {
    serverChannel.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
  }
}
