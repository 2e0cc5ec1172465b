package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.choir.server.config.ConfigException;
import io.choir.server.config.ServerConfig;
import io.choir.server.security.AccessControl;
import io.choir.server.security.ClientTls;
import io.micrometer.core.instrument.Counter;
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
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ClientServer listens for client TCP connections: epoll when available, NIO otherwise. Its initializer
 * builds the pipeline (frames of at most max_frame_bytes, protobuf, idle timeout, write-buffer
 * watermarks for slow readers) and hands requests to a {@link RequestSink}. With {@link Security}: TLS
 * first ({@link ClientTlsHandler}: a plaintext client is told the port needs TLS), and the access check
 * ({@link ClientAccessHandler}) right before the handler, so a denied request never reaches the core.
 */
public final class ClientServer implements AutoCloseable {
  /** Limits the edge enforces. */
  public record Limits(int maxFrameBytes, int maxConnections, int idleTimeoutMs, int writeBufferBytes) {}

  private static final Logger log = LoggerFactory.getLogger(ClientServer.class);

  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final Channel serverChannel;
  private final FrameEncoder encoder = new FrameEncoder();

  /**
   * What the port checks before a request reaches the replica: TLS (null: plaintext) and the access
   * file ({@link AccessControl#OPEN} when there is none).
   */
  public record Security(ClientTls tls, AccessControl access) {
    /** Plaintext, everyone may do everything (the behaviour before TLS and access files). */
    public static final Security NONE = new Security(null, AccessControl.OPEN);

    public Security {
      Objects.requireNonNull(access, "access");
    }

    /**
     * The port's security from the settings (client_tls_*, client_auth, access_file): refuses, with a
     * ConfigException naming the setting, what ClientTls refuses and an access file that cannot be read.
     */
    public static Security fromConfig(ServerConfig config) {
      ClientTls tls = ClientTls.fromConfig(config);
      AccessControl access = AccessControl.OPEN;
      String file = config.get(ServerConfig.ACCESS_FILE);
      if (!file.isEmpty()) {
        try {
          access = AccessControl.load(Path.of(file));
        } catch (IllegalArgumentException e) {
          throw new ConfigException(ServerConfig.ACCESS_FILE.key(), e.getMessage());
        }
      }
      if (access.namesCertificates() && (tls == null || tls.auth() == ClientTls.Auth.NONE)) {
        log.atWarn().addKeyValue("access_file", file).log("the access file names identities by certificate, but"
            + " client_auth is none: no client sends a certificate, so those identities never match");
      }
      log.atInfo().addKeyValue("tls", tls == null ? "off" : tls.provider())
          .addKeyValue("client_auth", tls == null ? "none" : tls.auth().name().toLowerCase(Locale.ROOT))
          .addKeyValue("access_file", file.isEmpty() ? "none (everyone may do everything)" : file)
          .log("client port security");
      return new Security(tls, access);
    }
  }

  public ClientServer(InetSocketAddress bind, Limits limits, ClientConnections connections,
      RequestSink sink, int ioThreads, MeterRegistry metrics) throws InterruptedException {
    this(bind, limits, connections, sink, ioThreads, metrics, Security.NONE);
  }

  public ClientServer(InetSocketAddress bind, Limits limits, ClientConnections connections,
      RequestSink sink, int ioThreads, MeterRegistry metrics, Security security) throws InterruptedException {
    IoHandlerFactory factory = NettyIo.ioHandlerFactory();
    Class<? extends ServerChannel> channelType = NettyIo.serverChannelType();
    this.boss = new MultiThreadIoEventLoopGroup(1, factory);
    this.workers = new MultiThreadIoEventLoopGroup(ioThreads, factory);
    ProtobufFrameDecoder<Request> requestDecoder = new ProtobufFrameDecoder<>(Request.parser());
    ClientAccessHandler.Shared access = new ClientAccessHandler.Shared(security.access(), metrics);
    Counter plaintextRefused = metrics.counter("choir.connections.plaintext_refused");
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
            if (security.tls() != null) {
              // First, so that everything after it sees plaintext (or nothing, for a plaintext client).
              ch.pipeline().addLast("tls-detect", new ClientTlsHandler(security.tls().context(), plaintextRefused));
              ch.pipeline().addLast(ClientTlsHandler.HOLD, new ClientTlsHandler.WriteHold());
            }
            ch.pipeline()
                .addLast("idle", new IdleStateHandler(0, 0, limits.idleTimeoutMs(), TimeUnit.MILLISECONDS))
                .addLast("flush", new FlushConsolidationHandler(256, true))
                .addLast("frames", connections.frameDecoder(ch, limits.maxFrameBytes()))
                .addLast("decode", requestDecoder)
                .addLast("encode", encoder)
                .addLast("access", new ClientAccessHandler(access))
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
