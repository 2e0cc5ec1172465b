package io.choir.ycsb;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * RecordCodec stores a YCSB record (field name to bytes) as one Choir value: per field a varint name
 * length, the name in UTF-8, a varint value length and the value. One key per record, so a read, an
 * insert and an update of every field are one request each, as with etcd's and Redis's bindings.
 */
final class RecordCodec {
  private RecordCodec() {}

  static byte[] encode(Map<String, byte[]> fields) {
    int size = 5;
    for (Map.Entry<String, byte[]> f : fields.entrySet()) {
      size += 10 + f.getKey().length() * 3 + f.getValue().length;
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream(size);
    writeVarint(out, fields.size());
    for (Map.Entry<String, byte[]> f : fields.entrySet()) {
      byte[] name = f.getKey().getBytes(StandardCharsets.UTF_8);
      writeVarint(out, name.length);
      out.writeBytes(name);
      writeVarint(out, f.getValue().length);
      out.writeBytes(f.getValue());
    }
    return out.toByteArray();
  }

  /**
   * The fields of an encoded record, in stored order; only those named in wanted, or all when wanted is
   * null.
   *
   * @throws IllegalArgumentException when bytes is not a record this codec wrote
   */
  static Map<String, byte[]> decode(byte[] bytes, Set<String> wanted) {
    ByteBuffer in = ByteBuffer.wrap(bytes);
    int count = readLength(in);
    Map<String, byte[]> fields = new LinkedHashMap<>();
    for (int i = 0; i < count; i++) {
      byte[] name = new byte[readLength(in)];
      in.get(name);
      byte[] value = new byte[readLength(in)];
      in.get(value);
      String field = new String(name, StandardCharsets.UTF_8);
      if (wanted == null || wanted.contains(field)) {
        fields.put(field, value);
      }
    }
    if (in.hasRemaining()) {
      throw new IllegalArgumentException("not a YCSB record: " + in.remaining() + " bytes after its fields");
    }
    return fields;
  }

  private static void writeVarint(ByteArrayOutputStream out, int v) {
    while ((v & ~0x7F) != 0) {
      out.write((v & 0x7F) | 0x80);
      v >>>= 7;
    }
    out.write(v);
  }

  /**
   * A varint that must fit what remains of in (a damaged length fails here, not as an allocation; a
   * field count fits too, each field taking at least two bytes).
   */
  private static int readLength(ByteBuffer in) {
    int v = 0;
    for (int shift = 0; shift < 32; shift += 7) {
      if (!in.hasRemaining()) {
        throw new IllegalArgumentException("not a YCSB record: it ends inside a length");
      }
      byte b = in.get();
      v |= (b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        if (v < 0 || v > in.remaining()) {
          throw new IllegalArgumentException("not a YCSB record: length " + v + " past its end");
        }
        return v;
      }
    }
    throw new IllegalArgumentException("not a YCSB record: a length of more than 32 bits");
  }
}
