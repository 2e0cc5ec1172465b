package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import io.choir.client.spi.ClientTransport;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.wire.FrameDecoder;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * NettyIo is the production implementation of both client ports: TCP connections with the client
 * protocol's framing (4-byte length + protobuf), and timers on the same event loops with
 * {@link System#nanoTime()}. Connections are thread-safe as Netty's channels are; futures and listener
 * calls complete on the event loops.
 */
final class NettyIo implements ClientTransport, ClientScheduler {
  /** Flushes a connection coalesces before it must flush anyway (Netty's FlushConsolidationHandler). */
  static final int MAX_COALESCED_FLUSHES = 256;
  /** The dispatcher's listener of one channel, set before the channel is registered. */
  static final AttributeKey<Listener> LISTENER = AttributeKey.valueOf("choir.client.listener");

  private final EventLoopGroup group;
  private final Bootstrap bootstrap;

  NettyIo(ClientConfig config) {
    this.group = new MultiThreadIoEventLoopGroup(config.eventLoopThreads(),
        new DefaultThreadFactory("choir-client", true), NioIoHandler.newFactory());
    ResponseHandler handler = new ResponseHandler();
    FrameEncoder encoder = new FrameEncoder();
    ProtobufFrameDecoder<Response> decoder = new ProtobufFrameDecoder<>(Response.parser());
    this.bootstrap = new Bootstrap()
        .group(group)
        .channel(NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_KEEPALIVE, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, config.connectTimeoutMs()))
        .handler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline()
                .addLast("flush", new FlushConsolidationHandler(MAX_COALESCED_FLUSHES, true))
                .addLast("frames", new FrameDecoder(config.maxFrameBytes()))
                .addLast("decode", decoder)
                .addLast("encode", encoder)
                .addLast("handler", handler);
          }
        });
  }

  @Override
  public long nanoTime() {
    return System.nanoTime();
  }

  @Override
  public Timer schedule(Runnable task, long delayNs) {
    ScheduledFuture<?> f = group.next().schedule(task, delayNs, TimeUnit.NANOSECONDS);
    return () -> f.cancel(false);
  }

  @Override
  public CompletableFuture<Connection> connect(String host, int port, Listener listener) {
    CompletableFuture<Connection> result = new CompletableFuture<>();
    ChannelFuture connect;
    try {
      // Unresolved, so the name is resolved by Netty on the event loop rather than on the caller. The
      // listener is a channel attribute so the shared handler finds it from the first event on.
      connect = bootstrap.clone().attr(LISTENER, listener)
          .connect(InetSocketAddress.createUnresolved(host, port));
    } catch (RejectedExecutionException e) {
      return CompletableFuture.failedFuture(new UnavailableException("client closed", e));
    }
    connect.addListener(f -> {
      if (f.isSuccess()) {
        result.complete(new NettyConnection(connect.channel()));
      } else {
        result.completeExceptionally(new UnavailableException(
            "cannot connect to " + new Endpoint(host, port) + ": " + f.cause(), f.cause()));
      }
    });
    return result;
  }

  /** Stops the event loops (no quiet period: nothing of ours runs on them any more). */
  @Override
  public void close() {
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
  }

  /** Waits (bounded) for the event loops to end; never call it on one of them. */
  void awaitTermination(long timeoutMs) {
    Future<?> terminated = group.terminationFuture();
    terminated.awaitUninterruptibly(timeoutMs, TimeUnit.MILLISECONDS);
  }

  /** Whether the current thread is one of this client's I/O threads (where blocking would deadlock). */
  boolean inAnyEventLoop() {
    for (var executor : group) {
      if (executor.inEventLoop()) {
        return true;
      }
    }
    return false;
  }

  /** NettyConnection is one channel; a failed write means the frame was not flushed whole. */
  private record NettyConnection(Channel channel) implements Connection {
    @Override
    public CompletableFuture<Void> write(Request request) {
      CompletableFuture<Void> done = new CompletableFuture<>();
      // A closed channel fails the write, so a request written after channelInactive is still failed over.
      channel.writeAndFlush(request).addListener(f -> {
        if (f.isSuccess()) {
          done.complete(null);
        } else {
          done.completeExceptionally(f.cause());
        }
      });
      return done;
    }

    @Override
    public boolean isActive() {
      return channel.isActive();
    }

    /** A reset, not a FIN: the kernel drops what is queued instead of retransmitting it for minutes. */
    @Override
    public void close() {
      if (channel.isActive()) {
        channel.config().setOption(ChannelOption.SO_LINGER, 0);
      }
      channel.close();
    }
  }
}
