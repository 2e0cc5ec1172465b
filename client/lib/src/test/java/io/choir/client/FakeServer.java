package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.wire.FrameDecoder;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * FakeServer is a scripted replica for client tests: a real TCP server on 127.0.0.1 with the client
 * protocol's framing, whose answer to each request is decided by the test's {@link Script} (answer
 * from the {@link FakeStore}, hold, drop the connection, refuse...). It records every request it
 * receives, in order, and lets a test wait for the next one without sleeping.
 *
 * <p>Session requests (RegisterSession, CloseSession) are answered from the store before the script
 * sees them, and recorded in {@link #sessionRequests()} rather than {@link #received()}, so tests of
 * other behaviour need not script the session; {@link #scriptSessions()} hands them to the script too.
 */
final class FakeServer implements AutoCloseable {
  /** Script decides what the fake does with one request; it runs on the fake's I/O thread. */
  interface Script {
    void onRequest(FakeServer server, Channel channel, Request request);
  }

  /** How long a test waits for an expected request before failing. */
  static final long AWAIT_MS = 5_000;

  final FakeStore store;
  private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
  private final Channel serverChannel;
  private final List<Request> received = new CopyOnWriteArrayList<>();
  private final List<Request> sessionRequests = new CopyOnWriteArrayList<>();
  private volatile boolean scriptSessions;
  private final LinkedBlockingQueue<Request> arrivals = new LinkedBlockingQueue<>();
  private final Set<Channel> connections = ConcurrentHashMap.newKeySet();
  private volatile Script script;

  private FakeServer(int replicaId, Script script) throws InterruptedException {
    this.store = new FakeStore(replicaId, 100);
    this.script = script;
    this.serverChannel = new ServerBootstrap()
        .group(group)
        .channel(NioServerSocketChannel.class)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            connections.add(ch);
            ch.closeFuture().addListener(f -> connections.remove(ch));
            ch.pipeline()
                .addLast(new FrameDecoder(1 << 20))
                .addLast(new ProtobufFrameDecoder<>(Request.parser()))
                .addLast(new FrameEncoder())
                .addLast(new SimpleChannelInboundHandler<Request>() {
                  @Override
                  protected void channelRead0(ChannelHandlerContext ctx, Request request) {
                    boolean session = request.hasRegisterSession() || request.hasCloseSession();
                    if (session) {
                      sessionRequests.add(request);
                    }
                    if (session && !scriptSessions) {
                      ctx.channel().writeAndFlush(store.apply(request));
                      return;
                    }
                    received.add(request);
                    arrivals.add(request);
                    FakeServer.this.script.onRequest(FakeServer.this, ctx.channel(), request);
                  }
                });
          }
        })
        .bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
  }

  /** A fake that answers every request from its store. */
  static FakeServer start() throws InterruptedException {
    return start(1, FakeServer::answer);
  }

  static FakeServer start(Script script) throws InterruptedException {
    return start(1, script);
  }

  static FakeServer start(int replicaId, Script script) throws InterruptedException {
    return new FakeServer(replicaId, script);
  }

  /** Script step: answer from the store. */
  static void answer(FakeServer server, Channel channel, Request request) {
    channel.writeAndFlush(server.store.apply(request));
  }

  /** Script step: never answer. */
  static void hold(FakeServer server, Channel channel, Request request) {}

  void script(Script script) {
    this.script = script;
  }

  /** From now on session requests go to the script (and into received()) like any other. */
  FakeServer scriptSessions() {
    this.scriptSessions = true;
    return this;
  }

  /** Every RegisterSession and CloseSession received, in arrival order. */
  List<Request> sessionRequests() {
    return List.copyOf(sessionRequests);
  }

  String address() {
    return "127.0.0.1:" + ((InetSocketAddress) serverChannel.localAddress()).getPort();
  }

  /** Every request received so far, in arrival order. */
  List<Request> received() {
    return List.copyOf(received);
  }

  /** The next request not yet taken by this method, waiting for it to arrive. */
  Request awaitRequest() throws InterruptedException {
    Request r = arrivals.poll(AWAIT_MS, TimeUnit.MILLISECONDS);
    assertNotNull(r, "the fake server received no request within " + AWAIT_MS + " ms");
    return r;
  }

  static void reply(Channel channel, Response response) {
    channel.writeAndFlush(response);
  }

  @Override
  public void close() {
    serverChannel.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    for (Channel c : connections) {
      c.close();
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(2, TimeUnit.SECONDS);
  }
}
