package io.choir.server.statemachine;

import io.choir.proto.ClientRecord;
import io.choir.proto.Entry;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.server.storage.Storage;
import java.util.List;

/**
 * KvStateMachine applies committed log entries to the data, deterministically: the same entries in the
 * same order give the same data, replies, client table and checksum on every replica.
 *
 * <p>Contract (TODO: implement, see the storage helper's task):
 * <ul>
 *   <li>{@link #apply} takes consecutive entries starting at applied() + 1 and writes, in ONE atomic
 *       {@link io.choir.server.storage.WriteSet}, their data changes, the new applied number, the new
 *       checksum and the changed client table rows.
 *   <li>checksum(n) = first 8 bytes (big-endian long) of SHA-256(checksum(n-1) as 8 bytes || the entry's
 *       serialized bytes); checksum(0) = 0.
 *   <li>Client table (Raft thesis 6.3): per client, the saved replies of request ids at or above its
 *       first_incomplete. An entry whose request id has a saved reply is not executed again: the saved
 *       reply is its reply. An entry whose request id is below the row's first_incomplete is refused
 *       (INVALID, "already acknowledged"). Otherwise it executes, its reply is saved, first_incomplete
 *       rises to the entry's, lower replies are dropped, at most maxRepliesPerClient are kept (lowest
 *       dropped first). Rows beyond maxClientSessions are evicted, lowest last_op first. client_id 0
 *       means "no session": executed, nothing saved.
 * </ul>
 */
public final class KvStateMachine {
  public KvStateMachine(Storage storage, int maxClientSessions, int maxRepliesPerClient) {
    throw new UnsupportedOperationException("TODO");
  }

  /** Loads applied, checksum and the client table from storage. */
  public void load() {
    throw new UnsupportedOperationException("TODO");
  }

  /** Highest applied op (volatile read; any thread). */
  public long applied() {
    throw new UnsupportedOperationException("TODO");
  }

  /** Running checksum at applied() (any thread). */
  public long checksum() {
    throw new UnsupportedOperationException("TODO");
  }

  /** The client table row of clientId, or null. */
  public ClientRecord clientRecord(long clientId) {
    throw new UnsupportedOperationException("TODO");
  }

  /** Applies entries (see the class comment); returns one reply per entry, in order. */
  public List<Response> apply(List<Entry> entries, boolean sync) {
    throw new UnsupportedOperationException("TODO");
  }

  /** Answers a Get or Scan request from the applied state; Response.op = applied() seen before reading. */
  public Response read(Request request, int maxScanLimit) {
    throw new UnsupportedOperationException("TODO");
  }
}
