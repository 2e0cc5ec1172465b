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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * ClientConnections' reply-byte bounds (issue 10, item 7) on EmbeddedChannels whose peer does not read:
 * a {@link Unread} handler holds every write until the test lets it through. The test plays the core:
 * each request the edge hands over is released as a read at once. Each bound is tested with reads
 * computed on the read pool and with reads answered from memory on the event loop (issue 14).
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
    /** Set when close begins: as Netty drops its outbound buffer first, a write made while closing fails. */
    boolean closing;

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      if (closing || !ctx.channel().isActive()) { // as Netty's head does: a write to a closed channel fails
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
      closing = true;
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

  private final AtomicInteger poolTasks = new AtomicInteger();
  /** Whether reads are answered from memory on the event loop (else on the "pool"). */
  private boolean fromMemory;

  private ClientConnections connections(long perConnection, long total) {
    connections = new ClientConnections(new ClientConnections.Limits(1024, perConnection, total, 16, 0, 2),
        task -> {
          poolTasks.incrementAndGet();
          task.run();
        }, this::read, r -> fromMemory ? read(r) : null, metrics);
    return connections;
  }

  /** Every client a test made: closed after it, which releases the replies they still hold. */
  private final List<Client> clients = new ArrayList<>();

  @AfterEach
  void closeClients() {
    for (Client c : clients) {
      c.channel.close();
      c.channel.finishAndReleaseAll();
    }
  }

  private final class Client {
    final Unread unread = new Unread();
    final EmbeddedChannel channel;
    long id;

    Client() {
      clients.add(this);
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

    /** The request ids of the replies held, in the order they were written. */
    List<Long> heldRequestIds() throws Exception {
      List<Long> ids = new ArrayList<>();
      for (Object m : unread.msgs) {
        ByteBuf b = ((ByteBuf) m).duplicate();
        while (b.isReadable()) {
          byte[] body = new byte[b.readInt()];
          b.readBytes(body);
          ids.add(Response.parseFrom(body).getRequestId());
        }
      }
      return ids;
    }
  }

  private long deferred() {
    return (long) metrics.counter("choir.client_reads.deferred").count();
  }

  @Test
  void shouldAnswerReadsFromMemoryOnTheEventLoopWithoutThePool() throws Exception {
    fromMemory = true;
    connections(1 << 20, 1 << 20);
    Client c = new Client();
    c.get("small", 20);
    assertEquals(0, poolTasks.get(), "no read went to the pool");
    assertEquals(20, c.heldRequestIds().size());
    assertEquals(20, (long) metrics.counter("choir.client_reads.from_memory").count());
    c.drain();
    fromMemory = false; // the state has them on disk only: the pool reads them
    c.get("small", 5);
    assertTrue(poolTasks.get() >= 1, "pool tasks " + poolTasks.get());
    assertEquals(5, c.heldRequestIds().size());
    assertEquals(20, (long) metrics.counter("choir.client_reads.from_memory").count());
  }

  @Test
  void shouldAnswerTheReadsInMemoryWithoutWaitingForOnesOnThePool() throws Exception {
    // Requests 1-3 and 5-8 are in memory, 4 is not: all but 4 are answered in one write, 4 on the pool.
    connections = new ClientConnections(new ClientConnections.Limits(1024, 1 << 20, 1 << 20, 16, 0, 2),
        task -> {
          poolTasks.incrementAndGet();
          task.run();
        }, this::read, r -> r.getRequestId() == 4 ? null : read(r), metrics);
    Client c = new Client();
    c.get("small", 8);
    assertEquals(List.of(1L, 2L, 3L, 5L, 6L, 7L, 8L, 4L), c.heldRequestIds());
    assertEquals(7, (long) metrics.counter("choir.client_reads.from_memory").count());
    assertEquals(1, poolTasks.get());
  }

  @ParameterizedTest(name = "from memory: {0}")
  @ValueSource(booleans = {false, true})
  void shouldNotComputeReadsOfAConnectionWhoseRepliesAreNotRead(boolean fromMemory) {
    this.fromMemory = fromMemory;
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

  @ParameterizedTest(name = "from memory: {0}")
  @ValueSource(booleans = {false, true})
  void shouldSendOneReplyLargerThanTheConnectionBound(boolean fromMemory) {
    this.fromMemory = fromMemory;
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

  @ParameterizedTest(name = "from memory: {0}")
  @ValueSource(booleans = {false, true})
  void shouldStopReadingAConnectionOverItsBoundAndResumeWhenItDrains(boolean fromMemory) {
    this.fromMemory = fromMemory;
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

  @ParameterizedTest(name = "from memory: {0}")
  @ValueSource(booleans = {false, true})
  void shouldServeSmallRepliesOfAnotherConnectionWhileAttackersHoldTheTotal(boolean fromMemory) {
    this.fromMemory = fromMemory;
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

  @ParameterizedTest(name = "from memory: {0}")
  @ValueSource(booleans = {false, true})
  void shouldDropTheDeferredReadsOfAClosedConnection(boolean fromMemory) {
    this.fromMemory = fromMemory;
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
