package io.choir.server.storage;

import java.util.Arrays;
import java.util.Comparator;

/**
 * Bytes holds the byte encodings shared by the storage implementations and the state machine: 8-byte
 * big-endian numbers (so that op-number keys sort in op order under RocksDB's bytewise comparator)
 * and the unsigned lexicographic order that comparator uses.
 */
public final class Bytes {
  /** Unsigned lexicographic order, the order of RocksDB's default BytewiseComparator. */
  public static final Comparator<byte[]> UNSIGNED = Arrays::compareUnsigned;

  private Bytes() {}

  /** Encodes value as 8 bytes, big-endian. */
  public static byte[] longToBytes(long value) {
    byte[] out = new byte[Long.BYTES];
    putLong(out, 0, value);
    return out;
  }

  /** Writes value as 8 big-endian bytes into out at offset. */
  public static void putLong(byte[] out, int offset, long value) {
    for (int i = Long.BYTES - 1; i >= 0; i--) {
      out[offset + i] = (byte) value;
      value >>>= 8;
    }
  }

  /** Decodes 8 big-endian bytes of in at offset. */
  public static long getLong(byte[] in, int offset) {
    if (in.length - offset < Long.BYTES) {
      throw new StorageException(
          "corrupt record: need 8 bytes at offset " + offset + ", have " + in.length);
    }
    long value = 0;
    for (int i = 0; i < Long.BYTES; i++) {
      value = (value << 8) | (in[offset + i] & 0xFF);
    }
    return value;
  }

  /** Decodes an 8-byte big-endian value; throws StorageException when it is not 8 bytes long. */
  public static long bytesToLong(byte[] in) {
    if (in.length != Long.BYTES) {
      throw new StorageException("corrupt record: expected 8 bytes, got " + in.length);
    }
    return getLong(in, 0);
  }

  /** Returns a new array: prefix followed by suffix. */
  public static byte[] concat(byte[] prefix, byte[] suffix) {
    byte[] out = Arrays.copyOf(prefix, prefix.length + suffix.length);
    System.arraycopy(suffix, 0, out, prefix.length, suffix.length);
    return out;
  }

  /**
   * Returns the smallest key above every key that starts with prefix (the exclusive end of a prefix
   * range), or null when there is none (prefix empty or all 0xFF bytes).
   */
  public static byte[] prefixEnd(byte[] prefix) {
    for (int i = prefix.length - 1; i >= 0; i--) {
      if (prefix[i] != (byte) 0xFF) {
        byte[] end = Arrays.copyOf(prefix, i + 1);
        end[i]++;
        return end;
      }
    }
    return null;
  }

  /** Returns the smallest key above key in unsigned byte order: key followed by one zero byte. */
  public static byte[] successor(byte[] key) {
    return Arrays.copyOf(key, key.length + 1);
  }

  /** True when array starts with prefix. */
  public static boolean startsWith(byte[] array, byte[] prefix) {
    return array.length >= prefix.length
        && Arrays.equals(array, 0, prefix.length, prefix, 0, prefix.length);
  }
}
