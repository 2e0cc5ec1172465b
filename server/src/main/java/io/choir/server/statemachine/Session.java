package io.choir.server.statemachine;

import io.choir.proto.ClientRecord;
import io.choir.proto.SavedReply;
import java.util.TreeMap;

/**
 * Session is one row of the client table, with its saved replies: mutable, owned by the apply thread
 * (see {@link ClientSessions} for the rules and {@link ClientRows} for how it is stored).
 */
final class Session {
  final long clientId;
  long firstIncomplete;
  long lastOp;
  long lastActiveMs;
  long timeoutMs;
  /** Saved replies by request id, in unsigned order. */
  final TreeMap<Long, SavedReply> replies = new TreeMap<>(Long::compareUnsigned);

  Session(long clientId) {
    this.clientId = clientId;
  }

  /** The time (unsigned ms, saturating) after which the session expires: last activity + timeout. */
  long expiresAfterMs() {
    long sum = lastActiveMs + timeoutMs;
    return Long.compareUnsigned(sum, lastActiveMs) < 0 ? -1L : sum; // -1: the highest unsigned
  }

  ClientRecord header() {
    return ClientRecord.newBuilder()
        .setClientId(clientId)
        .setFirstIncomplete(firstIncomplete)
        .setLastOp(lastOp)
        .setLastActiveMs(lastActiveMs)
        .setTimeoutMs(timeoutMs)
        .build();
  }

  /** The self-contained record: the header with the saved replies in request id order. */
  ClientRecord record() {
    return header().toBuilder().addAllReplies(replies.values()).build();
  }
}
