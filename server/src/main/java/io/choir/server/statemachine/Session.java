package io.choir.server.statemachine;

import io.choir.proto.ClientRecord;
import io.choir.proto.SavedReply;
import java.util.TreeMap;

/**
 * Session is one row of the client table, with its saved replies: mutable, owned by the apply thread
 * (see {@link ClientSessions} for the rules and {@link ClientRows} for how it is stored).
 */
final class Session {
  /**
   * The session's id: the op of the RegisterSession entry that opened it (stored as
   * ClientRecord.client_id; the client sends it as client_id on the session's requests).
   */
  final long id;
  long firstIncomplete;
  long lastOp;
  long lastActiveMs;
  long timeoutMs;
  /** Saved replies by request id, in unsigned order. */
  final TreeMap<Long, SavedReply> replies = new TreeMap<>(Long::compareUnsigned);

  Session(long id) {
    this.id = id;
  }

  /** The time (unsigned ms, saturating) after which the session expires: last activity + timeout. */
  long expiresAfterMs() {
    long sum = lastActiveMs + timeoutMs;
    return Long.compareUnsigned(sum, lastActiveMs) < 0 ? -1L : sum; // -1: the highest unsigned
  }

  ClientRecord header() {
    return ClientRecord.newBuilder()
        .setClientId(id)
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
