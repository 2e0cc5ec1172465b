package io.choir.server.net;

import io.choir.server.security.PeerHandshake;
import io.choir.server.security.SealedRecords;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.util.ReferenceCountUtil;
import java.util.List;

/**
 * SealedRecordCodec is the Netty side of one connection's {@link SealedRecords}, once its {@link
 * PeerHandshake} is done: {@link #opener()} turns the records that arrive into the plaintext bytes
 * the frame decoder reads, and {@link #sealer()} seals every ByteBuf written (a frame above a
 * record's maximum spans several records). A record that does not open closes the connection,
 * counted bad_frame; nothing of it reaches the handlers above.
 *
 * <p>Memory: the opener holds at most one record ({@link SealedRecords#MAX_CIPHERTEXT_BYTES}) beyond
 * what the handlers above take; a header announcing more is refused before its body is read.
 */
final class SealedRecordCodec {
  private final PeerTcpAuth auth;
  private final boolean connector;
  private SealedRecords.Sealer sealer;
  private SealedRecords.Opener opener;
  private boolean broken;

  SealedRecordCodec(PeerTcpAuth auth, boolean connector) {
    this.auth = auth;
    this.connector = connector;
  }

  /** The keys, from the finished handshake (on the channel's loop, before any record). */
  void start(PeerHandshake.SessionKeys keys) {
    this.sealer = keys.sealer();
    this.opener = keys.opener();
  }

  ByteToMessageDecoder opener() {
    return new Opener();
  }

  ChannelDuplexHandler sealer() {
    return new Sealer();
  }

  private void refuse(ChannelHandlerContext ctx, String why) {
    if (broken) {
      return;
    }
    broken = true;
    if (connector) {
      auth.connectFailed("bad_frame", ctx.channel().remoteAddress());
      ctx.fireExceptionCaught(new PeerTcpRefusedException("bad_frame", why));
    } else {
      auth.refused("bad_frame", ctx.channel().remoteAddress());
    }
    ctx.close();
  }

  private final class Opener extends ByteToMessageDecoder {
    /** One record's ciphertext, copied out of the socket's (direct) buffer. */
    private final byte[] scratch = new byte[SealedRecords.MAX_CIPHERTEXT_BYTES];

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
      if (broken) {
        in.skipBytes(in.readableBytes());
        return;
      }
      if (opener == null) {
        in.skipBytes(in.readableBytes());
        refuse(ctx, "a record before the handshake finished");
        return;
      }
      while (in.readableBytes() >= SealedRecords.LENGTH_BYTES) {
        int header = in.getInt(in.readerIndex());
        int length;
        try {
          length = opener.ciphertextBytes(header);
        } catch (SealedRecords.BadRecordException e) {
          in.skipBytes(in.readableBytes());
          refuse(ctx, e.getMessage());
          return;
        }
        if (in.readableBytes() < SealedRecords.LENGTH_BYTES + length) {
          return; // wait for the rest of the record
        }
        in.skipBytes(SealedRecords.LENGTH_BYTES);
        int plainBytes = length - SealedRecords.TAG_BYTES;
        // Arrays, not ByteBuffers: the JDK's AES-GCM intrinsics work on arrays (a direct buffer
        // took its slow path, at a third of the speed).
        in.readBytes(scratch, 0, length);
        ByteBuf plain = ctx.alloc().heapBuffer(plainBytes, plainBytes);
        try {
          opener.open(header, scratch, 0, plain.array(), plain.arrayOffset());
          plain.writerIndex(plainBytes);
        } catch (SealedRecords.BadRecordException e) {
          plain.release();
          in.skipBytes(in.readableBytes());
          refuse(ctx, e.getMessage());
          return;
        }
        out.add(plain);
      }
    }
  }

  private final class Sealer extends ChannelDuplexHandler {
    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      if (!(msg instanceof ByteBuf plain)) {
        // Never in the clear: whatever is not bytes to seal (a FileRegion, say) is refused.
        ReferenceCountUtil.release(msg);
        promise.setFailure(new IllegalArgumentException("only ByteBufs are sealed, not " + msg.getClass()));
        return;
      }
      if (sealer == null || broken) {
        ReferenceCountUtil.release(msg);
        promise.setFailure(new PeerTcpRefusedException("not_ready", "a write before the handshake finished"));
        return;
      }
      ByteBuf sealed = null;
      try {
        int n = plain.readableBytes();
        sealed = ctx.alloc().heapBuffer((int) SealedRecords.sealedBytes(n));
        byte[] in;
        int inOff;
        if (plain.hasArray()) {
          in = plain.array();
          inOff = plain.arrayOffset() + plain.readerIndex();
        } else {
          in = new byte[n]; // a direct buffer (FrameEncoder's): one copy to reach the fast path
          plain.getBytes(plain.readerIndex(), in);
          inOff = 0;
        }
        byte[] out = sealed.array();
        int outOff = sealed.arrayOffset();
        int at = 0;
        int written = 0;
        while (at < n) {
          int chunk = Math.min(SealedRecords.MAX_PLAINTEXT_BYTES, n - at);
          sealer.seal(in, inOff + at, chunk, out, outOff + written);
          written += SealedRecords.LENGTH_BYTES + chunk + SealedRecords.TAG_BYTES;
          at += chunk;
        }
        sealed.writerIndex(written);
      } catch (RuntimeException e) {
        plain.release();
        if (sealed != null) {
          sealed.release();
        }
        promise.setFailure(e);
        return;
      }
      plain.release();
      ctx.write(sealed, promise);
    }
  }
}
