package io.choir.server.statemachine;

import com.google.protobuf.InvalidProtocolBufferException;
import io.choir.proto.ClientRecord;
import io.choir.proto.Entry;
import io.choir.proto.RegisterSession;
import io.choir.proto.Response;
import io.choir.proto.SavedReply;
import io.choir.proto.Status;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.WriteSet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
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
 * from the log alone, what an entry of a session does. See {@link KvStateMachine}'s class comment for
 * the rules; this class keeps the table, its expiry order and its storage rows.
 *
 * <p>Storage layout (meta rows under {@link MetaKeys#CLIENT_PREFIX}, so that Storage.beginInstall
 * clears all of it):
 * <ul>
 *   <li>{@code client/<id8>}: the session's header, a ClientRecord without replies (first_incomplete,
 *       last_op, last_active_ms, timeout_ms);
 *   <li>{@code client/<id8><request_id8>}: one SavedReply (ids 8 bytes big-endian).
 * </ul>
 * A header sorts right before its own reply rows, so a prefix scan reads each session whole. An apply
 * call writes the reply rows it adds, deletes the ones it drops and rewrites the (small) headers of the
 * sessions it touched: its bytes do not grow with the replies a session has saved. A header that still
 * embeds replies (the layout before sessions were explicit) is read, and {@link #load} hands back the
 * rows that rewrite it in this layout.
 *
 * <p>Threads: the apply thread only, except {@link #count()}. Within an apply call the table is
 * changed in place and the row changes are collected; {@link #writeTo} adds them to the call's
 * WriteSet and {@link #committed} forgets them once it is written. When a call fails, the caller
 * reloads the table from storage ({@link #load}).
 */
final class ClientSessions {
  static final byte[] PREFIX = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
  private static final int HEADER_KEY_BYTES = PREFIX.length + Long.BYTES;
  private static final int REPLY_KEY_BYTES = HEADER_KEY_BYTES + Long.BYTES;

  /** Session is one row of the table, with its saved replies; mutable, apply thread only. */
  static final class Session {
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

  /** Deadline orders sessions for expiry: by expiresAfterMs, then client id (both unsigned). */
  private record Deadline(long afterMs, long clientId) implements Comparable<Deadline> {
    static Deadline of(Session s) {
      return new Deadline(s.expiresAfterMs(), s.clientId);
    }

    @Override
    public int compareTo(Deadline other) {
      int byTime = Long.compareUnsigned(afterMs, other.afterMs);
      return byTime != 0 ? byTime : Long.compareUnsigned(clientId, other.clientId);
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
      remove(table.get(byDeadline.first().clientId()));
    }
  }

  /**
   * A RegisterSession entry: refreshes an existing session (OK); refuses a new one when the table
   * holds max_sessions (BUSY, nothing changed); otherwise creates it (OK). Idempotent.
   */
  Response register(Entry entry) {
    long clientId = entry.getClientId();
    if (clientId == 0) {
      return Commands.invalid(entry, "a session needs a non-zero client id");
    }
    Session s = table.get(clientId);
    if (s != null) {
      touch(s, entry);
      return Commands.reply(entry, Status.OK).build();
    }
    RegisterSession terms = entry.getRegisterSession();
    long maxSessions =
        terms.getMaxSessions() == 0 ? defaultMaxSessions : Integer.toUnsignedLong(terms.getMaxSessions());
    if (table.size() >= maxSessions) {
      return Commands.reply(entry, Status.BUSY)
          .setError(
              "too many client sessions: the table holds " + table.size() + " of at most "
                  + maxSessions)
          .build();
    }
    s = new Session(clientId);
    s.firstIncomplete = entry.getFirstIncomplete();
    s.lastOp = entry.getOp();
    s.lastActiveMs = entry.getTimeMs();
    s.timeoutMs = terms.getTimeoutMs() == 0 ? defaultTimeoutMs : terms.getTimeoutMs();
    table.put(clientId, s);
    byDeadline.add(Deadline.of(s));
    touched.add(s);
    return Commands.reply(entry, Status.OK).build();
  }

  /** A CloseSession entry: removes the session and its saved replies; OK, also when it is absent. */
  Response close(Entry entry) {
    if (entry.getClientId() == 0) {
      return Commands.invalid(entry, "a session needs a non-zero client id");
    }
    Session s = table.get(entry.getClientId());
    if (s != null) {
      remove(s);
    }
    return Commands.reply(entry, Status.OK).build();
  }

  /**
   * Any other entry of a session (client_id != 0): SESSION_EXPIRED, not executed, when the session is
   * not registered; else (the session is active) the saved reply when the request has one, INVALID
   * when its id is below first_incomplete, and otherwise command's reply, saved.
   */
  Response executeOnce(Entry entry, Function<Entry, Response> command) {
    Session s = table.get(entry.getClientId());
    if (s == null) {
      return Commands.reply(entry, Status.SESSION_EXPIRED)
          .setError(
              "session " + Long.toUnsignedString(entry.getClientId())
                  + " is not registered (expired, closed or never registered): request not executed")
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

  /** Activity: the session's last activity moves up to the entry's time (never back), last_op to its op. */
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
    pending.put(replyKey(s.clientId, entry.getRequestId()), saved.toByteArray());
    Map<Long, SavedReply> forgotten = s.replies.headMap(s.firstIncomplete, false);
    for (long requestId : forgotten.keySet()) {
      pending.put(replyKey(s.clientId, requestId), null);
    }
    forgotten.clear();
    while (s.replies.size() > maxRepliesPerClient) {
      // Forgetting a reply raises first_incomplete past it: its retry is refused, never re-executed.
      long dropped = s.replies.pollFirstEntry().getKey();
      pending.put(replyKey(s.clientId, dropped), null);
      if (Long.compareUnsigned(dropped + 1, s.firstIncomplete) > 0) {
        s.firstIncomplete = dropped + 1;
      }
    }
  }

  private void remove(Session s) {
    table.remove(s.clientId);
    byDeadline.remove(Deadline.of(s));
    touched.remove(s);
    pending.put(clientKey(s.clientId), null);
    for (long requestId : s.replies.keySet()) {
      pending.put(replyKey(s.clientId, requestId), null);
    }
  }

  // ---------------------------------------------------------------- the apply call's rows

  /** Adds the current call's row changes to set: reply rows, deleted rows, touched headers. */
  void writeTo(WriteSet set) {
    for (Session s : touched) {
      pending.put(clientKey(s.clientId), s.header().toByteArray()); // only live sessions are here
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
   * Replaces the table with storage's client rows (a prefix scan of {@link #PREFIX}, in key order).
   * Returns the rows that rewrite sessions still in the old layout (replies embedded in the header),
   * empty when there are none; the caller writes them.
   *
   * @throws StorageException on a malformed row or a reply row without its session's header
   */
  WriteSet load(List<Map.Entry<byte[], byte[]>> rows) {
    clear();
    WriteSet rewrite = new WriteSet();
    for (ParsedSession parsed : parse(rows)) {
      Session s = parsed.session();
      table.put(s.clientId, s);
      byDeadline.add(Deadline.of(s));
      if (parsed.legacy()) {
        writeRows(s, rewrite);
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

  /**
   * The self-contained records (replies included) of the client rows, in client id order: what a
   * state transfer streams.
   *
   * @throws StorageException on a malformed or orphan row
   */
  static List<ClientRecord> records(List<Map.Entry<byte[], byte[]>> rows) {
    List<ClientRecord> out = new ArrayList<>();
    for (ParsedSession parsed : parse(rows)) {
      out.add(parsed.session().record());
    }
    return out;
  }

  /** Why record cannot be installed as a session, or null when it can. */
  static String problem(ClientRecord record) {
    if (record.getClientId() == 0) {
      return "a client record has client id 0";
    }
    Set<Long> requestIds = new HashSet<>();
    for (SavedReply saved : record.getRepliesList()) {
      if (!requestIds.add(saved.getRequestId())) {
        return "client " + Long.toUnsignedString(record.getClientId()) + " has two saved replies of request "
            + Long.toUnsignedString(saved.getRequestId());
      }
    }
    return null;
  }

  /** Adds the rows of record (see {@link #problem}) to set, in this layout. */
  static void writeRows(ClientRecord record, WriteSet set) {
    Session s = sessionOf(record, false);
    writeRows(s, set);
  }

  private static void writeRows(Session s, WriteSet set) {
    set.putMeta(clientKey(s.clientId), s.header().toByteArray());
    for (SavedReply saved : s.replies.values()) {
      set.putMeta(replyKey(s.clientId, saved.getRequestId()), saved.toByteArray());
    }
  }

  /** The header row's key: "client/" followed by the client id as 8 bytes big-endian. */
  static byte[] clientKey(long clientId) {
    byte[] key = Arrays.copyOf(PREFIX, HEADER_KEY_BYTES);
    Bytes.putLong(key, PREFIX.length, clientId);
    return key;
  }

  /** A saved reply's row key: the header's key followed by the request id as 8 bytes big-endian. */
  static byte[] replyKey(long clientId, long requestId) {
    byte[] key = Arrays.copyOf(PREFIX, REPLY_KEY_BYTES);
    Bytes.putLong(key, PREFIX.length, clientId);
    Bytes.putLong(key, HEADER_KEY_BYTES, requestId);
    return key;
  }

  private record ParsedSession(Session session, boolean legacy) {}

  /** Parses client rows in key order into sessions (see the class comment for the layout). */
  private static List<ParsedSession> parse(List<Map.Entry<byte[], byte[]>> rows) {
    List<ParsedSession> out = new ArrayList<>();
    Session current = null;
    for (Map.Entry<byte[], byte[]> row : rows) {
      byte[] key = row.getKey();
      if (!Bytes.startsWith(key, PREFIX)) {
        throw corrupt(key, "is not a client table key");
      }
      if (key.length == HEADER_KEY_BYTES) {
        ClientRecord header;
        try {
          header = ClientRecord.parseFrom(row.getValue());
        } catch (InvalidProtocolBufferException e) {
          throw new StorageException("corrupt client table row " + describe(key) + ": " + e.getMessage(), e);
        }
        long clientId = Bytes.getLong(key, PREFIX.length);
        if (clientId == 0 || header.getClientId() != clientId) {
          throw corrupt(key, "holds client " + Long.toUnsignedString(header.getClientId()));
        }
        current = sessionOf(header, true);
        out.add(new ParsedSession(current, header.getRepliesCount() > 0));
      } else if (key.length == REPLY_KEY_BYTES) {
        long clientId = Bytes.getLong(key, PREFIX.length);
        long requestId = Bytes.getLong(key, HEADER_KEY_BYTES);
        if (current == null || current.clientId != clientId) {
          throw corrupt(key, "is a saved reply of client " + Long.toUnsignedString(clientId)
              + ", which has no client table header row (an orphan reply row)");
        }
        SavedReply saved;
        try {
          saved = SavedReply.parseFrom(row.getValue());
        } catch (InvalidProtocolBufferException e) {
          throw new StorageException("corrupt client table row " + describe(key) + ": " + e.getMessage(), e);
        }
        if (saved.getRequestId() != requestId) {
          throw corrupt(key, "holds the reply of request " + Long.toUnsignedString(saved.getRequestId()));
        }
        if (current.replies.put(requestId, saved) != null) {
          throw corrupt(key, "repeats a reply its header row already holds");
        }
      } else {
        throw corrupt(key, "has " + key.length + " bytes, neither a header (" + HEADER_KEY_BYTES
            + ") nor a saved reply (" + REPLY_KEY_BYTES + ")");
      }
    }
    return out;
  }

  /** The session of record; a repeated reply id throws StorageException when fromStorage, else IAE. */
  private static Session sessionOf(ClientRecord record, boolean fromStorage) {
    Session s = new Session(record.getClientId());
    s.firstIncomplete = record.getFirstIncomplete();
    s.lastOp = record.getLastOp();
    s.lastActiveMs = record.getLastActiveMs();
    s.timeoutMs = record.getTimeoutMs();
    for (SavedReply saved : record.getRepliesList()) {
      if (s.replies.put(saved.getRequestId(), saved) != null) {
        String problem = "client " + Long.toUnsignedString(record.getClientId())
            + " has two saved replies of request " + Long.toUnsignedString(saved.getRequestId());
        throw fromStorage ? new StorageException("corrupt client table row: " + problem)
            : new IllegalArgumentException(problem);
      }
    }
    return s;
  }

  private static StorageException corrupt(byte[] key, String problem) {
    return new StorageException("corrupt client table row " + describe(key) + ": the row " + problem);
  }

  /** A row key for messages: "client/" and the ids in decimal, or the raw bytes when it is not one. */
  private static String describe(byte[] key) {
    if (Bytes.startsWith(key, PREFIX) && key.length == HEADER_KEY_BYTES) {
      return "client/" + Long.toUnsignedString(Bytes.getLong(key, PREFIX.length));
    }
    if (Bytes.startsWith(key, PREFIX) && key.length == REPLY_KEY_BYTES) {
      return "client/" + Long.toUnsignedString(Bytes.getLong(key, PREFIX.length)) + "/"
          + Long.toUnsignedString(Bytes.getLong(key, HEADER_KEY_BYTES));
    }
    return Arrays.toString(key);
  }
}
