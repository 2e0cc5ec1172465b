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
}
