package io.choir.server.net;

import io.choir.proto.wire.FrameDecoder;
import io.choir.proto.wire.FrameException;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * ClientFrameDecoder splits a client connection's bytes into frames (a 4-byte big-endian length, then
 * that many bytes, as {@link FrameDecoder}) with two things a hostile client needs and the shared decoder
 * does not have:
 *
 * <ul>
 *   <li>A gate: it emits a frame only while {@code gate} says the connection may take a request (under
 *       its in-flight and reply-byte bounds, intake open). Closed, the frames stay undecoded in the
 *       buffer, so nothing of that connection is executed, and {@link #resume} decodes them when the
 *       gate opens. Unlike Netty's ByteToMessageDecoder it never asks the socket for more bytes on its
 *       own when autoRead is off, so a paused connection holds at most what one socket read brought plus
 *       one partial frame (at most max_frame_bytes).
 *   <li>A frame timeout (slowloris): a frame that has started and is not complete within frameTimeoutMs
 *       raises {@link FrameTimeoutException}; the handler closes the connection and counts it. While the
 *       gate is closed the replica does not read the socket, so the clock stops (that wait is the
 *       replica's doing, not the client's) and restarts when decoding resumes.
 *   <li>A share of a replica-wide bound ({@link FrameMemory}, max_frame_bytes_total): what it holds
 *       beyond {@link FrameMemory#FREE_BYTES} after decoding it reserves there; when the bound is
 *       reached it raises {@link FrameMemoryException} and holds nothing more.
 * </ul>
 *
 * A length above maxFrameBytes or below zero raises a {@link FrameException} once and everything after it
 * is discarded (the stream is no longer aligned), exactly as FrameDecoder does. One instance per channel.
 */
final class ClientFrameDecoder extends ChannelInboundHandlerAdapter {
  /** Raised (through exceptionCaught) when a started frame does not complete within the frame timeout. */
  static final class FrameTimeoutException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    FrameTimeoutException(String message) {
      super(message, null, false, false);
    }
  }

  /** Raised (through exceptionCaught) when the connection's buffered frame would pass max_frame_bytes_total. */
  static final class FrameMemoryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    FrameMemoryException(String message) {
      super(message, null, false, false);
    }
  }

  private final int maxFrameBytes;
  private final FrameMemory memory;
  /** Bytes reserved in memory for what this connection holds beyond FrameMemory.FREE_BYTES. */
  private long reserved;
  private final long frameTimeoutNs;
  private final BooleanSupplier gate;
  private ByteBuf cumulation;
  private boolean failed;
  private boolean decoding;
  /** When the oldest undecoded byte of an incomplete frame arrived (the event loop's ticker), or -1. */
  private long partialSinceNs = -1;
  private ScheduledFuture<?> timer;

  /**
   * @param frameTimeoutMs how long a started frame may take to complete; 0 for no limit
   * @param gate whether the connection may take one more request now (called on the event loop)
   */
  ClientFrameDecoder(int maxFrameBytes, int frameTimeoutMs, BooleanSupplier gate) {
    this(maxFrameBytes, frameTimeoutMs, gate, null);
  }

  /** @param memory the replica-wide bound on buffered frame bytes, or null for none */
  ClientFrameDecoder(int maxFrameBytes, int frameTimeoutMs, BooleanSupplier gate, FrameMemory memory) {
    if (maxFrameBytes <= 0) {
      throw new IllegalArgumentException("maxFrameBytes must be positive: " + maxFrameBytes);
    }
    if (frameTimeoutMs < 0) {
      throw new IllegalArgumentException("frameTimeoutMs must not be negative: " + frameTimeoutMs);
    }
    this.maxFrameBytes = maxFrameBytes;
    this.frameTimeoutNs = TimeUnit.MILLISECONDS.toNanos(frameTimeoutMs);
    this.gate = gate;
    this.memory = memory;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf in)) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (failed) {
      in.release();
      return;
    }
    cumulation = cumulation == null ? in : ByteToMessageDecoder.MERGE_CUMULATOR.cumulate(ctx.alloc(), cumulation, in);
    decode(ctx);
  }

  /** Decodes the frames held back while the gate was closed (the gate just opened); event loop only. */
  void resume(ChannelHandlerContext ctx) {
    if (!decoding && cumulation != null && !failed) {
      decode(ctx);
    }
  }

  /** Undecoded bytes held (tests and status). */
  int bufferedBytes() {
    return cumulation == null ? 0 : cumulation.readableBytes();
  }

  private void decode(ChannelHandlerContext ctx) {
    decoding = true; // a handler downstream may call resume() while a frame of ours is being handled
    boolean emitted = false;
    boolean gated = false;
    try {
      while (cumulation != null && cumulation.readableBytes() >= FrameDecoder.LENGTH_BYTES) {
        int length = cumulation.getInt(cumulation.readerIndex());
        if (length < 0) {
          fail(ctx, new FrameException(FrameException.Kind.MALFORMED, "negative frame length " + length));
          return;
        }
        if (length > maxFrameBytes) {
          fail(ctx, new FrameException(FrameException.Kind.TOO_LARGE,
              "frame of " + length + " bytes exceeds max_frame_bytes " + maxFrameBytes));
          return;
        }
        if (cumulation.readableBytes() < FrameDecoder.LENGTH_BYTES + length) {
          break;
        }
        if (!gate.getAsBoolean()) {
          gated = true;
          break;
        }
        cumulation.skipBytes(FrameDecoder.LENGTH_BYTES);
        ByteBuf frame = cumulation.readRetainedSlice(length);
        emitted = true;
        ctx.fireChannelRead(frame);
        if (failed || cumulation == null) {
          return;
        }
      }
    } finally {
      decoding = false;
    }
    if (cumulation != null && !cumulation.isReadable()) {
      cumulation.release();
      cumulation = null;
    } else if (cumulation != null && cumulation.readerIndex() > 0 && emitted) {
      cumulation.discardSomeReadBytes();
    }
    if (!account(ctx)) {
      return;
    }
    trackPartialFrame(ctx, emitted, gated);
  }

  /**
   * Starts, restarts or stops the frame clock. A frame that completed restarts it for the bytes after it
   * (they arrived in this read or later); whole frames held by the gate stop it.
   */
  private void trackPartialFrame(ChannelHandlerContext ctx, boolean emitted, boolean gated) {
    if (frameTimeoutNs == 0) {
      return;
    }
    // Closed, the gate also keeps the socket unread (autoRead off): the rest of the frame cannot come.
    if (cumulation == null || gated || !gate.getAsBoolean()) {
      partialSinceNs = -1;
      return;
    }
    if (emitted || partialSinceNs < 0) {
      partialSinceNs = ctx.executor().ticker().nanoTime(); // the event loop's clock (tests advance it)
    }
    if (timer == null) {
      schedule(ctx, frameTimeoutNs);
    }
  }

  private void schedule(ChannelHandlerContext ctx, long delayNs) {
    timer = ctx.executor().schedule(() -> check(ctx), delayNs, TimeUnit.NANOSECONDS);
  }

  private void check(ChannelHandlerContext ctx) {
    timer = null;
    if (partialSinceNs < 0 || failed || !ctx.channel().isActive()) {
      return;
    }
    if (!gate.getAsBoolean()) {
      partialSinceNs = -1; // paused by the replica since: the clock restarts when decoding resumes
      return;
    }
    long waitedNs = ctx.executor().ticker().nanoTime() - partialSinceNs;
    if (waitedNs < frameTimeoutNs) {
      schedule(ctx, frameTimeoutNs - waitedNs);
      return;
    }
    int have = bufferedBytes();
    failed = true;
    releaseCumulation();
    ctx.fireExceptionCaught(new FrameTimeoutException("a frame was not completed within client_frame_timeout_ms "
        + TimeUnit.NANOSECONDS.toMillis(frameTimeoutNs) + " (" + have + " bytes of it received)"));
  }

  /**
   * Reserves (or gives back) what this connection now holds beyond FrameMemory.FREE_BYTES; false, and
   * the connection failed, when the replica-wide bound has no room for it.
   */
  private boolean account(ChannelHandlerContext ctx) {
    if (memory == null) {
      return true;
    }
    long want = Math.max(0, bufferedBytes() - FrameMemory.FREE_BYTES);
    if (want > reserved) {
      if (!memory.reserve(want - reserved)) {
        int have = bufferedBytes();
        failed = true;
        releaseCumulation();
        ctx.fireExceptionCaught(new FrameMemoryException("the replica holds max_frame_bytes_total " + memory.limit()
            + " of unfinished frames already (" + have + " bytes of this connection's); try again"));
        return false;
      }
    } else if (want < reserved) {
      memory.release(reserved - want);
    }
    reserved = want;
    return true;
  }

  private void fail(ChannelHandlerContext ctx, FrameException e) {
    failed = true;
    releaseCumulation();
    ctx.fireExceptionCaught(e);
  }

  private void releaseCumulation() {
    partialSinceNs = -1;
    if (cumulation != null) {
      cumulation.release();
      cumulation = null;
    }
    if (reserved > 0) {
      memory.release(reserved);
      reserved = 0;
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    releaseCumulation();
    ctx.fireChannelInactive();
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    if (timer != null) {
      timer.cancel(false);
      timer = null;
    }
    releaseCumulation();
  }
}
