package io.choir.server.statemachine;

import io.choir.proto.ClientRecord;
import io.choir.proto.Entry;
import io.choir.proto.RegisterSession;
import io.choir.proto.Response;
import io.choir.proto.SavedReply;
import io.choir.proto.Status;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.WriteSet;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * ClientSessions is the client table (Raft thesis section 6.3): the registered client sessions, each
 * with the saved replies of its requests at or above its first_incomplete, and the rules that decide,
 * from the log alone, what an entry of a session does; it keeps the table, its expiry order and its
 * storage rows.
 *
 * <p>The rules, decided at apply time from the log alone, so the same on every replica. Each entry
 * carries time_ms, the primary's replicated clock (non-decreasing along the log, never ahead of real
 * time).
 * <ul>
 *   <li>Expiry: before an entry with time T is applied, every session whose last activity +
 *       timeout is below T is removed with its saved replies (an ordered index: O(log n) per
 *       entry plus the expiries). Activity is any entry of the session (client_id = its
 *       id): executed, answered from a saved reply, or refused; it moves the session's last
 *       activity up to the entry's time, never back.
 *   <li>Session ids come from the log: a RegisterSession entry always opens a NEW session
 *       whose id is the entry's op (unique, rising along the log, never reused), answered
 *       OK with Response.session_id set to it. The entry's client_id (the client instance's
 *       random id) only names the registration request, so that the primary can recognise
 *       its retries while its entry is in flight; it is not the session's id. The session
 *       starts with the entry's first_incomplete, last activity = time_ms and the entry's
 *       timeout_ms. The primary fills in the terms; 0 means this machine's defaults
 *       (KvStateMachine's constructor). Refused (BUSY, nothing changed) when the table holds
 *       max_sessions rows: a live session is never evicted, max_sessions bounds the table by
 *       refusing registrations.
 *   <li>CloseSession (client_id = the session id): the session and its saved replies are
 *       removed (OK, also when absent).
 *   <li>Any other entry with client_id != 0 whose session is not in the table (expired,
 *       closed, never opened): SESSION_EXPIRED, nothing executed, nothing saved. Since
 *       ids are never reused, a late copy of an old request (held in a paused replica's
 *       socket buffer, resent by TCP after a partition heals) can never run again: not
 *       even after a late copy of its session's RegisterSession, which opens a new session
 *       under a new id. (With client-chosen ids such a copy re-created the old session,
 *       without its saved replies, and the old write executed a second time.)
 *   <li>Within a session: an entry whose request id has a saved reply is not executed again:
 *       the saved reply is its reply. An entry whose request id is below the session's
 *       first_incomplete is refused (INVALID, "already acknowledged"). Otherwise it executes,
 *       its reply is saved, first_incomplete rises to the entry's, lower replies are dropped,
 *       at most maxRepliesPerClient are kept (lowest dropped first).
 *   <li>client_id 0 means "no session": executed, nothing saved. RegisterSession or
 *       CloseSession with client_id 0 is INVALID (no session has id 0: ops start at 1).
 * </ul>
 *
 * <p>Choices the rules leave open, made here:
 * <ul>
 *   <li>When the maxRepliesPerClient bound drops a reply, first_incomplete rises above its request id,
 *       so a late retry of it is refused rather than executed a second time (ClientRecord's meaning of
 *       first_incomplete: "replies below this have been forgotten"). A client must therefore keep
 *       fewer than maxRepliesPerClient requests in flight.
 *   <li>A registration retried after its entry committed (its answer lost) gets an entry of its
 *       own and opens a second session: the client uses the one whose answer it gets, and the
 *       other expires unused after its timeout. Each costs one header row and one table slot until
 *       then, and needs a lost answer to a registration that reached the log (the client's
 *       Registrar says how many attempts a registration makes).
 *   <li>A new session's first_incomplete is the registration's own (the client's lowest request id
 *       in flight), not the registration's request id + 1: after SESSION_EXPIRED the client resends
 *       in the new session, under their old request ids, the writes that answer proved were not
 *       executed, and those ids are below the registration's. Nothing has run in a new session, and
 *       the client no longer waits for any id below its first_incomplete.
 *   <li>An op that is already a session's id (only possible under rows written with client-chosen
 *       ids, before ids came from the log) opens nothing: BUSY, so the client registers again, at
 *       another op; the live session is not replaced.
 *   <li>Only an execution changes first_incomplete and the saved replies; any entry of the session
 *       changes its last_op (the op of its latest entry) and last activity.
 *   <li>A time below an earlier entry's (never produced by a correct primary) expires nothing that
 *       was live at the earlier time and moves no session's activity back.
 * </ul>
 *
 * <p>Storage ({@link ClientRows}): one header row per session and one row per saved reply. An apply
 * call writes the reply rows it adds, deletes the ones it drops and rewrites the (small) headers of the
 * sessions it touched: its bytes do not grow with the replies a session has saved.
 *
 * <p>Threads: the apply thread only, except {@link #count()}. Within an apply call the table is
 * changed in place and the row changes are collected; {@link #writeTo} adds them to the call's
 * WriteSet and {@link #committed} forgets them once it is written. When a call fails, the caller
 * reloads the table from storage ({@link #load}).
 */
final class ClientSessions {
  /** Deadline orders sessions for expiry: by expiresAfterMs, then session id (both unsigned). */
  private record Deadline(long afterMs, long sessionId) implements Comparable<Deadline> {
    static Deadline of(Session s) {
      return new Deadline(s.expiresAfterMs(), s.id);
    }

    @Override
    public int compareTo(Deadline other) {
      int byTime = Long.compareUnsigned(afterMs, other.afterMs);
      return byTime != 0 ? byTime : Long.compareUnsigned(sessionId, other.sessionId);
    }
  }

  private final int defaultMaxSessions;
  private final long defaultTimeoutMs;
  private final int maxRepliesPerClient;

  private final Map<Long, Session> table = new HashMap<>();
  /** Every session of the table, soonest expiry first: expiry looks at the head only. */
  private final TreeSet<Deadline> byDeadline = new TreeSet<>();
  /** Row changes of the current apply call (besides headers), in key order; null deletes the row. */
  private final TreeMap<byte[], byte[]> pending = new TreeMap<>(Bytes.UNSIGNED);
  /** Sessions the current apply call touched: their headers are rewritten when they still exist. */
  private final Set<Session> touched = new LinkedHashSet<>();
  /** Number of sessions as of the last written call (any thread). */
  private volatile int count;

  ClientSessions(int defaultMaxSessions, long defaultTimeoutMs, int maxRepliesPerClient) {
    this.defaultMaxSessions = defaultMaxSessions;
    this.defaultTimeoutMs = defaultTimeoutMs;
    this.maxRepliesPerClient = maxRepliesPerClient;
  }

  // ---------------------------------------------------------------- the rules, one entry at a time

  /**
   * Expires every session whose last activity + timeout is below timeMs (an entry's time_ms), before
   * that entry is applied. Looks at the head of the expiry order only, so an entry costs O(log n)
   * plus the sessions it expires. A time below an earlier entry's expires nothing that was live at
   * that earlier time: every such session expires after it.
   */
  void expireBefore(long timeMs) {
    while (!byDeadline.isEmpty() && Long.compareUnsigned(byDeadline.first().afterMs(), timeMs) < 0) {
      remove(table.get(byDeadline.first().sessionId()));
    }
  }

  /**
   * A RegisterSession entry opens a NEW session whose id is the entry's op (Raft thesis 6.3: the log
   * assigns it, so it is unique, rises along the log and is never reused); the reply carries it as
   * session_id. The entry's client_id only named the registration request (for the primary's in-flight
   * deduplication); it is not the session's id, and an existing session is never refreshed or
   * re-created by a registration. Refused (BUSY, nothing changed) when the table holds max_sessions.
   * The new session starts with the entry's first_incomplete, last activity = time_ms and the entry's
   * timeout (0 = this machine's defaults).
   */
  Response register(Entry entry) {
    if (entry.getClientId() == 0) {
      return Commands.invalid(entry, "a registration needs a non-zero client id");
    }
    long sessionId = entry.getOp();
    RegisterSession terms = entry.getRegisterSession();
    long maxSessions =
        terms.getMaxSessions() == 0
            ? defaultMaxSessions
            : Integer.toUnsignedLong(terms.getMaxSessions());
    if (table.size() >= maxSessions) {
      return Commands.reply(entry, Status.BUSY)
          .setError(
              "too many client sessions: the table holds " + table.size() + " of at most "
                  + maxSessions)
          .build();
    }
    if (sessionId == 0 || table.containsKey(sessionId)) {
      // Never for a log of this code: ops are unique and every session id is an op below this one.
      // Only a row written under client-chosen ids (before ids came from the log) can hold it; that
      // live session is not replaced. BUSY, so the client registers again (at another op).
      return Commands.reply(entry, Status.BUSY)
          .setError(
              "session id " + Long.toUnsignedString(sessionId)
                  + " is taken by a session opened under a client-chosen id; register again")
          .build();
    }
    Session s = new Session(sessionId);
    s.firstIncomplete = entry.getFirstIncomplete();
    s.lastOp = entry.getOp();
    s.lastActiveMs = entry.getTimeMs();
    s.timeoutMs = terms.getTimeoutMs() == 0 ? defaultTimeoutMs : terms.getTimeoutMs();
    table.put(sessionId, s);
    byDeadline.add(Deadline.of(s));
    touched.add(s);
    return Commands.reply(entry, Status.OK).setSessionId(sessionId).build();
  }

  /**
   * A CloseSession entry (client_id = the session's id): removes the session and its saved replies;
   * OK, also when it is absent (expired, closed before, never opened). Its id is never used again.
   */
  Response close(Entry entry) {
    if (entry.getClientId() == 0) {
      return Commands.invalid(entry, "a session id is never 0");
    }
    Session s = table.get(entry.getClientId());
    if (s != null) {
      remove(s);
    }
    return Commands.reply(entry, Status.OK).build();
  }

  /**
   * Any other entry of a session (client_id = a session id, != 0): SESSION_EXPIRED, not executed, when
   * no such session is in the table (expired, closed, or never opened: ids are never reused, so a
   * late copy of a request of a session that is gone can never run again); else (the session is active) the saved reply when the request has one, INVALID
   * when its id is below first_incomplete, and otherwise command's reply, saved.
   */
  Response executeOnce(Entry entry, Function<Entry, Response> command) {
    Session s = table.get(entry.getClientId());
    if (s == null) {
      return Commands.reply(entry, Status.SESSION_EXPIRED)
          .setError(
              "session " + Long.toUnsignedString(entry.getClientId())
                  + " is not open (expired, closed or never opened): request not executed; register"
                  + " a new session")
          .build();
    }
    touch(s, entry);
    SavedReply saved = s.replies.get(entry.getRequestId());
    if (saved != null) {
      return saved.getReply();
    }
    if (Long.compareUnsigned(entry.getRequestId(), s.firstIncomplete) < 0) {
      return Commands.reply(entry, Status.INVALID)
          .setError(
              "request " + Long.toUnsignedString(entry.getRequestId())
                  + " already acknowledged (first_incomplete "
                  + Long.toUnsignedString(s.firstIncomplete) + ")")
          .build();
    }
    Response reply = command.apply(entry);
    remember(s, entry, reply);
    return reply;
  }

  /** Activity: last activity moves up to the entry's time (never back), last_op to its op. */
  private void touch(Session s, Entry entry) {
    if (Long.compareUnsigned(entry.getTimeMs(), s.lastActiveMs) > 0) {
      byDeadline.remove(Deadline.of(s));
      s.lastActiveMs = entry.getTimeMs();
      byDeadline.add(Deadline.of(s));
    }
    s.lastOp = entry.getOp();
    touched.add(s);
  }

  /** Saves reply in the session (Raft thesis 6.3, with first_incomplete and the replies bound). */
  private void remember(Session s, Entry entry, Response reply) {
    if (Long.compareUnsigned(entry.getFirstIncomplete(), s.firstIncomplete) > 0) {
      s.firstIncomplete = entry.getFirstIncomplete();
    }
    SavedReply saved =
        SavedReply.newBuilder()
            .setRequestId(entry.getRequestId())
            .setOp(entry.getOp())
            .setReply(reply)
            .build();
    s.replies.put(entry.getRequestId(), saved);
    pending.put(ClientRows.replyKey(s.id, entry.getRequestId()), saved.toByteArray());
    Map<Long, SavedReply> forgotten = s.replies.headMap(s.firstIncomplete, false);
    for (long requestId : forgotten.keySet()) {
      pending.put(ClientRows.replyKey(s.id, requestId), null);
    }
    forgotten.clear();
    while (s.replies.size() > maxRepliesPerClient) {
      // Forgetting a reply raises first_incomplete past it: its retry is refused, never re-executed.
      long dropped = s.replies.pollFirstEntry().getKey();
      pending.put(ClientRows.replyKey(s.id, dropped), null);
      if (Long.compareUnsigned(dropped + 1, s.firstIncomplete) > 0) {
        s.firstIncomplete = dropped + 1;
      }
    }
  }

  private void remove(Session s) {
    table.remove(s.id);
    byDeadline.remove(Deadline.of(s));
    touched.remove(s);
    pending.put(ClientRows.clientKey(s.id), null);
    for (long requestId : s.replies.keySet()) {
      pending.put(ClientRows.replyKey(s.id, requestId), null);
    }
  }

  // ---------------------------------------------------------------- the apply call's rows

  /** Adds the current call's row changes to set: reply rows, deleted rows, touched headers. */
  void writeTo(WriteSet set) {
    for (Session s : touched) {
      // Only live sessions are here: remove() takes a session out of touched.
      pending.put(ClientRows.clientKey(s.id), s.header().toByteArray());
    }
    for (Map.Entry<byte[], byte[]> row : pending.entrySet()) {
      if (row.getValue() == null) {
        set.deleteMeta(row.getKey());
      } else {
        set.putMeta(row.getKey(), row.getValue());
      }
    }
  }

  /** The current call's WriteSet is written: its row changes are forgotten, the count published. */
  void committed() {
    pending.clear();
    touched.clear();
    count = table.size();
  }

  // ---------------------------------------------------------------- the table as a whole

  /** Empties the table in memory (a state transfer begins; storage is wiped by the caller). */
  void clear() {
    table.clear();
    byDeadline.clear();
    pending.clear();
    touched.clear();
    count = 0;
  }

  /**
   * Replaces the table with storage's client rows (a prefix scan of {@link ClientRows#PREFIX}, in key
   * order).
   * Returns the rows that rewrite sessions still in the old layout (replies embedded in the header),
   * empty when there are none; the caller writes them.
   *
   * @throws StorageException on a malformed row or a reply row without its session's header
   */
  WriteSet load(List<Map.Entry<byte[], byte[]>> rows) {
    clear();
    WriteSet rewrite = new WriteSet();
    for (ClientRows.Parsed parsed : ClientRows.parse(rows)) {
      Session s = parsed.session();
      table.put(s.id, s);
      byDeadline.add(Deadline.of(s));
      if (parsed.legacy()) {
        ClientRows.write(s, rewrite);
      }
    }
    count = table.size();
    return rewrite;
  }

  /** Number of sessions as of the last written apply call or load (any thread). */
  int count() {
    return count;
  }

  /** The self-contained record of clientId's session, or null (apply thread). */
  ClientRecord record(long clientId) {
    Session s = table.get(clientId);
    return s == null ? null : s.record();
  }
}
