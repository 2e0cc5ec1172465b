package io.choir.proto.wire;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.MessageToMessageDecoder;
import java.io.IOException;
import java.util.List;

/**
 * ProtobufFrameDecoder parses each frame body (from {@link FrameDecoder}) as one message of type T. A
 * body that does not parse raises {@link FrameException} of kind MALFORMED.
 */
@ChannelHandler.Sharable
public final class ProtobufFrameDecoder<T extends MessageLite> extends MessageToMessageDecoder<ByteBuf> {
  private final Parser<T> parser;

  public ProtobufFrameDecoder(Parser<T> parser) {
    this.parser = parser;
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf body, List<Object> out) {
    try (ByteBufInputStream stream = new ByteBufInputStream(body)) {
      out.add(parser.parseFrom(stream));
    } catch (InvalidProtocolBufferException e) {
      throw new FrameException(FrameException.Kind.MALFORMED, "frame does not parse: " + e.getMessage(), e);
    } catch (IOException e) {
      throw new FrameException(FrameException.Kind.MALFORMED, "frame unreadable: " + e.getMessage(), e);
    }
  }
}
