package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.server.watch.WatchHub;
import io.choir.server.watch.WatchOutput;
import io.netty.channel.Channel;
import java.util.concurrent.RejectedExecutionException;

/**
 * WatchRequests takes a connection's Watch and CancelWatch requests to the {@link WatchHub}: they never
 * reach the core (a watch is a read of the replica's own applied state, not a write). Each connection
 * gets one {@link WatchOutput}, which writes on the connection's event loop in the order of the hub's
 * calls. The access check came before ({@link ClientAccessHandler}). Its writes bypass the connection's
 * reply accounting ({@link ClientConnections}): the hub bounds each watch's unwritten bytes itself
 * (watch_buffer_bytes).
 */
final class WatchRequests {
  private final WatchHub hub;

  WatchRequests(WatchHub hub) {
    this.hub = hub;
  }

  static boolean isWatch(Request request) {
    return request.getOpCase() == Request.OpCase.WATCH || request.getOpCase() == Request.OpCase.CANCEL_WATCH;
  }

  /** Hands a Watch or CancelWatch of connection c to the hub (c's event loop). */
  void handle(ClientConnection c, Request request) {
    if (c.watchOutput == null) {
      c.watchOutput = output(c.channel);
    }
    if (request.getOpCase() == Request.OpCase.WATCH) {
      hub.watch(c.id, request.getRequestId(), request.getWatch(), c.watchOutput);
    } else {
      hub.cancel(c.id, request.getRequestId(), request.getCancelWatch(), c.watchOutput);
    }
  }

  /** Forgets c's watches (its channel closed). */
  void closed(ClientConnection c) {
    if (c.watchOutput != null) {
      hub.connectionClosed(c.id);
    }
  }

  /** Writes on channel's event loop, always by a task, so writes keep the order of the calls. */
  private static WatchOutput output(Channel channel) {
    return (Response response, Runnable written) -> {
      try {
        channel.eventLoop().execute(() -> channel.writeAndFlush(response).addListener(f -> written.run()));
      } catch (RejectedExecutionException shuttingDown) {
        written.run();
      }
    };
  }
}
