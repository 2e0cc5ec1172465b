package io.choir.server.net;

import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.security.ClientTls;
import io.micrometer.core.instrument.Counter;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.PendingWriteQueue;
import io.netty.handler.ssl.OptionalSslHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.TimeUnit;

/**
 * ClientTlsHandler is the first handler of a client connection on a TLS port: it looks at the first
 * bytes, and a TLS record gets an {@link SslHandler} in its place (handshake bounded by
 * {@link ClientTls#HANDSHAKE_TIMEOUT_MS}). Anything else is a plaintext client on a TLS port: instead of
 * a TLS alert it cannot read, or a silent close it would retry until its timeout, it gets one plaintext
 * frame, PERMISSION_DENIED with request id 0 saying the port needs TLS (nothing it sent is read or
 * executed), and the connection is closed. A connection that sends too little to tell within the
 * handshake timeout is closed.
 */
final class ClientTlsHandler extends OptionalSslHandler {
  /** The name of the {@link WriteHold} right after this handler in the pipeline. */
  static final String HOLD = "tls-hold";

  private final SslContext context;
  private final Counter plaintextRefused;
  private ScheduledFuture<?> deadline;
  private boolean tls;

  ClientTlsHandler(SslContext context, Counter plaintextRefused) {
    super(context);
    this.context = context;
    this.plaintextRefused = plaintextRefused;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) throws Exception {
    super.handlerAdded(ctx);
    deadline = ctx.executor().schedule(() -> {
      if (ctx.pipeline().context(this) != null) {
        ctx.close(); // not one full TLS record header in all that time
      }
    }, ClientTls.HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
  }

  @Override
  protected void handlerRemoved0(ChannelHandlerContext ctx) throws Exception {
    if (deadline != null) {
      deadline.cancel(false);
    }
    // Replaced by the SslHandler: what the handlers behind wrote meanwhile goes to it, to be sent
    // encrypted after the handshake. (A plaintext client's hold was dropped in newNonSslHandler; a
    // connection closed undecided drops it here.)
    WriteHold hold = (WriteHold) ctx.pipeline().get(HOLD);
    if (hold != null) {
      hold.release(tls);
      ctx.pipeline().remove(hold);
    }
    super.handlerRemoved0(ctx);
  }

  @Override
  protected SslHandler newSslHandler(ChannelHandlerContext ctx, SslContext sslContext) {
    tls = true;
    SslHandler h = context.newHandler(ctx.alloc());
    h.setHandshakeTimeoutMillis(ClientTls.HANDSHAKE_TIMEOUT_MS);
    return h;
  }

  @Override
  protected String newSslHandlerName() {
    return "tls";
  }

  @Override
  protected ChannelHandler newNonSslHandler(ChannelHandlerContext ctx) {
    plaintextRefused.increment();
    // Dropped before the refusal is written, so that the refusal itself is not held.
    WriteHold hold = (WriteHold) ctx.pipeline().get(HOLD);
    if (hold != null) {
      hold.release(false);
      ctx.pipeline().remove(hold);
    }
    return new PlaintextRefusal();
  }

  /**
   * WriteHold keeps what the handlers behind write before it is known whether the client speaks TLS
   * (a refusal at connect, such as max_connections): written then, it would go out as plaintext on a
   * TLS connection. Once decided, it passes them on to the SslHandler (which sends them encrypted after
   * the handshake) or, for a plaintext client, drops them (it gets the TLS refusal instead). Holds at
   * most what the handlers write at connect: they read nothing before the decision.
   */
  static final class WriteHold extends ChannelOutboundHandlerAdapter {
    private PendingWriteQueue queue;
    private ChannelHandlerContext ctx;
    private boolean flushRequested;

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      this.ctx = ctx;
      this.queue = new PendingWriteQueue(ctx);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      queue.add(msg, promise);
    }

    @Override
    public void flush(ChannelHandlerContext ctx) {
      flushRequested = true;
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
      if (!queue.isEmpty()) {
        queue.removeAndFailAll(new ClosedChannelException()); // closed undecided
      }
    }

    /** Sends (towards the SslHandler) or drops what is held. */
    void release(boolean send) {
      if (send) {
        queue.removeAndWriteAll();
        if (flushRequested) {
          ctx.flush();
        }
      } else {
        queue.removeAndFailAll(new ClosedChannelException());
      }
    }
  }

  /** Answers a plaintext client once, in its own framing, and closes; reads nothing of what it sent. */
  private static final class PlaintextRefusal extends ChannelInboundHandlerAdapter {
    private boolean answered;

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      answer(ctx);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ReferenceCountUtil.release(msg);
      answer(ctx);
    }

    private void answer(ChannelHandlerContext ctx) {
      if (answered) {
        return;
      }
      answered = true;
      ctx.channel().config().setAutoRead(false);
      // From the tail, so the frame encoder further down the pipeline frames it.
      ctx.channel().writeAndFlush(Response.newBuilder().setStatus(Status.PERMISSION_DENIED)
              .setError("this replica's client port requires TLS: connect with TLS (the CA of its certificate:"
                  + " --cacert FILE, or trustCertificates in the client library); closing the connection")
              .build())
          .addListener(ChannelFutureListener.CLOSE);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }
}
