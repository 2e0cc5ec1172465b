package io.choir.proto.wire;

import io.netty.buffer.ByteBuf;

/**
 * DatagramHeader is the fixed binary header in front of every peer datagram (DESIGN.md, "Datagram"):
 *
 * <pre>
 *   0  magic            u32  'CHOR'
 *   4  protocol version u8
 *   5  message type     u8   (peer.proto MessageType)
 *   6  flags            u16  (bit 0: sealed with the cluster key)
 *   8  cluster id       u64
 *  16  view             u64
 *  24  sender           u32  (replica id)
 *  28  body ...
 * </pre>
 *
 * A fixed header lets a receiver drop datagrams of another cluster, an older view or an unknown type
 * without parsing the body.
 */
public record DatagramHeader(int protocolVersion, int messageType, int flags, long clusterId, long view, int sender) {
  public static final int MAGIC = 0x43484f52; // "CHOR"
  public static final int PROTOCOL_VERSION = 1;
  public static final int SIZE = 28;

  /** Writes this header at the writer index of out. */
  public void encode(ByteBuf out) {
    out.writeInt(MAGIC);
    out.writeByte(protocolVersion);
    out.writeByte(messageType);
    out.writeShort(flags);
    out.writeLong(clusterId);
    out.writeLong(view);
    out.writeInt(sender);
  }

  /**
   * Reads a header from in (advancing the reader index), or returns null when in is too short or does
   * not start with the magic number; the caller drops and counts such datagrams.
   */
  public static DatagramHeader decode(ByteBuf in) {
    if (in.readableBytes() < SIZE || in.getInt(in.readerIndex()) != MAGIC) {
      return null;
    }
    in.skipBytes(4);
    int version = in.readUnsignedByte();
    int type = in.readUnsignedByte();
    int flags = in.readUnsignedShort();
    long clusterId = in.readLong();
    long view = in.readLong();
    int sender = in.readInt();
    return new DatagramHeader(version, type, flags, clusterId, view, sender);
  }
}
