package io.choir.proto.wire;

import io.netty.buffer.ByteBuf;
import java.util.zip.CRC32C;

/**
 * DatagramHeader is the fixed binary header in front of every peer datagram (DESIGN.md, "Datagram"),
 * protocol version 2:
 *
 * <pre>
 *   0  magic            u32  'CHOR'
 *   4  protocol version u8   (2)
 *   5  message type     u8   (peer.proto MessageType)
 *   6  flags            u16  (bit 0: sealed with the cluster key; no other bit is defined)
 *   8  cluster id       u64
 *  16  view             u64
 *  24  sender           u32  (replica id)
 *  28  epoch            u32  (the sender's start number, persisted before its first send)
 *  32  counter          u48  (the sender's datagram number within the epoch)
 *  38  key id           u8   (the cluster key that sealed it; 0 when not sealed)
 *  39  reserved         u8   (0)
 *  40  checksum         u32  (CRC32C of bytes 0..39 and 44..end)
 *  44  body ...              (sealed: the AES-GCM ciphertext of the body and its 16-byte tag)
 * </pre>
 *
 * A fixed header lets a receiver drop datagrams of another cluster, an older view or an unknown type
 * without parsing the body. The checksum covers every other byte of the datagram, so that a corrupted
 * datagram is dropped before anything of it is interpreted; only the magic and the version are read
 * first, because they say where the checksum is. Sender, epoch and counter are a sealed datagram's
 * nonce (see the server's DatagramCodec) and bytes 0..39 its associated data.
 *
 * <p>Version 1 (28 bytes: everything up to the sender, no checksum) is not accepted: a replica of
 * version 1 and one of version 2 drop each other's datagrams as bad_version.
 */
public record DatagramHeader(int protocolVersion, int messageType, int flags, long clusterId, long view,
    int sender, long epoch, long counter, int keyId) {
  public static final int MAGIC = 0x43484f52; // "CHOR"
  public static final int PROTOCOL_VERSION = 2;
  public static final int SIZE = 44;
  /** Flag bit 0: the body is sealed (AES-GCM) with the key named by keyId. */
  public static final int FLAG_SEALED = 1;
  /** Offset of the checksum, which is not part of the bytes it covers. */
  public static final int CHECKSUM_OFFSET = 40;
  /** The header bytes a seal authenticates: everything before the checksum. */
  public static final int AUTHENTICATED_BYTES = CHECKSUM_OFFSET;
  /** Offset of the epoch: epoch and counter are contiguous, the nonce's last 10 bytes. */
  public static final int EPOCH_OFFSET = 28;
  /** Largest counter (u48). */
  public static final long MAX_COUNTER = (1L << 48) - 1;
  /** Largest epoch (u32). */
  public static final long MAX_EPOCH = 0xffff_ffffL;

  public DatagramHeader {
    if (epoch < 0 || epoch > MAX_EPOCH || counter < 0 || counter > MAX_COUNTER || keyId < 0 || keyId > 255) {
      throw new IllegalArgumentException("header field out of range: epoch " + epoch + ", counter " + counter
          + ", key id " + keyId);
    }
  }

  /** A header without epoch, counter or key (tests and tools that build a datagram by hand). */
  public DatagramHeader(int protocolVersion, int messageType, int flags, long clusterId, long view, int sender) {
    this(protocolVersion, messageType, flags, clusterId, view, sender, 0, 0, 0);
  }

  /** True when flag bit 0 says the body is sealed. */
  public boolean sealed() {
    return (flags & FLAG_SEALED) != 0;
  }

  /**
   * Writes this header at the writer index of out, with a zero checksum: the writer fills it in with
   * {@link #writeChecksum} once the body follows.
   */
  public void encode(ByteBuf out) {
    out.writeInt(MAGIC);
    out.writeByte(protocolVersion);
    out.writeByte(messageType);
    out.writeShort(flags);
    out.writeLong(clusterId);
    out.writeLong(view);
    out.writeInt(sender);
    out.writeInt((int) epoch);
    out.writeShort((int) (counter >>> 32));
    out.writeInt((int) counter);
    out.writeByte(keyId);
    out.writeByte(0);
    out.writeInt(0);
  }

  /** Writes this header into out[0..SIZE) with a zero checksum. */
  public void encode(byte[] out) {
    if (out.length < SIZE) {
      throw new IllegalArgumentException("a datagram is at least " + SIZE + " bytes");
    }
    putInt(out, 0, MAGIC);
    out[4] = (byte) protocolVersion;
    out[5] = (byte) messageType;
    out[6] = (byte) (flags >>> 8);
    out[7] = (byte) flags;
    putLong(out, 8, clusterId);
    putLong(out, 16, view);
    putInt(out, 24, sender);
    putInt(out, 28, (int) epoch);
    out[32] = (byte) (counter >>> 40);
    out[33] = (byte) (counter >>> 32);
    putInt(out, 34, (int) counter);
    out[38] = (byte) keyId;
    out[39] = 0;
    putInt(out, CHECKSUM_OFFSET, 0);
  }

  /**
   * Reads a header from in (advancing the reader index past it), or returns null when in is too short
   * or does not start with the magic number; the caller drops and counts such datagrams. It reads the
   * fields only: the caller checks the version and then the checksum ({@link #checksumMatches}).
   */
  public static DatagramHeader decode(ByteBuf in) {
    if (in.readableBytes() < SIZE || in.getInt(in.readerIndex()) != MAGIC) {
      return null;
    }
    byte[] b = new byte[SIZE];
    in.readBytes(b);
    return decode(b, 0, SIZE);
  }

  /** Reads the header at the start of datagram[0..length), or null when too short or another magic. */
  public static DatagramHeader decode(byte[] datagram, int length) {
    return decode(datagram, 0, length);
  }

  private static DatagramHeader decode(byte[] d, int from, int length) {
    if (length < SIZE || getInt(d, from) != MAGIC) {
      return null;
    }
    int version = d[from + 4] & 0xff;
    int type = d[from + 5] & 0xff;
    int flags = ((d[from + 6] & 0xff) << 8) | (d[from + 7] & 0xff);
    long clusterId = getLong(d, from + 8);
    long view = getLong(d, from + 16);
    int sender = getInt(d, from + 24);
    long epoch = getInt(d, from + 28) & 0xffff_ffffL;
    long counter = ((long) (d[from + 32] & 0xff) << 40) | ((long) (d[from + 33] & 0xff) << 32)
        | (getInt(d, from + 34) & 0xffff_ffffL);
    int keyId = d[from + 38] & 0xff;
    return new DatagramHeader(version, type, flags, clusterId, view, sender, epoch, counter, keyId);
  }

  /** The reserved byte of datagram (must be 0). */
  public static int reserved(byte[] datagram) {
    return datagram[39] & 0xff;
  }

  /** CRC32C of datagram[0..length) without the checksum field. */
  public static int checksum(byte[] datagram, int length) {
    CRC32C crc = new CRC32C();
    crc.update(datagram, 0, CHECKSUM_OFFSET);
    crc.update(datagram, SIZE, length - SIZE);
    return (int) crc.getValue();
  }

  /** Fills in the checksum of datagram[0..length) (header and body written). */
  public static void writeChecksum(byte[] datagram, int length) {
    putInt(datagram, CHECKSUM_OFFSET, checksum(datagram, length));
  }

  /** True when the checksum field of datagram[0..length) matches its bytes (length at least SIZE). */
  public static boolean checksumMatches(byte[] datagram, int length) {
    return length >= SIZE && getInt(datagram, CHECKSUM_OFFSET) == checksum(datagram, length);
  }

  private static void putInt(byte[] b, int at, int v) {
    b[at] = (byte) (v >>> 24);
    b[at + 1] = (byte) (v >>> 16);
    b[at + 2] = (byte) (v >>> 8);
    b[at + 3] = (byte) v;
  }

  private static void putLong(byte[] b, int at, long v) {
    putInt(b, at, (int) (v >>> 32));
    putInt(b, at + 4, (int) v);
  }

  private static int getInt(byte[] b, int at) {
    return ((b[at] & 0xff) << 24) | ((b[at + 1] & 0xff) << 16) | ((b[at + 2] & 0xff) << 8) | (b[at + 3] & 0xff);
  }

  private static long getLong(byte[] b, int at) {
    return ((long) getInt(b, at) << 32) | (getInt(b, at + 4) & 0xffff_ffffL);
  }
}
