package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.handler.timeout.IdleStateHandler;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * ClientServer listens for client TCP connections: epoll when available, NIO otherwise. Its initializer
 * builds the pipeline (frames of at most max_frame_bytes, protobuf, idle timeout, write-buffer
 * watermarks for slow readers) and hands requests to a {@link RequestSink}.
 */
public final class ClientServer implements AutoCloseable {
  /** Limits the edge enforces. */
  public record Limits(int maxFrameBytes, int maxConnections, int idleTimeoutMs, int writeBufferBytes) {}

  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final Channel serverChannel;
  private final FrameEncoder encoder = new FrameEncoder();

  public ClientServer(InetSocketAddress bind, Limits limits, ClientConnections connections,
      RequestSink sink, int ioThreads, MeterRegistry metrics) throws InterruptedException {
    IoHandlerFactory factory = NettyIo.ioHandlerFactory();
    Class<? extends ServerChannel> channelType = NettyIo.serverChannelType();
    this.boss = new MultiThreadIoEventLoopGroup(1, factory);
    this.workers = new MultiThreadIoEventLoopGroup(ioThreads, factory);
    ProtobufFrameDecoder<Request> requestDecoder = new ProtobufFrameDecoder<>(Request.parser());
    ServerBootstrap b = new ServerBootstrap()
        .group(boss, workers)
        .channel(channelType)
        .option(ChannelOption.SO_BACKLOG, 1024)
        .option(ChannelOption.SO_REUSEADDR, true)
        .handler(connections.acceptGate()) // connections per source address, refused before a pipeline
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK,
            new WriteBufferWaterMark(limits.writeBufferBytes() / 2, limits.writeBufferBytes()))
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline()
                .addLast("idle", new IdleStateHandler(0, 0, limits.idleTimeoutMs(), TimeUnit.MILLISECONDS))
                .addLast("flush", new FlushConsolidationHandler(256, true))
                .addLast("frames", connections.frameDecoder(ch, limits.maxFrameBytes()))
                .addLast("decode", requestDecoder)
                .addLast("encode", encoder)
                .addLast("handler", new ClientHandler(connections, sink, limits.maxConnections(), metrics));
          }
        });
    try {
      this.serverChannel = b.bind(bind).sync().channel();
    } catch (RuntimeException | InterruptedException e) {
      boss.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      workers.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      throw e;
    }
  }

  /** The bound address (the real port when the configured one was 0). */
  public InetSocketAddress localAddress() {
    return (InetSocketAddress) serverChannel.localAddress();
  }

  /** Stops accepting new connections; existing ones stay until {@link #close()}. */
  public void stopAccepting() {
    serverChannel.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
  }

  @Override
  public void close() {
    serverChannel.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
  }
}
