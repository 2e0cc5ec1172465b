package io.choir.client;

import io.choir.client.spi.ClientTransport;
import io.choir.proto.Response;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ResponseHandler is the edge of every Netty client connection: it hands decoded responses and
 * connection loss to the channel's {@link ClientTransport.Listener} and holds no request logic itself
 * (STYLE.md habit 6). A decoding error closes the connection, because the byte stream can no longer be
 * trusted to be aligned on frames; the requests on it are then retried.
 */
@ChannelHandler.Sharable
final class ResponseHandler extends SimpleChannelInboundHandler<Response> {
  private static final Logger log = LoggerFactory.getLogger(ResponseHandler.class);

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, Response response) {
    ClientTransport.Listener listener = ctx.channel().attr(NettyIo.LISTENER).get();
    if (listener != null) {
      listener.onResponse(response);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    ClientTransport.Listener listener = ctx.channel().attr(NettyIo.LISTENER).get();
    if (listener != null) {
      listener.onClosed();
    }
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof IOException) {
      log.debug("connection to {} failed: {}", ctx.channel().remoteAddress(), cause.toString());
    } else {
      log.warn("closing the connection to {} after an error", ctx.channel().remoteAddress(), cause);
    }
    ctx.close();
  }
}
