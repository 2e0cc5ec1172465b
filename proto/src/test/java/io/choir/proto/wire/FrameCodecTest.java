package io.choir.proto.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.Request;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Codecs tested on an EmbeddedChannel: no sockets (netty's ProtobufVarint32FrameDecoderTest style). */
class FrameCodecTest {
  private static EmbeddedChannel channel(int maxFrameBytes) {
    return new EmbeddedChannel(new FrameDecoder(maxFrameBytes),
        new ProtobufFrameDecoder<>(Request.parser()), new FrameEncoder());
  }

  private static Request request(long id) {
    return Request.newBuilder().setClientId(1).setRequestId(id)
        .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("k" + id))).build();
  }

  @Test
  void shouldRoundTripMessagesThroughEncoderAndDecoder() {
    EmbeddedChannel ch = channel(1024);
    ch.writeOutbound(request(1), request(2));
    ByteBuf a = ch.readOutbound();
    ByteBuf b = ch.readOutbound();
    ch.writeInbound(Unpooled.wrappedBuffer(a, b));
    assertEquals(request(1), ch.readInbound());
    assertEquals(request(2), ch.readInbound());
  }

  @Test
  void shouldReassembleAFrameSplitAcrossReadsByteByByte() {
    EmbeddedChannel ch = channel(1024);
    ch.writeOutbound(request(7));
    ByteBuf encoded = ch.readOutbound();
    while (encoded.isReadable()) {
      ch.writeInbound(encoded.readRetainedSlice(1));
    }
    encoded.release();
    assertEquals(request(7), ch.readInbound());
  }

  @Test
  void shouldRefuseAnAnnouncedFrameAboveTheLimitBeforeBufferingIt() {
    EmbeddedChannel ch = channel(100);
    ByteBuf in = Unpooled.buffer().writeInt(101).writeBytes(new byte[10]);
    FrameException e = assertThrows(FrameException.class, () -> ch.writeInbound(in));
    assertEquals(FrameException.Kind.TOO_LARGE, e.kind());
    // After a bad frame the stream is no longer aligned: everything after it is discarded.
    ch.writeInbound(Unpooled.buffer().writeInt(2).writeBytes(new byte[] {8, 1}));
    assertNull(ch.readInbound());
    assertFalse(ch.finish() && ch.readInbound() != null);
  }

  @Test
  void shouldRefuseANegativeLengthAsMalformed() {
    EmbeddedChannel ch = channel(100);
    FrameException e = assertThrows(FrameException.class,
        () -> ch.writeInbound(Unpooled.buffer().writeInt(-1)));
    assertEquals(FrameException.Kind.MALFORMED, e.kind());
  }

  @Test
  void shouldRefuseABodyThatIsNotAProtobufMessage() {
    EmbeddedChannel ch = channel(100);
    ByteBuf in = Unpooled.buffer().writeInt(3).writeBytes(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff});
    FrameException e = assertThrows(FrameException.class, () -> ch.writeInbound(in));
    assertEquals(FrameException.Kind.MALFORMED, e.kind());
  }

  @Test
  void shouldEncodeAndDecodeTheDatagramHeaderAndRejectForeignBytes() {
    DatagramHeader h = new DatagramHeader(DatagramHeader.PROTOCOL_VERSION, 1, 0, 0xabcdefL, 42, 3);
    ByteBuf buf = Unpooled.buffer();
    h.encode(buf);
    assertEquals(DatagramHeader.SIZE, buf.readableBytes());
    assertEquals(h, DatagramHeader.decode(buf));
    assertNull(DatagramHeader.decode(Unpooled.wrappedBuffer(new byte[DatagramHeader.SIZE])), "wrong magic");
    assertNull(DatagramHeader.decode(Unpooled.wrappedBuffer(new byte[5])), "too short");
  }

  @Test
  void shouldCarryEpochCounterAndKeyIdAndChecksumEveryByteButTheChecksumItself() {
    DatagramHeader h = new DatagramHeader(DatagramHeader.PROTOCOL_VERSION, 12, DatagramHeader.FLAG_SEALED,
        0x0102030405060708L, Long.MAX_VALUE, 255, DatagramHeader.MAX_EPOCH, DatagramHeader.MAX_COUNTER, 7);
    byte[] d = new byte[DatagramHeader.SIZE + 3];
    h.encode(d);
    d[DatagramHeader.SIZE] = 9;
    DatagramHeader.writeChecksum(d, d.length);
    assertEquals(h, DatagramHeader.decode(d, d.length));
    ByteBuf viaBuf = Unpooled.buffer();
    h.encode(viaBuf);
    byte[] fromBuf = new byte[DatagramHeader.SIZE];
    viaBuf.readBytes(fromBuf);
    assertArrayEquals(Arrays.copyOf(d, DatagramHeader.SIZE - 4), Arrays.copyOf(fromBuf,
        DatagramHeader.SIZE - 4), "the ByteBuf and byte[] encodings agree");
    assertTrue(DatagramHeader.checksumMatches(d, d.length));
    for (int i = 0; i < d.length; i++) {
      for (int bit = 0; bit < 8; bit++) {
        d[i] ^= (byte) (1 << bit);
        assertFalse(DatagramHeader.checksumMatches(d, d.length),
            "a flip of bit " + bit + " of byte " + i + " is caught");
        d[i] ^= (byte) (1 << bit);
      }
    }
    assertFalse(DatagramHeader.checksumMatches(d, d.length - 1), "truncation");
  }
}
