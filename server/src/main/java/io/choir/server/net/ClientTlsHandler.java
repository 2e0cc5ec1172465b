package io.choir.server.net;

import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.security.ClientTls;
import io.micrometer.core.instrument.Counter;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.OptionalSslHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
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
  private final SslContext context;
  private final Counter plaintextRefused;
  private ScheduledFuture<?> deadline;

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
    super.handlerRemoved0(ctx);
  }

  @Override
  protected SslHandler newSslHandler(ChannelHandlerContext ctx, SslContext sslContext) {
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
    return new PlaintextRefusal();
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
