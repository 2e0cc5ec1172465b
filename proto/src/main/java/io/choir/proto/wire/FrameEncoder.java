package io.choir.proto.wire;

import com.google.protobuf.MessageLite;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.MessageToByteEncoder;
import java.io.IOException;

/** FrameEncoder writes one protobuf message as a 4-byte big-endian length followed by its bytes. */
@ChannelHandler.Sharable
public final class FrameEncoder extends MessageToByteEncoder<MessageLite> {
  /**
   * Allocates exactly the frame's size. The default (256 bytes, then grown) rounds a large frame up to
   * the next power of two: a reply of 1 MiB and a few bytes held 2 MiB of direct memory until written,
   * which halved what a replica's bound on reply bytes in flight protects.
   */
  @Override
  protected ByteBuf allocateBuffer(ChannelHandlerContext ctx, MessageLite msg, boolean preferDirect) {
    int size = FrameDecoder.LENGTH_BYTES + msg.getSerializedSize();
    return preferDirect ? ctx.alloc().ioBuffer(size) : ctx.alloc().heapBuffer(size);
  }

  @Override
  protected void encode(ChannelHandlerContext ctx, MessageLite msg, ByteBuf out) throws IOException {
    int size = msg.getSerializedSize();
    out.ensureWritable(FrameDecoder.LENGTH_BYTES + size);
    out.writeInt(size);
    try (ByteBufOutputStream stream = new ByteBufOutputStream(out)) {
      msg.writeTo(stream);
    }
  }
}
