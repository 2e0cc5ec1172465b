package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.wire.FrameException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.timeout.IdleStateEvent;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ClientHandler is the edge for one client connection: it hands decoded requests to the replica thread
 * and turns bad input into a reply and a close. No protocol logic lives here (STYLE.md habit 6).
 *
 * <p>A frame too large or not parseable gets TOO_LARGE or INVALID (request id 0: the frame's own id is
 * unknown) and the connection is closed, since the stream may no longer be aligned on frames; every
 * other connection is unaffected. An idle connection (no traffic, nothing in flight) is closed.
 */
final class ClientHandler extends SimpleChannelInboundHandler<Request> {
  private static final Logger log = LoggerFactory.getLogger(ClientHandler.class);

  private final ClientConnections connections;
  private final RequestSink sink;
  private final int maxConnections;
  private final Counter tooLarge;
  private final Counter malformed;
  private final Counter busy;
  private final Counter refused;
  private final Counter idleClosed;
  private ClientConnections.Connection connection;

  ClientHandler(ClientConnections connections, RequestSink sink, int maxConnections, MeterRegistry metrics) {
    this.connections = connections;
    this.sink = sink;
    this.maxConnections = maxConnections;
    this.tooLarge = metrics.counter("choir.frames.too_large");
    this.malformed = metrics.counter("choir.frames.malformed");
    this.busy = metrics.counter("choir.requests.busy_queue_full");
    this.refused = metrics.counter("choir.connections.refused");
    this.idleClosed = metrics.counter("choir.connections.idle_closed");
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    if (connections.size() >= maxConnections) {
      refused.increment();
      ctx.writeAndFlush(Response.newBuilder().setStatus(Status.UNAVAILABLE)
              .setError("too many connections (max_connections " + maxConnections + ")").build())
          .addListener(ChannelFutureListener.CLOSE);
      return;
    }
    connection = connections.register(ctx.channel());
    ctx.fireChannelActive();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (connection != null) {
      connections.unregister(connection);
    }
    ctx.fireChannelInactive();
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, Request request) {
    if (connection == null) {
      return;
    }
    connection.inFlight++;
    if (!sink.offer(connection.id, request)) {
      connection.inFlight--;
      busy.increment();
      ctx.writeAndFlush(Response.newBuilder().setRequestId(request.getRequestId()).setStatus(Status.BUSY)
          .setError("replica overloaded: event queue full (event_queue_capacity)").build());
    }
    connections.updateAutoRead(connection);
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (connection != null) {
      connections.updateAutoRead(connection);
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof IdleStateEvent && (connection == null || connection.inFlight == 0)) {
      idleClosed.increment();
      ctx.close();
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof FrameException fe) {
      boolean large = fe.kind() == FrameException.Kind.TOO_LARGE;
      (large ? tooLarge : malformed).increment();
      log.atDebug().addKeyValue("remote", ctx.channel().remoteAddress()).addKeyValue("reason", fe.getMessage())
          .log("closing client connection after a bad frame");
      if (ctx.channel().isActive()) {
        ctx.writeAndFlush(Response.newBuilder()
                .setStatus(large ? Status.TOO_LARGE : Status.INVALID)
                .setError(fe.getMessage() + "; closing the connection")
                .build())
            .addListener(ChannelFutureListener.CLOSE);
      }
      return;
    }
    if (!(cause instanceof IOException)) {
      log.atWarn().setCause(cause).addKeyValue("remote", ctx.channel().remoteAddress())
          .log("unexpected error on a client connection; closing it");
    }
    ctx.close();
  }
}
