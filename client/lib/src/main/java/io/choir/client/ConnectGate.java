package io.choir.client;

import io.choir.proto.Authenticate;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;

/**
 * ConnectGate holds a new connection back from the dispatcher until it can carry requests: the TLS
 * handshake is done, and an Authenticate (with the token, or empty) has been answered OK. That answer
 * is the proof that the replica accepted this client: with TLS 1.3 a replica that refuses the client's
 * certificate says so only after the client's side of the handshake completed. Every connect goes
 * through it, so a reconnect authenticates again. Until it is open, nothing reaches the
 * {@link ResponseHandler} (so the link's listener hears of no connection that never opened); then it
 * removes itself. One per channel; runs on the channel's event loop.
 */
final class ConnectGate extends ChannelInboundHandlerAdapter {
  private final Endpoint endpoint;
  private final boolean tls;
  private final String token;
  private final CompletableFuture<Void> open;
  private final long openTimeoutMs;
  private ScheduledFuture<?> deadline;

  /**
   * @param openTimeoutMs how long the handshake and the Authenticate round trip may take: a replica
   *     that accepts the TCP connection and then says nothing must not hold the endpoint's connect
   *     (which every call to it shares) for ever
   */
  ConnectGate(Endpoint endpoint, boolean tls, String token, CompletableFuture<Void> open, long openTimeoutMs) {
    this.endpoint = endpoint;
    this.tls = tls;
    this.token = token;
    this.open = open;
    this.openTimeoutMs = openTimeoutMs;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    deadline = ctx.executor().schedule(() -> fail(ctx, new UnavailableException(endpoint + " did not complete "
        + (tls ? "the TLS handshake and " : "") + "authentication within " + openTimeoutMs + " ms")),
        openTimeoutMs, TimeUnit.MILLISECONDS);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    if (deadline != null) {
      deadline.cancel(false);
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    if (!tls) {
      authenticate(ctx);
    }
    ctx.fireChannelActive();
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof SslHandshakeCompletionEvent done) {
      if (done.isSuccess()) {
        authenticate(ctx);
      } else if (unwrap(done.cause()) instanceof SSLException) {
        fail(ctx, tlsFailure(done.cause()));
      } else {
        // Closed before any TLS answer (no alert): a replica that is down behind a port that still
        // accepts (a proxy, a restarting container), or one shedding connections. Not a configuration
        // error, so not a TlsException that ends the call: the caller tries another replica, as it
        // does when a plaintext connection closes.
        Throwable c = unwrap(done.cause());
        fail(ctx, new UnavailableException("connection to " + endpoint + " closed during the TLS handshake: " + c, c));
      }
      return;
    }
    ctx.fireUserEventTriggered(evt);
  }

  private void authenticate(ChannelHandlerContext ctx) {
    Request auth = Request.newBuilder()
        .setAuthenticate(Authenticate.newBuilder().setToken(token == null ? "" : token)).build();
    ctx.writeAndFlush(auth).addListener(f -> {
      if (!f.isSuccess()) {
        fail(ctx, new UnavailableException("cannot authenticate to " + endpoint + ": " + f.cause(), f.cause()));
      }
    });
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (open.isDone() || !(msg instanceof Response r)) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (r.getStatus() == Status.OK) {
      ctx.pipeline().remove(this);
      open.complete(null);
    } else if (r.getStatus() == Status.PERMISSION_DENIED) {
      fail(ctx, new ConnectRefusal(new PermissionDeniedException(endpoint + " refused this client: " + r.getError()
          + "; the request was not executed", -1)));
    } else {
      fail(ctx, new UnavailableException(endpoint + " refused the connection: " + r.getStatus()
          + (r.getError().isEmpty() ? "" : ": " + r.getError())));
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (open.isCompletedExceptionally()) {
      return; // the failure the gate already reported (a handshake failure comes as an event and an exception)
    }
    if (open.isDone()) {
      ctx.fireExceptionCaught(cause);
      return;
    }
    Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    fail(ctx, c instanceof SSLException ? tlsFailure(c)
        : new UnavailableException("connection to " + endpoint + " failed while opening: " + c, c));
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (deadline != null) {
      deadline.cancel(false);
    }
    if (open.isDone()) {
      ctx.fireChannelInactive();
      return;
    }
    // Not passed on: the connect future fails, and the listener of a connection that never opened
    // must not hear of its close (ClientTransport's contract).
    open.completeExceptionally(new UnavailableException("connection to " + endpoint + " closed while "
        + (tls ? "setting up TLS" : "authenticating")));
  }

  private void fail(ChannelHandlerContext ctx, Throwable error) {
    if (open.completeExceptionally(error)) {
      ctx.close();
    }
  }

  private static Throwable unwrap(Throwable cause) {
    return cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
  }

  /** What a TLS failure tells the user: which replica, and the likely cause. */
  private ConnectRefusal tlsFailure(Throwable cause) {
    Throwable c = unwrap(cause);
    String hint;
    if (c instanceof NotSslRecordException) {
      hint = "it answered without TLS: its client port is plaintext (connect without --cacert/--cert/--key, or"
          + " give the replica client_tls_cert_file)";
    } else if (c instanceof SSLHandshakeException) {
      hint = "the handshake failed: " + c.getMessage() + " (check that --cacert is the CA of the replica's"
          + " certificate, that the certificate names the host connected to, and, when the replica requires"
          + " client certificates, that --cert/--key are signed by its client CA)";
    } else {
      hint = "the replica ended TLS: " + c.getMessage() + " (when it requires client certificates, pass"
          + " --cert/--key signed by its client CA)";
    }
    return new ConnectRefusal(new TlsException("TLS with " + endpoint + " failed: " + hint
        + "; the request was not executed", c));
  }
}
