package io.choir.server.statemachine;

import com.google.protobuf.InvalidProtocolBufferException;
import io.choir.proto.ClientRecord;
import io.choir.proto.SavedReply;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.WriteSet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * ClientRows is how the client table is laid out in storage: meta rows under {@link
 * MetaKeys#CLIENT_PREFIX}, so that Storage.beginInstall, which clears that prefix, clears all of it.
 * <ul>
 *   <li>{@code client/<id8>}: a session's header, a ClientRecord without replies (client_id,
 *       first_incomplete, last_op, last_active_ms, timeout_ms);
 *   <li>{@code client/<id8><request_id8>}: one of its saved replies, a SavedReply;
 * </ul>
 * ids as 8 bytes big-endian. A header sorts right before its own reply rows, so a prefix scan reads
 * each session whole, and a reply row not right after its header is an orphan. A header that still
 * embeds its replies (the layout before sessions were explicit) is read as well; {@link
 * ClientSessions#load} then rewrites it in this layout.
 */
final class ClientRows {
  static final byte[] PREFIX = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
  private static final int HEADER_KEY_BYTES = PREFIX.length + Long.BYTES;
  private static final int REPLY_KEY_BYTES = HEADER_KEY_BYTES + Long.BYTES;

  private ClientRows() {}

  /**
   * The self-contained records (replies included) of the client rows, in client id order: what a
   * state transfer streams.
   *
   * @throws StorageException on a malformed or orphan row
   */
  static List<ClientRecord> records(List<Map.Entry<byte[], byte[]>> rows) {
    List<ClientRecord> out = new ArrayList<>();
    for (Parsed parsed : parse(rows)) {
      out.add(parsed.session().record());
    }
    return out;
  }

  /** Why record cannot be installed as a session (id 0, a repeated reply), or null when it can. */
  static String problem(ClientRecord record) {
    if (record.getClientId() == 0) {
      return "a client record has client id 0";
    }
    try {
      sessionOf(record, false);
      return null;
    } catch (IllegalArgumentException e) {
      return e.getMessage();
    }
  }

  /** Adds the rows of record (see {@link #problem}) to set, in this layout. */
  static void write(ClientRecord record, WriteSet set) {
    write(sessionOf(record, false), set);
  }

  /** Adds the rows of s (its header, then one per saved reply) to set. */
  static void write(Session s, WriteSet set) {
    set.putMeta(clientKey(s.id), s.header().toByteArray());
    for (SavedReply saved : s.replies.values()) {
      set.putMeta(replyKey(s.id, saved.getRequestId()), saved.toByteArray());
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

  /** Parsed is one session read from storage; legacy: its header embeds its replies. */
  record Parsed(Session session, boolean legacy) {}

  /**
   * Parses client rows in key order into sessions (see the class comment for the layout).
   *
   * @throws StorageException on a malformed row or a reply row without its session's header
   */
  static List<Parsed> parse(List<Map.Entry<byte[], byte[]>> rows) {
    List<Parsed> out = new ArrayList<>();
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
          throw unreadable(key, e);
        }
        long clientId = Bytes.getLong(key, PREFIX.length);
        if (clientId == 0 || header.getClientId() != clientId) {
          throw corrupt(key, "holds client " + Long.toUnsignedString(header.getClientId()));
        }
        current = sessionOf(header, true);
        out.add(new Parsed(current, header.getRepliesCount() > 0));
      } else if (key.length == REPLY_KEY_BYTES) {
        long clientId = Bytes.getLong(key, PREFIX.length);
        long requestId = Bytes.getLong(key, HEADER_KEY_BYTES);
        if (current == null || current.id != clientId) {
          throw corrupt(key, "is a saved reply of client " + Long.toUnsignedString(clientId)
              + ", which has no client table header row (an orphan reply row)");
        }
        SavedReply saved;
        try {
          saved = SavedReply.parseFrom(row.getValue());
        } catch (InvalidProtocolBufferException e) {
          throw unreadable(key, e);
        }
        if (saved.getRequestId() != requestId) {
          throw corrupt(
              key, "holds the reply of request " + Long.toUnsignedString(saved.getRequestId()));
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

  private static StorageException unreadable(byte[] key, InvalidProtocolBufferException e) {
    return new StorageException(
        "corrupt client table row " + describe(key) + ": " + e.getMessage(), e);
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
