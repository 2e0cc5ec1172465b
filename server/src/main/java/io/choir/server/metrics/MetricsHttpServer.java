package io.choir.server.metrics;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * MetricsHttpServer serves a replica's metrics_address (Netty's HTTP codec on one event loop): GET
 * /metrics (the Prometheus text format), GET /health (200 while the replica serves, 503 once it refuses
 * everything: shutting down or stopped by a fatal error) and GET /ready (200 when {@link
 * ReplicaSnapshot#notReadyReason} finds nothing, else 503 with a short JSON reason). HEAD works as GET
 * without a body; any other method gets 405, any other path 404. Only the request line is used; a
 * request body is never buffered.
 *
 * <p>Bounds, so that no client can hold the endpoint: a request line of at most 4 KiB and headers of at
 * most 8 KiB (else 400 and close); a connection silent for {@link #MAX_EXCHANGE_S} seconds is closed
 * (a request sent slowly included); at most {@link #MAX_CONNECTIONS} connections at once (more are
 * closed at accept); one answer per connection, then it is closed. Answers are computed on {@link
 * #HANDLER_THREADS} threads (they may wait up to a second for the replica loop), never on the event loop.
 */
public final class MetricsHttpServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(MetricsHttpServer.class);
  private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
  private static final String JSON = "application/json";
  /** Seconds a connection may stay silent (mid-request included) before it is closed. */
  static final int MAX_EXCHANGE_S = 5;
  /** Threads that compute answers. */
  static final int HANDLER_THREADS = 2;
  /** Connections open at once; more are closed at accept. */
  static final int MAX_CONNECTIONS = 64;

  private final EventLoopGroup group;
  private final Channel channel;
  private final ExecutorService handlers;
  private final ReplicaMetrics metrics;
  private final AtomicInteger open = new AtomicInteger();

  private MetricsHttpServer(InetSocketAddress address, ReplicaMetrics metrics) throws IOException {
    this.metrics = metrics;
    AtomicInteger ids = new AtomicInteger();
    this.handlers = Executors.newFixedThreadPool(HANDLER_THREADS, r -> {
      Thread t = new Thread(r, "choir-metrics-" + ids.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    this.group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
    ServerBootstrap b = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            if (open.incrementAndGet() > MAX_CONNECTIONS) {
              open.decrementAndGet();
              ch.close();
              return;
            }
            ch.closeFuture().addListener(f -> open.decrementAndGet());
            ch.pipeline()
                .addLast(new ReadTimeoutHandler(MAX_EXCHANGE_S))
                .addLast(new HttpServerCodec(4096, 8192, 8192))
                .addLast(new Handler());
          }
        });
    try {
      this.channel = b.bind(address).sync().channel();
    } catch (Exception e) {
      close();
      throw new IOException(e.getMessage(), e);
    } catch (Throwable t) {
      close();
      throw t;
    }
  }

  /** Listens on address (port 0: any free port) and serves metrics; fails when it cannot bind. */
  static MetricsHttpServer start(InetSocketAddress address, ReplicaMetrics metrics) throws IOException {
    return new MetricsHttpServer(address, metrics);
  }

  /** The address it listens on (the real port). */
  public InetSocketAddress address() {
    return (InetSocketAddress) channel.localAddress();
  }

  /** One connection: its first request gets an answer, then the connection closes. */
  private final class Handler extends SimpleChannelInboundHandler<Object> {
    private boolean answered;

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof HttpRequest request) || answered) {
        return; // body chunks, or anything after the one request: ignored
      }
      answered = true;
      ctx.channel().config().setAutoRead(false);
      if (request.decoderResult().isFailure()) {
        send(ctx, HttpResponseStatus.BAD_REQUEST, JSON, "{\"error\":\"bad request\"}\n", false);
        return;
      }
      HttpMethod method = request.method();
      boolean head = method.equals(HttpMethod.HEAD);
      if (!head && !method.equals(HttpMethod.GET)) {
        send(ctx, HttpResponseStatus.METHOD_NOT_ALLOWED, JSON, "{\"error\":\"method not allowed\"}\n", false);
        return;
      }
      String path = new QueryStringDecoder(request.uri()).path();
      try {
        handlers.execute(() -> answer(ctx, path, head));
      } catch (RejectedExecutionException closing) {
        ctx.close();
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.atDebug().addKeyValue("reason", String.valueOf(cause.getMessage())).log("metrics connection closed");
      ctx.close();
    }
  }

  /** Computes the answer to path (a handler thread) and sends it. */
  private void answer(ChannelHandlerContext ctx, String path, boolean head) {
    try {
      switch (path) {
        case "/metrics" -> send(ctx, HttpResponseStatus.OK, PROMETHEUS_TEXT, metrics.scrape(), head);
        case "/health" -> {
          String reason = metrics.unhealthyReason();
          send(ctx, reason == null ? HttpResponseStatus.OK : HttpResponseStatus.SERVICE_UNAVAILABLE, JSON,
              reason == null ? "{\"status\":\"ok\"}\n" : "{\"status\":\"failed\",\"reason\":" + quote(reason) + "}\n",
              head);
        }
        case "/ready" -> {
          String reason = metrics.notReadyReason();
          send(ctx, reason == null ? HttpResponseStatus.OK : HttpResponseStatus.SERVICE_UNAVAILABLE, JSON,
              reason == null ? "{\"ready\":true}\n" : "{\"ready\":false,\"reason\":" + quote(reason) + "}\n", head);
        }
        default -> send(ctx, HttpResponseStatus.NOT_FOUND, JSON,
            "{\"error\":\"not found: try /metrics, /health or /ready\"}\n", head);
      }
    } catch (RuntimeException e) {
      log.atWarn().setCause(e).log("metrics request failed");
      send(ctx, HttpResponseStatus.INTERNAL_SERVER_ERROR, JSON, "{\"error\":\"internal error\"}\n", head);
    }
  }

  private static void send(ChannelHandlerContext ctx, HttpResponseStatus status, String type, String body,
      boolean head) {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status,
        head ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(bytes));
    r.headers().set(HttpHeaderNames.CONTENT_TYPE, type)
        .set(HttpHeaderNames.CONTENT_LENGTH, bytes.length)
        .set(HttpHeaderNames.CACHE_CONTROL, "no-store")
        .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    if (status == HttpResponseStatus.METHOD_NOT_ALLOWED) {
      r.headers().set(HttpHeaderNames.ALLOW, "GET, HEAD");
    }
    ctx.writeAndFlush(r).addListener(ChannelFutureListener.CLOSE);
  }

  /** s as a JSON string. */
  static String quote(String s) {
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c < 0x20) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    return b.append('"').toString();
  }

  @Override
  public void close() {
    if (channel != null) {
      channel.close().awaitUninterruptibly(1000);
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(2000);
    handlers.shutdownNow();
  }
}
