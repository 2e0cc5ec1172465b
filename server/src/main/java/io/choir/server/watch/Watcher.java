package io.choir.server.watch;

import com.google.protobuf.ByteString;

/**
 * Watcher is one watch's state in {@link WatchHub} (under the hub's lock): what it watches, where it
 * is, and the bytes it has sent that its connection has not taken yet.
 *
 * <p>Live: it has been sent (or had no match in) every event of the history, so the hub hands it each
 * new change as it is applied. Behind: its buffer was full; it waits for its connection to drain and
 * then catches up from the history, from nextSeq.
 */
final class Watcher {
  final long connectionId;
  final long requestId;
  final ByteString key;
  final boolean prefix;
  final boolean prevValue;
  final WatchOutput output;
  /** The lowest revision it may still be sent: its start, then the last sent + 1. */
  long nextRevision;
  /** Behind only: the seq of the first history event it has not looked at. */
  long nextSeq;
  boolean live;
  boolean closed;
  /** Bytes sent and not yet taken by the connection. */
  long unwritten;

  Watcher(long connectionId, long requestId, ByteString key, boolean prefix, boolean prevValue, WatchOutput output,
      long nextRevision) {
    this.connectionId = connectionId;
    this.requestId = requestId;
    this.key = key;
    this.prefix = prefix;
    this.prevValue = prevValue;
    this.output = output;
    this.nextRevision = nextRevision;
  }

  boolean matches(ByteString changed) {
    return prefix ? changed.startsWith(key) : changed.equals(key);
  }

  /** What it watches, for logs and errors. */
  String describe() {
    return (prefix ? "prefix " : "key ") + key.toStringUtf8() + " (request " + requestId + ", connection "
        + connectionId + ")";
  }
}
