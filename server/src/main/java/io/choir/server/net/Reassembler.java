package io.choir.server.net;

import com.google.protobuf.ByteString;
import io.choir.proto.Fragment;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reassembler rebuilds a message that the sender split into FRAGMENT datagrams (an entry bigger than
 * max_datagram_bytes). Memory is bounded: at most maxMessages partial messages and maxBytes buffered in
 * total; the oldest partial message is dropped to make room, and a message whose announced size exceeds
 * maxMessageBytes is refused. A dropped message is repaired like any lost datagram (NACK). Not
 * thread-safe: one transport thread owns it.
 */
final class Reassembler {
  private record Key(int sender, long view, long firstOp, int totalBytes) {}

  private static final class Partial {
    final byte[] data;
    final boolean[] have;
    int received;

    Partial(int totalBytes, int count) {
      data = new byte[totalBytes];
      have = new boolean[count];
    }
  }

  private final int maxMessages;
  private final long maxBytes;
  private final int maxMessageBytes;
  private final LinkedHashMap<Key, Partial> partials = new LinkedHashMap<>();
  private long bufferedBytes;
  private long dropped;

  Reassembler(int maxMessages, long maxBytes, int maxMessageBytes) {
    this.maxMessages = maxMessages;
    this.maxBytes = maxBytes;
    this.maxMessageBytes = maxMessageBytes;
  }

  /**
   * Adds one fragment; returns the whole message when this fragment completes it, else null. Returns
   * null (and counts) for an inconsistent fragment.
   */
  byte[] add(int sender, long view, Fragment f) {
    int total = f.getTotalBytes();
    int count = f.getCount();
    int index = f.getIndex();
    if (total <= 0 || total > maxMessageBytes || count <= 0 || count > total || index < 0 || index >= count) {
      dropped++;
      return null;
    }
    int chunk = (total + count - 1) / count;
    int offset = index * chunk;
    int expectedLength = Math.min(chunk, total - offset);
    if (offset >= total || f.getData().size() != expectedLength) {
      dropped++;
      return null;
    }
    Key key = new Key(sender, view, f.getFirstOp(), total);
    Partial p = partials.get(key);
    if (p == null) {
      if (p == null && (partials.size() >= maxMessages || bufferedBytes + total > maxBytes)) {
        evictUntilRoomFor(total);
      }
      p = new Partial(total, count);
      partials.put(key, p);
      bufferedBytes += total;
    }
    if (p.have.length != count) {
      dropped++;
      return null;
    }
    if (!p.have[index]) {
      f.getData().copyTo(p.data, offset);
      p.have[index] = true;
      p.received++;
    }
    if (p.received == count) {
      partials.remove(key);
      bufferedBytes -= total;
      return p.data;
    }
    return null;
  }

  private void evictUntilRoomFor(int total) {
    Iterator<Map.Entry<Key, Partial>> it = partials.entrySet().iterator();
    while (it.hasNext() && (partials.size() >= maxMessages || bufferedBytes + total > maxBytes)) {
      Map.Entry<Key, Partial> oldest = it.next();
      bufferedBytes -= oldest.getKey().totalBytes();
      it.remove();
      dropped++;
    }
  }

  /** Partial messages dropped or fragments refused so far. */
  long dropped() {
    return dropped;
  }

  int pending() {
    return partials.size();
  }

  /**
   * Splits body (the serialized message of a PREPARE starting at firstOp) into fragments of at most
   * chunkBytes data each.
   */
  static Fragment[] split(long firstOp, byte[] body, int chunkBytes) {
    int count = (body.length + chunkBytes - 1) / chunkBytes;
    int chunk = (body.length + count - 1) / count;
    Fragment[] out = new Fragment[count];
    for (int i = 0; i < count; i++) {
      int offset = i * chunk;
      int len = Math.min(chunk, body.length - offset);
      out[i] = Fragment.newBuilder().setFirstOp(firstOp).setIndex(i).setCount(count)
          .setTotalBytes(body.length)
          .setData(ByteString.copyFrom(body, offset, len)).build();
    }
    return out;
  }
}
