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
 * (watches to the {@link WatchRequests}) and turns bad input into a reply and a close. No protocol logic
 * lives here (STYLE.md habit 6).
 *
 * <p>A connection beyond max_connections is answered UNAVAILABLE and closed (one beyond
 * max_connections_per_address never gets here: {@link ClientConnections#acceptGate()} closes it at accept). A frame too large or not parseable gets TOO_LARGE or INVALID (request
 * id 0: the frame's own id is unknown) and the connection is closed, since the stream may no longer be
 * aligned on frames; so does a frame not completed within client_frame_timeout_ms (slowloris). After
 * client_idle_timeout_ms without traffic a connection with nothing in flight and no watch ever sent is
 * closed (idle), and so is one whose replies wait unread (stalled); one waiting for the replica is left alone. Every refusal and
 * close is counted by reason ({@link ClientDrops}); every other connection is unaffected.
 */
final class ClientHandler extends SimpleChannelInboundHandler<Request> {
  private static final Logger log = LoggerFactory.getLogger(ClientHandler.class);

  private final ClientConnections connections;
  private final RequestSink sink;
  private final int maxConnections;
  private final Counter busy;
  private final ClientDrops drops;
  private ClientConnection connection;

  ClientHandler(ClientConnections connections, RequestSink sink, int maxConnections, MeterRegistry metrics) {
    this.connections = connections;
    this.sink = sink;
    this.maxConnections = maxConnections;
    this.busy = metrics.counter("choir.requests.busy_queue_full");
    this.drops = connections.drops();
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    ClientConnections.Admission admission = connections.register(ctx.channel(), maxConnections);
    if (admission.connection() == null) {
      drops.count(admission.refusal(), ctx.channel().remoteAddress(), admission.detail());
      ctx.channel().config().setAutoRead(false);
      ctx.writeAndFlush(Response.newBuilder().setStatus(Status.UNAVAILABLE)
              .setError("too many connections (" + admission.detail() + ")").build())
          .addListener(ChannelFutureListener.CLOSE);
      return;
    }
    connection = admission.connection();
    ctx.fireChannelActive();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (connection != null) {
      connections.unregister(connection);
      WatchRequests watches = connections.watches();
      if (watches != null) {
        watches.closed(connection);
      }
    }
    ctx.fireChannelInactive();
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, Request request) {
    if (connection == null || connection.closing) {
      return;
    }
    WatchRequests watches = connections.watches();
    if (watches != null && WatchRequests.isWatch(request)) {
      watches.handle(connection, request); // long-lived reads of the applied state: never to the core
      return;
    }
    connection.inFlight++;
    if (connection.times != null) {
      connection.times.started(request, System.nanoTime());
    }
    LeaseReadGate gate = connections.leaseReads();
    LeaseReadGate.Admission admission = gate == null ? LeaseReadGate.Admission.CORE : gate.admit(connection, request);
    if (admission != LeaseReadGate.Admission.CORE) { // the primary's lease holds: no trip through the core
      if (admission == LeaseReadGate.Admission.NOW) {
        connections.readNow(connection, request);
      } // else it waits in the gate for the applied number, which hands it to the read path
      connections.updateAutoRead(connection);
      return;
    }
    if (!sink.offer(connection.id, request)) {
      busy.increment();
      connections.reply(connection, Response.newBuilder().setRequestId(request.getRequestId())
          .setStatus(Status.BUSY).setError("replica overloaded: event queue full (event_queue_capacity)").build());
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
    if (!(evt instanceof IdleStateEvent)) {
      ctx.fireUserEventTriggered(evt);
      return;
    }
    if (connection == null || (connection.inFlight == 0 && connection.watchOutput == null)) {
      drops.count(ClientDrops.Reason.CLOSED_IDLE, ctx.channel().remoteAddress(), "client_idle_timeout_ms");
      ctx.close();
    } else if (connection.replyBytes.get() > 0) {
      // Nothing read and no reply taken by the socket for the whole timeout: the client does not read.
      drops.count(ClientDrops.Reason.CLOSED_STALLED, ctx.channel().remoteAddress(),
          connection.replyBytes.get() + " reply bytes unread for client_idle_timeout_ms");
      ctx.close();
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof FrameException || cause instanceof ClientFrameDecoder.FrameTimeoutException
        || cause instanceof ClientFrameDecoder.FrameMemoryException) {
      ClientDrops.Reason reason;
      Status status;
      if (cause instanceof FrameException fe) {
        boolean large = fe.kind() == FrameException.Kind.TOO_LARGE;
        reason = large ? ClientDrops.Reason.CLOSED_TOO_LARGE : ClientDrops.Reason.CLOSED_MALFORMED;
        status = large ? Status.TOO_LARGE : Status.INVALID;
      } else if (cause instanceof ClientFrameDecoder.FrameMemoryException) {
        reason = ClientDrops.Reason.CLOSED_FRAME_MEMORY;
        status = Status.UNAVAILABLE; // not executed: the frame was never decoded
      } else {
        reason = ClientDrops.Reason.CLOSED_FRAME_TIMEOUT;
        status = Status.INVALID;
      }
      if (connection != null && connection.closing) {
        return; // already answered and closing
      }
      drops.count(reason, ctx.channel().remoteAddress(), cause.getMessage());
      if (connection != null) {
        connection.closing = true; // the frames after a bad one are not decoded: the stream is not aligned
      }
      ctx.channel().config().setAutoRead(false);
      if (ctx.channel().isActive()) {
        ctx.writeAndFlush(Response.newBuilder()
                .setStatus(status)
                .setError(cause.getMessage() + "; closing the connection")
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
