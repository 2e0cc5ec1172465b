package io.choir.server.net;

import io.choir.server.security.PeerHandshake;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Promise;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * PeerTcpHandshakeHandler is the Netty driver of one connection's {@link PeerHandshake} (see {@link
 * PeerTcpAuth}): first in the pipeline, it feeds the handshake the bytes that arrive, writes what it
 * answers, and holds back channelActive from the handlers above until both sides are proven. Then it
 * gives the record codec its keys, marks the channel with the proven peer id, fires channelActive, and
 * from then on passes bytes through (the first of them may have arrived with the proof).
 *
 * <p>A failure, the timeout or a close before the end: the connection is closed, counted by reason;
 * the handlers above get exceptionCaught with a {@link PeerTcpRefusedException} (so a state transfer
 * fails saying why), never channelActive. An acceptor holds a slot of the listener's bound on
 * handshakes in progress from channelActive until the end.
 */
final class PeerTcpHandshakeHandler extends ChannelInboundHandlerAdapter {
  private final PeerTcpAuth auth;
  private final boolean connector;
  private final int toId;
  private final SealedRecordCodec codec;
  private final Promise<Integer> ready;
  private PeerHandshake handshake;
  private ScheduledFuture<?> timer;
  private boolean holdsSlot;
  private InetAddress slotAddress;
  /** True once proven: bytes pass through. */
  private boolean done;
  /** True once refused: nothing more is read or said. */
  private boolean failed;

  PeerTcpHandshakeHandler(PeerTcpAuth auth, boolean connector, int toId, SealedRecordCodec codec,
      Promise<Integer> ready) {
    this.auth = auth;
    this.connector = connector;
    this.toId = toId;
    this.codec = codec;
    this.ready = ready;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    if (!connector) {
      InetSocketAddress remote = (InetSocketAddress) ctx.channel().remoteAddress();
      InetAddress from = remote == null ? null : remote.getAddress();
      String refusal = auth.beginHandshake(from);
      if (refusal != null) {
        fail(ctx, refusal, "too many peer TCP handshakes in progress");
        return;
      }
      holdsSlot = true;
      slotAddress = from;
    }
    timer = ctx.executor().schedule(
        () -> fail(ctx, "timeout", "no proven handshake within " + auth.handshakeTimeoutMs() + " ms"),
        auth.handshakeTimeoutMs(), TimeUnit.MILLISECONDS);
    if (connector) {
      handshake = auth.newConnectorHandshake(toId);
      ctx.writeAndFlush(Unpooled.wrappedBuffer(handshake.pollOutput()))
          .addListener(ChannelFutureListener.FIRE_EXCEPTION_ON_FAILURE);
    } else {
      handshake = auth.newAcceptorHandshake();
    }
    ctx.read(); // the channel may not auto-read (a state transfer client)
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (done) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (failed || handshake == null || !(msg instanceof ByteBuf buf)) {
      ReferenceCountUtil.release(msg);
      return;
    }
    PeerHandshake.State state;
    try {
      ByteBuffer in = buf.nioBuffer();
      int before = in.position();
      state = handshake.receive(in);
      buf.skipBytes(in.position() - before);
    } catch (RuntimeException e) {
      buf.release();
      fail(ctx, "bad_hello", "handshake error: " + e);
      return;
    }
    byte[] out = handshake.pollOutput();
    if (out != null) {
      ctx.writeAndFlush(Unpooled.wrappedBuffer(out)).addListener(ChannelFutureListener.FIRE_EXCEPTION_ON_FAILURE);
    }
    switch (state) {
      case FAILED -> {
        buf.release();
        fail(ctx, handshake.failure().reason(), "the other end failed the handshake: " + handshake.failure());
      }
      case DONE -> {
        finish(ctx);
        if (buf.isReadable()) {
          ctx.fireChannelRead(buf); // sealed records sent right after the proof
        } else {
          buf.release();
        }
      }
      default -> {
        buf.release();
        if (!ctx.channel().config().isAutoRead()) {
          ctx.read();
        }
      }
    }
  }

  private void finish(ChannelHandlerContext ctx) {
    done = true;
    release();
    codec.start(handshake.sessionKeys());
    ctx.channel().attr(PeerTcpAuth.PEER_ID).set(handshake.peerId());
    auth.proven(connector);
    ready.trySuccess(handshake.peerId());
    ctx.fireChannelActive();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (!done && !failed) {
      // Closed by the other end mid-handshake: an acceptor that refused us (a wrong key, say), or a
      // connector that gave up.
      fail(ctx, connector ? "refused" : "closed_in_handshake", "closed during the handshake");
    }
    release();
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (done) {
      ctx.fireExceptionCaught(cause);
      return;
    }
    fail(ctx, connector ? "refused" : "closed_in_handshake", "connection failed in the handshake: " + cause);
  }

  /** Refuses the connection: counts, tells the handlers above (once), closes. */
  private void fail(ChannelHandlerContext ctx, String reason, String why) {
    if (done || failed) {
      return;
    }
    failed = true;
    release();
    Object remote = ctx.channel().remoteAddress();
    if (connector) {
      auth.connectFailed(reason, remote);
    } else {
      auth.refused(reason, remote);
    }
    PeerTcpRefusedException e = new PeerTcpRefusedException(reason, why);
    ready.tryFailure(e);
    if (connector) {
      ctx.fireExceptionCaught(e); // a state transfer fails with the reason, not "closed"
    }
    ctx.close();
  }

  private void release() {
    if (timer != null) {
      timer.cancel(false);
      timer = null;
    }
    if (holdsSlot) {
      holdsSlot = false;
      auth.endHandshake(slotAddress);
    }
  }

  /**
   * AddressCheck is the acceptor's check without a key: a connection from a source address that is
   * not a member's peer host is closed before the handlers above see it.
   */
  static final class AddressCheck extends ChannelInboundHandlerAdapter {
    private final PeerTcpAuth auth;
    private final Promise<Integer> ready;
    private boolean refused;

    AddressCheck(PeerTcpAuth auth, Promise<Integer> ready) {
      this.auth = auth;
      this.ready = ready;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      InetSocketAddress remote = (InetSocketAddress) ctx.channel().remoteAddress();
      if (!auth.admits(remote)) {
        refused = true;
        auth.refused("unknown_address", remote);
        ready.tryFailure(new PeerTcpRefusedException("unknown_address", "not a member host: " + remote));
        ctx.close();
        return;
      }
      ready.trySuccess(-1);
      ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (refused) {
        ReferenceCountUtil.release(msg);
        return;
      }
      ctx.fireChannelRead(msg);
    }
  }
}
