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
