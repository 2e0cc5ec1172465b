package io.choir.server.net;

import io.choir.proto.PeerEnvelope;
import io.choir.proto.wire.FrameException;
import io.choir.server.net.transfer.StateTransferSender;
import io.choir.server.storage.Storage;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TransferConnection serves one connection of a {@link StateTransferServer}: it waits for the first
 * envelope, then either streams the snapshot chunk by chunk as the channel drains (driving a
 * {@link StateTransferSender}), or passes every envelope of a peer stream to the sink. Its own state is
 * confined to the channel's loop; what connections share (bounds, permits, streams, tallies) is the
 * server's {@link TransferServerState}.
 */
final class TransferConnection extends SimpleChannelInboundHandler<PeerEnvelope> {
  /** The server's logger: these are the server's log lines (their logger name stays the same). */
  private static final Logger log = LoggerFactory.getLogger(StateTransferServer.class);

  private final TransferServerState state;
  private final StateTransferServer.Limits limits;
  private final StateTransferSender.Config senderConfig;
  private final PeerTcpAuth auth;
  /** Where peer stream envelopes go, or null when peer streams are refused. */
  private final PeerStreamSink peerStreams;
  private final Storage storage;
  private final LongSupplier view;

  private boolean counted;
  private boolean requested;
  private boolean holdsPermit;
  private ScheduledFuture<?> deadline;
  private StateTransferSender sender;
  private boolean lastWritten;
  /** The sender of a peer stream, once this connection is one; else -1. */
  private int streamSender = -1;

  TransferConnection(TransferServerState state, StateTransferServer.Limits limits,
      StateTransferSender.Config senderConfig, PeerTcpAuth auth, PeerStreamSink peerStreams, Storage storage,
      LongSupplier view) {
    this.state = state;
    this.limits = limits;
    this.senderConfig = senderConfig;
    this.auth = auth;
    this.peerStreams = peerStreams;
    this.storage = storage;
    this.view = view;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    counted = true;
    if (!state.connectionOpened()) {
      refuse(ctx, "too many state transfer connections");
      return;
    }
    deadline =
        ctx.executor()
            .schedule(
                () -> refuse(ctx, "no first envelope within the request timeout"),
                limits.requestTimeoutMs(),
                TimeUnit.MILLISECONDS);
    ctx.fireChannelActive();
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, PeerEnvelope envelope) {
    if (streamSender >= 0) {
      stream(ctx, envelope);
      return;
    }
    if (requested) {
      refuse(ctx, "a second request on one connection");
      return;
    }
    requested = true;
    Integer proven = PeerTcpAuth.provenPeer(ctx.channel());
    if (proven != null && envelope.getSender() != proven) {
      // A member proved it is replica `proven` and then speaks as another.
      auth.refused("sender_mismatch", ctx.channel().remoteAddress());
      refuse(ctx, "sender " + envelope.getSender() + " on a connection proven by " + proven);
      return;
    }
    if (peerStreams != null
        && envelope.getBodyCase() != PeerEnvelope.BodyCase.STATE_TRANSFER_REQUEST) {
      becomeStream(ctx, envelope);
      return;
    }
    if (envelope.getSerializedSize() > StateTransferServer.MAX_REQUEST_FRAME_BYTES) {
      refuse(ctx, "a request of " + envelope.getSerializedSize() + " bytes");
      return;
    }
    String problem = StateTransferSender.refusal(senderConfig, envelope);
    if (problem != null) {
      refuse(ctx, problem);
      return;
    }
    if (!state.takeTransferPermit()) {
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
      sender = StateTransferSender.open(senderConfig, envelope, storage.snapshot());
    } catch (RuntimeException e) {
      if (!(e instanceof StateTransferSender.Refused)) {
        log.atWarn().setCause(e).log("cannot snapshot the state for a state transfer");
      }
      refuse(ctx, e.getMessage());
      return;
    }
    log.atInfo()
        .addKeyValue("to", envelope.getSender())
        .addKeyValue("op", sender.op())
        .addKeyValue("their_applied", sender.requesterApplied())
        .log("serving a state transfer");
    // Stop reading: nothing more is expected, and a peer that sends more is ignored, not buffered.
    ctx.channel().config().setAutoRead(false);
    pump(ctx);
  }

  /** The first envelope is a peer message: this connection is a peer stream from now on. */
  private void becomeStream(ChannelHandlerContext ctx, PeerEnvelope first) {
    if (peerStreams.onEnvelope(first) == PeerStreamSink.Verdict.REFUSED) {
      // Counted by reason in the transport; a log line per connection would let a misconfigured
      // peer flood the log.
      state.connectionRefused();
      lastWritten = true;
      log.atDebug().addKeyValue("remote", ctx.channel().remoteAddress())
          .log("peer stream refused by its first envelope");
      release();
      ctx.close();
      return;
    }
    streamSender = first.getSender();
    deadline.cancel(false);
    deadline = null;
    // A stream no longer counts against maxConnections; one per sender bounds them instead.
    counted = false;
    state.connectionReleased();
    Channel channel = ctx.channel();
    Channel older = state.streamAccepted(streamSender, channel);
    if (older != null && older != channel) {
      older.close();
    }
    log.atDebug()
        .addKeyValue("from", streamSender)
        .addKeyValue("remote", channel.remoteAddress())
        .log("peer stream accepted");
  }

  /** One more envelope on a peer stream. */
  private void stream(ChannelHandlerContext ctx, PeerEnvelope envelope) {
    if (envelope.getSender() != streamSender) {
      peerStreams.dropped("sender_changed");
      return;
    }
    peerStreams.onEnvelope(envelope); // dropped envelopes are counted there; the stream goes on
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (sender != null && ctx.channel().isWritable()) {
      pump(ctx);
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (streamSender >= 0) {
      state.streamClosed(streamSender, ctx.channel());
    }
    release();
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (peerStreams != null && (streamSender >= 0 || !requested)
        && cause instanceof FrameException frame) {
      // On a peer stream, or on a connection that could have been one (its frame limit is the
      // stream's): the transport counts it with the stream drops.
      peerStreams.dropped(
          frame.kind() == FrameException.Kind.TOO_LARGE ? "frame_too_large" : "malformed");
    }
    if (streamSender >= 0) {
      ctx.close();
      return;
    }
    refuse(ctx, "connection failed: " + cause.getMessage());
  }

  /** Writes chunks while the channel is writable; the last one closes the connection. */
  private void pump(ChannelHandlerContext ctx) {
    Channel channel = ctx.channel();
    while (!lastWritten && sender != null && channel.isActive() && channel.isWritable()) {
      PeerEnvelope chunk;
      try {
        chunk = sender.next(view.getAsLong());
      } catch (RuntimeException e) {
        log.atWarn().setCause(e).log("cannot read the snapshot for a state transfer");
        refuse(ctx, "cannot read the snapshot: " + e.getMessage());
        return;
      }
      state.chunkWritten();
      ChannelFuture written = ctx.writeAndFlush(chunk);
      written.addListener(ChannelFutureListener.CLOSE_ON_FAILURE);
      if (sender.done()) {
        lastWritten = true;
        long op = sender.op();
        long chunks = sender.chunks();
        written.addListener(
            (ChannelFutureListener)
                f -> {
                  if (f.isSuccess()) {
                    state.transferServed();
                    log.atInfo()
                        .addKeyValue("op", op)
                        .addKeyValue("chunks", chunks)
                        .log("state transfer served");
                  }
                  f.channel().close();
                });
        // Every chunk is read (the sender closed its snapshot); the permit is no longer needed
        // while the last bytes drain (the deadline still bounds the drain).
        releaseSnapshot();
      }
    }
  }

  private void refuse(ChannelHandlerContext ctx, String why) {
    if (!lastWritten) {
      state.connectionRefused();
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
      state.connectionReleased();
    }
  }

  /** Closes the snapshot and gives back the transfer permit, once. */
  private void releaseSnapshot() {
    if (sender != null) {
      try {
        sender.close();
      } catch (RuntimeException e) {
        log.atWarn().setCause(e).log("cannot close a state transfer snapshot");
      }
      sender = null;
    }
    if (holdsPermit) {
      holdsPermit = false;
      state.returnTransferPermit();
    }
  }
}
