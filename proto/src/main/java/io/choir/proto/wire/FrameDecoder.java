package io.choir.proto.wire;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.List;

/**
 * FrameDecoder splits a TCP byte stream into frames: a 4-byte big-endian length, then that many bytes.
 * It emits each frame body as a retained slice. A length above {@code maxFrameBytes} or below zero
 * raises a {@link FrameException} once; after that the decoder discards all further input, because the
 * stream is no longer aligned (the pipeline is expected to answer and close the connection).
 *
 * <p>The length is checked before any body byte is buffered, so an announced huge frame never makes
 * the decoder allocate more than the bytes that actually arrived (bounded by the socket's read).
 */
public final class FrameDecoder extends ByteToMessageDecoder {
  /** Size of the length prefix. */
  public static final int LENGTH_BYTES = 4;

  private final int maxFrameBytes;
  private boolean failed;

  public FrameDecoder(int maxFrameBytes) {
    if (maxFrameBytes <= 0) {
      throw new IllegalArgumentException("maxFrameBytes must be positive: " + maxFrameBytes);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    if (failed) {
      in.skipBytes(in.readableBytes());
      return;
    }
    while (in.readableBytes() >= LENGTH_BYTES) {
      int length = in.getInt(in.readerIndex());
      if (length < 0) {
        fail(in);
        throw new FrameException(FrameException.Kind.MALFORMED, "negative frame length " + length);
      }
      if (length > maxFrameBytes) {
        fail(in);
        throw new FrameException(
            FrameException.Kind.TOO_LARGE,
            "frame of " + length + " bytes exceeds max_frame_bytes " + maxFrameBytes);
      }
      if (in.readableBytes() < LENGTH_BYTES + length) {
        return;
      }
      in.skipBytes(LENGTH_BYTES);
      out.add(in.readRetainedSlice(length));
    }
  }

  private void fail(ByteBuf in) {
    failed = true;
    in.skipBytes(in.readableBytes());
  }
}
