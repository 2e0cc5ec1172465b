package io.choir.server.storage;

import com.google.protobuf.InvalidProtocolBufferException;
import io.choir.proto.Entry;
import java.util.ArrayList;
import java.util.List;
import org.rocksdb.RocksIterator;
import org.rocksdb.WriteBatch;

/**
 * RocksLogStore is the {@link LogStore} of a real replica: the {@code log} column family of its {@link
 * RocksDatabase}, key = op as 8 bytes big-endian, value = the serialized {@link Entry}. Group commit is
 * the caller's: one call is one WriteBatch and, when synced, one fsync.
 */
final class RocksLogStore implements LogStore {
  /** A key above every 8-byte op key: the exclusive end of "the rest of the log". */
  private static final byte[] ABOVE_EVERY_OP = {
    (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF,
    (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF
  };

  private final RocksDatabase database;

  RocksLogStore(RocksDatabase database) {
    this.database = database;
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    if (entries.isEmpty()) {
      if (sync) {
        sync();
      }
      return;
    }
    database.run(
        "append to the log",
        () -> {
          try (WriteBatch batch = new WriteBatch()) {
            for (Entry entry : entries) {
              batch.put(database.log(), Bytes.longToBytes(entry.getOp()), entry.toByteArray());
            }
            database.write(batch, sync);
          }
          return null;
        });
  }

  @Override
  public List<Entry> readLog(long fromOp, long toOp, int maxBytes) {
    long from = Math.max(fromOp, 0);
    if (from > toOp) {
      return List.of();
    }
    return database.run(
        "read the log",
        () -> {
          List<Entry> out = new ArrayList<>();
          long bytes = 0;
          try (RocksIterator it = database.db().newIterator(database.log())) {
            for (it.seek(Bytes.longToBytes(from)); it.isValid(); it.next()) {
              long op = Bytes.bytesToLong(it.key());
              if (op > toOp) {
                break;
              }
              byte[] value = it.value();
              if (!out.isEmpty() && bytes + value.length > maxBytes) {
                break;
              }
              out.add(parseEntry(op, value));
              bytes += value.length;
            }
            it.status();
          }
          return out;
        });
  }

  @Override
  public long firstLogOp() {
    return database.run(
        "read the first log op",
        () -> {
          try (RocksIterator it = database.db().newIterator(database.log())) {
            it.seekToFirst();
            long op = it.isValid() ? Bytes.bytesToLong(it.key()) : 0;
            it.status();
            return op;
          }
        });
  }

  @Override
  public long lastLogOp() {
    return database.run(
        "read the last log op",
        () -> {
          try (RocksIterator it = database.db().newIterator(database.log())) {
            it.seekToLast();
            long op = it.isValid() ? Bytes.bytesToLong(it.key()) : 0;
            it.status();
            return op;
          }
        });
  }

  @Override
  public void truncateLogBefore(long op, boolean sync) {
    if (op <= 0) {
      return;
    }
    database.run(
        "truncate the log before " + op,
        () -> {
          database.db().deleteRange(
              database.log(), database.writeOptions(sync), new byte[0], Bytes.longToBytes(op));
          return null;
        });
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    if (op < 0) {
      throw new IllegalArgumentException("op must not be negative: " + op);
    }
    if (op == Long.MAX_VALUE) {
      return;
    }
    database.run(
        "truncate the log after " + op,
        () -> {
          database.db().deleteRange(
              database.log(), database.writeOptions(sync), Bytes.longToBytes(op + 1), ABOVE_EVERY_OP);
          return null;
        });
  }

  @Override
  public void sync() {
    database.sync();
  }

  private Entry parseEntry(long op, byte[] value) {
    try {
      return Entry.parseFrom(value);
    } catch (InvalidProtocolBufferException e) {
      throw new StorageException("corrupt log entry at op " + op + " in " + database.dir(), e);
    }
  }
}
