package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.security.AccessControl;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import java.security.Principal;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.security.auth.x500.X500Principal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ClientAccessHandler stands between a connection's decoded requests and the replica: it answers
 * Authenticate itself (a token changes the connection's identity), and with an access file it asks
 * {@link AccessControl} about every other request, answering PERMISSION_DENIED to those the
 * connection's identity may not make, so they never reach the core and are never executed. Allowed
 * requests pass on unchanged. One per connection (it holds the connection's identity); runs on the
 * connection's event loop. No protocol logic (STYLE.md habit 6): the decision is AccessControl's.
 *
 * <p>Its answers are small and bypass the replica's reply accounting; a client that floods denied
 * requests without reading makes the channel unwritable, and the connection's flow control (which
 * stops reading an unwritable channel) stops it.
 */
final class ClientAccessHandler extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(ClientAccessHandler.class);
  /** At most one log line about denied requests per this interval (per replica), with the count. */
  static final long DENIAL_LOG_INTERVAL_NS = TimeUnit.SECONDS.toNanos(10);

  /** Shared by the connections of one port: the policy, counters, and the denial log's pacing. */
  static final class Shared {
    final AccessControl access;
    final Counter denied;
    final Counter tokensRefused;
    final Counter tlsFailed;
    final AtomicLong lastLogNs = new AtomicLong(System.nanoTime() - DENIAL_LOG_INTERVAL_NS);
    final AtomicLong deniedSinceLog = new AtomicLong();

    Shared(AccessControl access, MeterRegistry metrics) {
      this.access = access;
      this.denied = metrics.counter("choir.requests.permission_denied");
      this.tokensRefused = metrics.counter("choir.clients.tokens_refused");
      this.tlsFailed = metrics.counter("choir.connections.tls_failed");
    }
  }

  private final Shared shared;
  private AccessControl.Identity identity; // null until the first request: the handshake is done by then
  private boolean tokenIdentity;

  ClientAccessHandler(Shared shared) {
    this.shared = shared;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof Request request)) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (request.hasAuthenticate()) {
      authenticate(ctx, request);
      return;
    }
    if (!shared.access.enabled()) {
      ctx.fireChannelRead(request);
      return;
    }
    AccessControl.Denial denial = shared.access.check(identity(ctx), request);
    if (denial == null) {
      ctx.fireChannelRead(request);
      return;
    }
    shared.denied.increment();
    logDenial(ctx, denial);
    Response.Builder r = Response.newBuilder().setRequestId(request.getRequestId())
        .setStatus(Status.PERMISSION_DENIED).setError(denial.message() + "; the request was not executed");
    if (denial.failedIndex() >= 0) {
      r.setFailedIndex(denial.failedIndex());
    }
    ctx.writeAndFlush(r.build(), ctx.voidPromise());
  }

  private void authenticate(ChannelHandlerContext ctx, Request request) {
    Response.Builder r = Response.newBuilder().setRequestId(request.getRequestId());
    if (request.getOpCase() != Request.OpCase.OP_NOT_SET) {
      ctx.writeAndFlush(r.setStatus(Status.INVALID).setError("authenticate is sent alone, without an operation")
          .build(), ctx.voidPromise());
      return;
    }
    String token = request.getAuthenticate().getToken();
    if (token.isEmpty() || !shared.access.enabled()) {
      // Nothing to change (no token, or no access file: everyone may do everything); an OK proves to a
      // TLS client that this replica accepted its certificate.
      identity(ctx);
      ctx.writeAndFlush(r.setStatus(Status.OK).build(), ctx.voidPromise());
      return;
    }
    AccessControl.Identity found = shared.access.forToken(token);
    if (found == null) {
      shared.tokensRefused.increment();
      log.atDebug().addKeyValue("remote", ctx.channel().remoteAddress()).log("refused an unknown token");
      // Closed: a connection gets one guess; a client with a wrong token cannot do better by retrying.
      ctx.writeAndFlush(r.setStatus(Status.PERMISSION_DENIED).setError("the token is not recognised by this"
              + " replica's access file; closing the connection").build())
          .addListener(ChannelFutureListener.CLOSE);
      return;
    }
    identity = found;
    tokenIdentity = true;
    ctx.writeAndFlush(r.setStatus(Status.OK).build(), ctx.voidPromise());
  }

  /** The connection's identity: its token's, else its certificate subject's, else the anonymous one. */
  private AccessControl.Identity identity(ChannelHandlerContext ctx) {
    if (identity == null) {
      identity = shared.access.forCertificate(peerSubject(ctx));
    }
    return identity;
  }

  /** The verified client certificate's subject, or null (no TLS, or no certificate sent). */
  static X500Principal peerSubject(ChannelHandlerContext ctx) {
    SslHandler tls = ctx.pipeline().get(SslHandler.class);
    if (tls == null) {
      return null;
    }
    try {
      Principal p = tls.engine().getSession().getPeerPrincipal();
      return p instanceof X500Principal x ? x : null;
    } catch (SSLPeerUnverifiedException none) {
      return null;
    }
  }

  private void logDenial(ChannelHandlerContext ctx, AccessControl.Denial denial) {
    long since = shared.deniedSinceLog.incrementAndGet();
    long now = System.nanoTime();
    long last = shared.lastLogNs.get();
    if (now - last >= DENIAL_LOG_INTERVAL_NS && shared.lastLogNs.compareAndSet(last, now)) {
      shared.deniedSinceLog.set(0);
      log.atInfo().addKeyValue("remote", ctx.channel().remoteAddress())
          .addKeyValue("identity", identity == null ? "?" : identity.name())
          .addKeyValue("by_token", tokenIdentity)
          .addKeyValue("denied_since_last_log", since)
          .addKeyValue("reason", denial.message())
          .log("requests denied by the access file");
    }
  }

  /**
   * A TLS failure (a client without an acceptable certificate, a broken record) closes the connection
   * quietly: it is counted (tls_failed, by the handshake event) and logged at debug, not a warning with
   * a stack trace per stranger. Anything else goes on to the connection's handler.
   */
  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    Throwable c = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
    if (c instanceof SSLException) {
      log.atDebug().addKeyValue("remote", ctx.channel().remoteAddress()).addKeyValue("reason", c.toString())
          .log("closing a client connection after a TLS error");
      ctx.close();
      return;
    }
    ctx.fireExceptionCaught(cause);
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof SslHandshakeCompletionEvent done && !done.isSuccess()) {
      shared.tlsFailed.increment();
      log.atDebug().addKeyValue("remote", ctx.channel().remoteAddress())
          .addKeyValue("reason", String.valueOf(done.cause())).log("client TLS handshake failed");
    }
    ctx.fireUserEventTriggered(evt);
  }
}
