package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.wire.FrameEncoder;
import io.choir.proto.wire.ProtobufFrameDecoder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.embedded.EmbeddedChannel;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * ClientConnections' reply-byte bounds (issue 10, item 7) on EmbeddedChannels whose peer does not read:
 * a {@link Unread} handler holds every write until the test lets it through. The test plays the core:
 * each request the edge hands over is released as a read at once.
 */
class ClientReplyBoundsTest {
  private static final int BIG = 3000;
  /** Above ReplyBudget.SMALL_REPLY_BYTES: not exempt from the total. */
  private static final int HUGE = 100_000;
  private final SimpleMeterRegistry metrics = new SimpleMeterRegistry();
  private final AtomicInteger computed = new AtomicInteger();
  private final Map<Long, List<Request>> handedOver = new ConcurrentHashMap<>();
  private ClientConnections connections;

  /** Holds writes (the peer reads nothing) until {@link #drain}. */
  private static final class Unread extends ChannelOutboundHandlerAdapter {
    final List<Object> msgs = new ArrayList<>();
    final List<ChannelPromise> promises = new ArrayList<>();

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      if (!ctx.channel().isActive()) { // as Netty's head does: a write to a closed channel fails
        ((ByteBuf) msg).release();
        promise.setFailure(new ClosedChannelException());
        return;
      }
      msgs.add(msg);
      promises.add(promise);
    }

    @Override
    public void flush(ChannelHandlerContext ctx) {
      // nothing reaches the peer
    }

    @Override
    public void close(ChannelHandlerContext ctx, ChannelPromise promise) {
      // as Netty's outbound buffer does on close: unwritten writes fail
      for (Object m : msgs) {
        ((ByteBuf) m).release();
      }
      msgs.clear();
      List<ChannelPromise> failed = new ArrayList<>(promises);
      promises.clear();
      failed.forEach(p -> p.setFailure(new ClosedChannelException()));
      ctx.close(promise);
    }

    void drain() {
      for (Object m : msgs) {
        ((ByteBuf) m).release();
      }
      msgs.clear();
      List<ChannelPromise> done = new ArrayList<>(promises);
      promises.clear();
      done.forEach(ChannelPromise::setSuccess);
    }
  }

  private Response read(Request r) {
    computed.incrementAndGet();
    String key = r.getGet().getKey().toStringUtf8();
    int size = key.equals("big") ? BIG : key.equals("huge") ? HUGE : 10;
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK)
        .setValue(ByteString.copyFrom(new byte[size])).build();
  }

  private ClientConnections connections(long perConnection, long total) {
    connections = new ClientConnections(new ClientConnections.Limits(1024, perConnection, total, 16, 0, 2),
        Runnable::run, this::read, metrics);
    return connections;
  }

  private final class Client {
    final Unread unread = new Unread();
    final EmbeddedChannel channel;
    long id;

    Client() {
      channel = new EmbeddedChannel(new ChannelInitializer<Channel>() {
        @Override
        protected void initChannel(Channel ch) {
          ch.pipeline().addLast(unread, new FrameEncoder(), connections.frameDecoder(ch, 1 << 20),
              new ProtobufFrameDecoder<>(Request.parser()),
              new ClientHandler(connections, (connectionId, request) -> {
                handedOver.computeIfAbsent(connectionId, k -> new ArrayList<>()).add(request);
                Client.this.id = connectionId;
                return true;
              }, 100, metrics));
        }
      });
    }

    /** Sends n GETs of key; the "core" releases each as a read; runs the event loop until quiet. */
    void get(String key, int n) {
      ByteBuf in = Unpooled.buffer();
      for (int i = 0; i < n; i++) {
        byte[] body = Request.newBuilder().setRequestId(i + 1)
            .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8(key))).build().toByteArray();
        in.writeInt(body.length).writeBytes(body);
      }
      channel.writeInbound(in);
      for (Request r : handedOver.getOrDefault(id, List.of())) {
        connections.read(id, r);
      }
      handedOver.remove(id);
      settle();
    }

    void drain() {
      unread.drain();
      settle();
    }

    void settle() {
      for (int i = 0; i < 10; i++) {
        channel.runPendingTasks();
      }
    }

    int repliesHeld() {
      return unread.msgs.size();
    }
  }

  private long deferred() {
    return (long) metrics.counter("choir.client_reads.deferred").count();
  }

  @Test
  void shouldNotComputeReadsOfAConnectionWhoseRepliesAreNotRead() {
    connections(4096, 1 << 20);
    Client attacker = new Client();
    attacker.get("big", 50);
    // One reply fits under 4096; a second is computed (two reads may run at once), does not fit and
    // waits; the other 48 are not computed at all.
    assertEquals(2, computed.get());
    assertEquals(1, attacker.repliesHeld());
    assertTrue(deferred() >= 48, "deferred " + deferred());
    assertTrue(connections.replyBytes() > BIG && connections.replyBytes() < BIG + 64,
        "one reply of 3000 bytes (and its frame) in flight: " + connections.replyBytes());
    for (int round = 0; round < 5; round++) {
      attacker.drain(); // the peer reads what was sent: the next reply goes out, and only that one
      assertEquals(1, attacker.repliesHeld());
    }
    assertTrue(computed.get() <= 2 + 5 * 2, "computed " + computed.get());
  }

  @Test
  void shouldSendOneReplyLargerThanTheConnectionBound() {
    connections(1024, 1 << 20);
    Client c = new Client();
    c.get("big", 3);
    assertEquals(1, c.repliesHeld(), "a reply above the per-connection bound still goes out, alone");
    c.drain();
    assertEquals(1, c.repliesHeld());
    c.drain();
    assertEquals(1, c.repliesHeld());
    c.drain();
    assertEquals(0, c.repliesHeld());
    assertEquals(0, connections.replyBytes());
  }

  @Test
  void shouldStopReadingAConnectionOverItsBoundAndResumeWhenItDrains() {
    connections(4096, 1 << 20);
    Client c = new Client();
    c.get("big", 2);
    c.get("big", 1); // a third read: 2 replies would be over the bound
    assertTrue(c.channel.config().isAutoRead(), "3 KB held of 4 KB: still read");
    assertEquals(1, c.repliesHeld());
    for (int i = 0; i < 3; i++) {
      assertEquals(1, c.repliesHeld(), "one reply at a time");
      c.drain();
    }
    assertEquals(0, c.repliesHeld());
    assertEquals(0, connections.replyBytes());
  }

  @Test
  void shouldServeSmallRepliesOfAnotherConnectionWhileAttackersHoldTheTotal() {
    connections(1 << 20, 256 << 10);
    Client attacker = new Client();
    attacker.get("huge", 20);
    long held = connections.replyBytes();
    assertTrue(held <= 256 << 10, "the total bound holds: " + held);
    assertEquals(2, attacker.repliesHeld(), "two replies of 100 KB fit in 256 KB, a third does not");
    Client good = new Client();
    good.get("small", 1);
    assertEquals(1, good.repliesHeld(), "a small reply to a connection holding none is not held back");
    good.drain();
    good.get("small", 1);
    assertEquals(1, good.repliesHeld());
    good.drain();
    Client other = new Client();
    other.get("huge", 1);
    assertEquals(0, other.repliesHeld(), "a large reply of another connection waits for room in the total");
    attacker.channel.close(); // the attacker leaves: its bytes are released and the waiter is woken
    attacker.settle();
    other.settle();
    assertEquals(1, other.repliesHeld());
    other.drain();
    assertEquals(0, connections.replyBytes());
  }

  @Test
  void shouldDropTheDeferredReadsOfAClosedConnection() {
    connections(4096, 1 << 20);
    Client c = new Client();
    c.get("big", 10);
    c.channel.close();
    c.settle();
    assertEquals(0, connections.replyBytes(), "failed writes release their bytes");
    assertEquals(0, connections.size());
    assertFalse(c.channel.isActive());
    assertTrue(metrics.counter("choir.replies.dropped").count() >= 8, "dropped " + metrics.counter("choir.replies.dropped").count() + " deferred " + deferred() + " computed " + computed.get());
  }
}
