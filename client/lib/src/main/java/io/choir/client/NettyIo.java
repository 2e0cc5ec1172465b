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
import io.netty.channel.ChannelException;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.AttributeKey;
import io.netty.util.HashedWheelTimer;
import io.netty.util.Timeout;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.Future;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;

/**
 * NettyIo is the production implementation of both client ports: TCP connections with the client
 * protocol's framing (4-byte length + protobuf), and timers on a timer wheel whose tasks run on the
 * same event loops, with {@link System#nanoTime()}. With {@link ClientSecurity}: TLS first in every pipeline, and a
 * {@link ConnectGate} that completes a connect only once the handshake is done and the replica answered
 * the connection's Authenticate. Connections are thread-safe as Netty's channels are; futures and listener
 * calls complete on the event loops.
 */
final class NettyIo implements ClientTransport, ClientScheduler {
  /** Flushes a connection coalesces before it must flush anyway (Netty's FlushConsolidationHandler). */
  static final int MAX_COALESCED_FLUSHES = 256;
  /** The dispatcher's listener of one channel, set before the channel is registered. */
  static final AttributeKey<Listener> LISTENER = AttributeKey.valueOf("choir.client.listener");
  /**
   * Time a new connection may take, beyond the connect timeout, for its TLS handshake and its
   * Authenticate round trip: a replica on the same network needs a few milliseconds; this only bounds
   * one that accepted the connection and then went silent.
   */
  static final long TLS_SETUP_MS = 5_000;
  /** The endpoint a channel connects to (the TLS peer name) and its gate's future, set before registration. */
  static final AttributeKey<Endpoint> ENDPOINT = AttributeKey.valueOf("choir.client.endpoint");
  static final AttributeKey<CompletableFuture<Void>> OPEN = AttributeKey.valueOf("choir.client.open");

  /** The timer wheel's tick: a timer fires at most this much after its delay. */
  static final long TIMER_TICK_MS = 1;

  private final EventLoopGroup group;
  private final HashedWheelTimer wheel;
  private final Bootstrap bootstrap;

  private final ClientSecurity security;

  NettyIo(ClientConfig config) {
    this(config, ClientSecurity.NONE);
  }

  NettyIo(ClientConfig config, ClientSecurity security) {
    this.security = security;
    this.group = new MultiThreadIoEventLoopGroup(config.eventLoopThreads(),
        new DefaultThreadFactory("choir-client", true), NioIoHandler.newFactory());
    this.wheel = new HashedWheelTimer(new DefaultThreadFactory("choir-client-timer", true), TIMER_TICK_MS,
        TimeUnit.MILLISECONDS, 512, false);
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
            Endpoint endpoint = ch.attr(ENDPOINT).get();
            if (security.tls() != null) {
              ch.pipeline().addLast("tls", tlsHandler(ch, endpoint));
            }
            ch.pipeline()
                .addLast("flush", new FlushConsolidationHandler(MAX_COALESCED_FLUSHES, true))
                .addLast("frames", new FrameDecoder(config.maxFrameBytes()))
                .addLast("decode", decoder)
                .addLast("encode", encoder);
            if (security.gated()) {
              ch.pipeline().addLast("gate",
                  new ConnectGate(endpoint, security.tls() != null, security.token(), ch.attr(OPEN).get(),
                      config.connectTimeoutMs() + TLS_SETUP_MS));
            }
            ch.pipeline().addLast("handler", handler);
          }
        });
  }

  /** The TLS handler of a connection to endpoint: its certificate must name endpoint's host (RFC 6125). */
  private SslHandler tlsHandler(SocketChannel ch, Endpoint endpoint) {
    SslHandler h = security.tls().newHandler(ch.alloc(), endpoint.host(), endpoint.port());
    SSLEngine engine = h.engine();
    SSLParameters p = engine.getSSLParameters();
    p.setEndpointIdentificationAlgorithm("HTTPS");
    engine.setSSLParameters(p);
    return h;
  }

  @Override
  public long nanoTime() {
    return System.nanoTime();
  }

  /**
   * Schedules task on the timer wheel; when it fires, it runs on one of the event loops (so every
   * callback of the client runs on an I/O thread, where {@link BlockingWaits} refuses to block). Setting
   * and cancelling a timer puts an element on the wheel's lock-free queues and wakes no thread: with
   * timers on the event loops, every call cost two cross-thread tasks and selector wake-ups (set from
   * the caller's thread, cancelled from the loop that read the reply), though nearly every timer is
   * cancelled before it fires. A timer fires up to one tick ({@link #TIMER_TICK_MS}) late, never early.
   */
  @Override
  public Timer schedule(Runnable task, long delayNs) {
    if (group.isShuttingDown()) {
      throw new RejectedExecutionException("client closed");
    }
    Timeout t;
    try {
      t = wheel.newTimeout(fired -> runOnLoop(task), delayNs, TimeUnit.NANOSECONDS);
    } catch (IllegalStateException stopped) { // the wheel was stopped: the client is closed
      throw new RejectedExecutionException("client closed", stopped);
    }
    return t::cancel;
  }

  private void runOnLoop(Runnable task) {
    try {
      group.next().execute(task);
    } catch (RejectedExecutionException closing) {
      // The event loops are shut down: the client is closed, and close failed every pending call.
    }
  }

  @Override
  public CompletableFuture<Connection> connect(String host, int port, Listener listener) {
    CompletableFuture<Connection> result = new CompletableFuture<>();
    CompletableFuture<Void> open = new CompletableFuture<>();
    ChannelFuture connect;
    try {
      // Unresolved, so the name is resolved by Netty on the event loop rather than on the caller. The
      // listener is a channel attribute so the shared handler finds it from the first event on.
      connect = bootstrap.clone().attr(LISTENER, listener).attr(ENDPOINT, new Endpoint(host, port))
          .attr(OPEN, open).connect(InetSocketAddress.createUnresolved(host, port));
    } catch (RejectedExecutionException e) {
      return CompletableFuture.failedFuture(new UnavailableException("client closed", e));
    }
    connect.addListener(f -> {
      if (f.isSuccess() && !security.gated()) {
        result.complete(new NettyConnection(connect.channel()));
      } else if (f.isSuccess()) {
        // Usable once the gate opens (TLS handshake, Authenticate answered).
        open.whenComplete((v, e) -> {
          if (e == null) {
            result.complete(new NettyConnection(connect.channel()));
          } else {
            result.completeExceptionally(e);
          }
        });
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
    wheel.stop(); // the timers not fired are dropped: close failed their calls
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
        try {
          channel.config().setOption(ChannelOption.SO_LINGER, 0);
        } catch (ChannelException closedMeanwhile) {
          // The channel closed between the check and the option ("Socket is closed"): nothing to reset.
        }
      }
      channel.close();
    }
  }
}
