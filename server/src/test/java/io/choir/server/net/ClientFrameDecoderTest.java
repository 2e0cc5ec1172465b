package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.wire.FrameException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** ClientFrameDecoder: the gate that holds frames undecoded, and the frame timeout (slowloris). */
class ClientFrameDecoderTest {
  private boolean open = true;
  private final List<Throwable> errors = new ArrayList<>();
  private ClientFrameDecoder decoder;

  private EmbeddedChannel channel(int frameTimeoutMs) {
    decoder = new ClientFrameDecoder(1024, frameTimeoutMs, () -> open);
    return new EmbeddedChannel(decoder, new ChannelInboundHandlerAdapter() {
      @Override
      public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        errors.add(cause);
      }
    });
  }

  private static ByteBuf frame(int... body) {
    ByteBuf b = Unpooled.buffer();
    b.writeInt(body.length);
    for (int x : body) {
      b.writeByte(x);
    }
    return b;
  }

  private static int firstByte(EmbeddedChannel ch) {
    ByteBuf f = ch.readInbound();
    try {
      return f.getByte(0);
    } finally {
      f.release();
    }
  }

  @Test
  void shouldHoldCompleteFramesUndecodedWhileTheGateIsClosedAndDecodeThemOnResume() {
    EmbeddedChannel ch = channel(0);
    open = false;
    ch.writeInbound(Unpooled.wrappedBuffer(frame(1, 1), frame(2), frame(3, 3, 3)));
    assertNull(ch.readInbound(), "a frame went past a closed gate");
    assertEquals(6 + 5 + 7, decoder.bufferedBytes());
    open = true;
    decoder.resume(ch.pipeline().context(decoder));
    assertEquals(1, firstByte(ch));
    assertEquals(2, firstByte(ch));
    assertEquals(3, firstByte(ch));
    assertEquals(0, decoder.bufferedBytes());
    ch.finishAndReleaseAll();
  }

  @Test
  void shouldStopAtTheFrameThatClosesTheGate() {
    EmbeddedChannel ch = channel(0);
    int[] seen = {0};
    ch.pipeline().addAfter(ch.pipeline().context(decoder).name(), "counter", new ChannelInboundHandlerAdapter() {
      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (++seen[0] == 2) {
          open = false; // the handler's bound is reached by the second frame
        }
        ctx.fireChannelRead(msg);
      }
    });
    ch.writeInbound(Unpooled.wrappedBuffer(frame(1), frame(2), frame(3), frame(4)));
    assertEquals(2, seen[0]);
    assertEquals(10, decoder.bufferedBytes(), "the last two frames stay in the buffer");
    ch.finishAndReleaseAll();
  }

  @Test
  void shouldCloseAFrameThatIsNotCompletedWithinTheTimeoutEvenIfBytesTrickle() {
    EmbeddedChannel ch = channel(2000);
    ByteBuf header = Unpooled.buffer().writeInt(100);
    ch.writeInbound(header);
    for (int i = 0; i < 19; i++) {
      ch.advanceTimeBy(100, TimeUnit.MILLISECONDS);
      ch.runScheduledPendingTasks();
      ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {7})); // one byte per 100 ms: never idle
    }
    assertTrue(errors.isEmpty(), "closed before the timeout: " + errors);
    ch.advanceTimeBy(150, TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertEquals(1, errors.size());
    assertInstanceOf(ClientFrameDecoder.FrameTimeoutException.class, errors.get(0));
    assertEquals(0, decoder.bufferedBytes(), "the partial frame is released");
    ch.finishAndReleaseAll();
  }

  @Test
  void shouldRestartTheClockForEachFrameAndNotTimeOutBetweenFrames() {
    EmbeddedChannel ch = channel(1000);
    for (int i = 0; i < 5; i++) {
      ch.writeInbound(Unpooled.buffer().writeInt(1)); // a frame started...
      ch.advanceTimeBy(900, TimeUnit.MILLISECONDS);
      ch.runScheduledPendingTasks();
      ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {9})); // ...and completed in time
      assertEquals(9, firstByte(ch));
      ch.advanceTimeBy(5000, TimeUnit.MILLISECONDS); // silence between frames is the idle timeout's business
      ch.runScheduledPendingTasks();
    }
    assertTrue(errors.isEmpty(), "a frame completed in time was timed out: " + errors);
    ch.finishAndReleaseAll();
  }

  @Test
  void shouldNotTimeOutWhileTheReplicaHoldsTheConnectionUnread() {
    EmbeddedChannel ch = channel(1000);
    ByteBuf in = Unpooled.buffer();
    in.writeBytes(frame(1));
    in.writeInt(5).writeByte(1); // the start of the next frame: its rest is not read while the gate is closed
    open = false;
    ch.writeInbound(in);
    ch.advanceTimeBy(10, TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
    assertTrue(errors.isEmpty(), "timed out while the replica was not reading: " + errors);
    open = true;
    decoder.resume(ch.pipeline().context(decoder));
    assertEquals(1, firstByte(ch));
    ch.advanceTimeBy(1100, TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertEquals(1, errors.size(), "the clock runs again once the replica reads");
    ch.finishAndReleaseAll();
  }

  @Test
  void shouldRefuseAHugeLengthOnceAndDiscardEverythingAfterIt() {
    EmbeddedChannel ch = channel(1000);
    ByteBuf in = Unpooled.buffer().writeInt(Integer.MAX_VALUE);
    in.writeBytes(new byte[4096]);
    ch.writeInbound(in);
    ch.writeInbound(frame(1));
    assertEquals(1, errors.size());
    FrameException e = assertInstanceOf(FrameException.class, errors.get(0));
    assertEquals(FrameException.Kind.TOO_LARGE, e.kind());
    assertNull(ch.readInbound());
    assertEquals(0, decoder.bufferedBytes(), "nothing of what was announced is buffered");
    ch.advanceTimeBy(5, TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
    assertEquals(1, errors.size(), "no frame timeout after the refusal");
    assertFalse(ch.finishAndReleaseAll());
  }

  @Test
  void shouldRefuseANegativeLengthAsMalformed() {
    EmbeddedChannel ch = channel(0);
    ch.writeInbound(Unpooled.buffer().writeInt(-1));
    FrameException e = assertInstanceOf(FrameException.class, errors.get(0));
    assertEquals(FrameException.Kind.MALFORMED, e.kind());
    ch.finishAndReleaseAll();
  }

  /** A channel whose decoder shares memory; errors go to sink. */
  private static EmbeddedChannel sharing(FrameMemory memory, List<Throwable> sink) {
    ClientFrameDecoder d = new ClientFrameDecoder(1 << 20, 0, () -> true, memory);
    return new EmbeddedChannel(d, new ChannelInboundHandlerAdapter() {
      @Override
      public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        sink.add(cause);
      }
    });
  }

  /** The first bytes of a frame announcing length, with have bytes of its body. */
  private static ByteBuf started(int length, int have) {
    ByteBuf b = Unpooled.buffer();
    b.writeInt(length);
    b.writeZero(have);
    return b;
  }

  /**
   * max_frame_bytes_total: unfinished frames over all connections are bounded. Before, each connection
   * could hold up to max_frame_bytes of a frame it never finished, so max_connections of them held
   * max_connections times max_frame_bytes (40 GB with the defaults) until their frame timeouts.
   */
  @Test
  void shouldRefuseAConnectionWhoseUnfinishedFramePassesTheBoundOverAllConnections() {
    FrameMemory memory = new FrameMemory(100_000);
    List<Throwable> errorsA = new ArrayList<>();
    List<Throwable> errorsB = new ArrayList<>();
    List<Throwable> errorsC = new ArrayList<>();
    EmbeddedChannel a = sharing(memory, errorsA);
    EmbeddedChannel b = sharing(memory, errorsB);
    EmbeddedChannel c = sharing(memory, errorsC);
    a.writeInbound(started(1 << 20, 80_000));
    assertEquals(80_004 - FrameMemory.FREE_BYTES, memory.held(), "beyond its free share, a reserves what it holds");
    assertTrue(errorsA.isEmpty(), errorsA.toString());
    // Small requests stay within each connection's free share: never refused, whatever the others hold.
    c.writeInbound(frame(1, 2, 3));
    assertEquals(1, firstByte(c));
    b.writeInbound(started(1 << 20, 30_000));
    assertEquals(1, errorsB.size(), "b's frame passed the bound and was not refused");
    assertInstanceOf(ClientFrameDecoder.FrameMemoryException.class, errorsB.get(0));
    assertEquals(80_004 - FrameMemory.FREE_BYTES, memory.held(), "b keeps nothing reserved");
    // a completes its frame: its bytes go on and its reservation is given back.
    a.writeInbound(Unpooled.wrappedBuffer(new byte[(1 << 20) - 80_000]));
    ByteBuf done = a.readInbound();
    assertEquals(1 << 20, done.readableBytes());
    done.release();
    assertEquals(0, memory.held());
    // And a closed connection gives back what it held.
    EmbeddedChannel d = sharing(memory, new ArrayList<>());
    d.writeInbound(started(1 << 20, 50_000));
    assertTrue(memory.held() > 0);
    d.close();
    assertEquals(0, memory.held(), "a closed connection kept its reservation");
    for (EmbeddedChannel ch : new EmbeddedChannel[] {a, b, c}) {
      ch.finishAndReleaseAll();
    }
  }
}
