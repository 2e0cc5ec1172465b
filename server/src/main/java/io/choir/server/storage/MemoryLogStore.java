package io.choir.server.storage;

import io.choir.proto.Entry;
import java.util.ArrayList;
import java.util.List;

/**
 * MemoryLogStore is the in-memory twin of {@link RocksLogStore}: the log key space of a {@link
 * MemoryWal}, with the same contract. Entries are immutable, so they are shared, not copied.
 */
final class MemoryLogStore implements LogStore {
  private final MemoryWal wal;

  MemoryLogStore(MemoryWal wal) {
    this.wal = wal;
  }

  @Override
  public void appendLog(List<Entry> entries, boolean sync) {
    if (entries.isEmpty()) {
      if (sync) {
        sync();
      }
      return;
    }
    List<Entry> copy = List.copyOf(entries);
    wal.mutate(
        "append to the log",
        state -> {
          for (Entry entry : copy) {
            state.log.put(entry.getOp(), entry);
          }
        },
        sync);
  }

  @Override
  public List<Entry> readLog(long fromOp, long toOp, int maxBytes) {
    return wal.read(
        "read the log",
        current -> {
          List<Entry> out = new ArrayList<>();
          if (fromOp > toOp) {
            return out;
          }
          long bytes = 0;
          for (Entry entry : current.log.subMap(fromOp, true, toOp, true).values()) {
            int size = entry.getSerializedSize();
            if (!out.isEmpty() && bytes + size > maxBytes) {
              break;
            }
            out.add(entry);
            bytes += size;
          }
          return out;
        });
  }

  @Override
  public long firstLogOp() {
    return wal.read(
        "read the first log op", current -> current.log.isEmpty() ? 0 : current.log.firstKey());
  }

  @Override
  public long lastLogOp() {
    return wal.read(
        "read the last log op", current -> current.log.isEmpty() ? 0 : current.log.lastKey());
  }

  @Override
  public void truncateLogBefore(long op, boolean sync) {
    wal.mutate("truncate the log", state -> state.log.headMap(op, false).clear(), sync);
  }

  @Override
  public void truncateLogAfter(long op, boolean sync) {
    if (op < 0) {
      throw new IllegalArgumentException("op must not be negative: " + op);
    }
    wal.mutate("truncate the log", state -> state.log.tailMap(op, false).clear(), sync);
  }

  @Override
  public void sync() {
    wal.sync();
  }
}
