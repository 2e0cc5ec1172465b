package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.choir.proto.LeaseInfo;
import io.choir.proto.LeaseRecord;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.WriteSet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.ConcurrentSkipListSet;

/**
 * LeaseTable is the state machine's lease table (docs/lease.md): the live leases, each with its TTL and
 * its deadline by the replicated clock (Entry.time_ms), the keys attached to each, and their storage
 * rows. {@link LeaseCommands} holds the rules; this class keeps the table consistent and durable.
 *
 * <p>Storage (meta rows under {@link MetaKeys#LEASE_PREFIX}, which a state transfer's beginInstall
 * clears): {@code lease/h<id8>} is a lease's header (a LeaseRecord without keys), {@code
 * lease/k<id8><key>} (empty value) says that key is attached to the lease. A keep-alive rewrites the
 * small header only; attaching or detaching a key writes or deletes one key row.
 *
 * <p>Threads: changes run on the apply thread and are written with the entries' WriteSet; {@link
 * #list}, {@link #earliest}, {@link #count} and {@link #keyCount} may be read from any thread (the
 * table and the deadline index are concurrent maps of immutable values; like the client table, they
 * change in place during an apply, and a failed write makes the state machine reload them).
 */
final class LeaseTable {
  /** The prefix of every lease row. */
  static final byte[] PREFIX = MetaKeys.bytes(MetaKeys.LEASE_PREFIX);
  private static final byte HEADER = 'h';
  private static final byte KEY = 'k';

  /** Lease is one live lease (immutable; replaced on every change). */
  record Lease(long id, long ttlMs, long deadlineMs, int keys) {
    LeaseInfo info(long nowMs) {
      return LeaseInfo.newBuilder().setId(id).setTtlMs(ttlMs).setDeadlineMs(deadlineMs).setNowMs(nowMs)
          .setKeys(keys).build();
    }
  }

  /** Deadline orders leases by deadline, then id (the expiry index). */
  record Deadline(long deadlineMs, long id) implements Comparable<Deadline> {
    @Override
    public int compareTo(Deadline o) {
      int c = Long.compare(deadlineMs, o.deadlineMs);
      return c != 0 ? c : Long.compare(id, o.id);
    }
  }

  private final ConcurrentSkipListMap<Long, Lease> table = new ConcurrentSkipListMap<>();
  private final ConcurrentSkipListSet<Deadline> byDeadline = new ConcurrentSkipListSet<>();
  /** Apply thread only: the keys of each lease that has any, and the lease of each attached key. */
  private final Map<Long, Set<Key>> keysOf = new HashMap<>();
  private final Map<Key, Long> leaseOf = new HashMap<>();
  /** Rows to write with the current apply (null: delete), in key order. */
  private final TreeMap<byte[], byte[]> pending = new TreeMap<>(Arrays::compareUnsigned);
  private volatile long attachedKeys;
  /** Counters (apply thread writes, any thread reads): leases granted, kept alive, revoked, expired. */
  volatile long granted;
  volatile long keepAlives;
  volatile long revoked;
  volatile long expired;

  // ---------------------------------------------------------------- reads (apply thread)

  Lease get(long id) {
    return table.get(id);
  }

  /** The lease key is attached to, or 0. */
  long leaseOf(byte[] key) {
    Long id = leaseOf.get(new Key(key));
    return id == null ? 0 : id;
  }

  /**
   * The keys attached to lease id, in unsigned byte order (a copy): the same order on every replica,
   * whether it attached them itself or loaded the table (restart, state transfer), so a lease's end
   * gives every replica's watchers its deletions in one order (the simulator found the attach order on
   * some replicas and key order on others).
   */
  List<byte[]> keys(long id) {
    Set<Key> keys = keysOf.get(id);
    List<byte[]> out = new ArrayList<>(keys == null ? 0 : keys.size());
    if (keys != null) {
      for (Key k : keys) {
        out.add(k.bytes());
      }
    }
    out.sort(Arrays::compareUnsigned);
    return out;
  }

  // ---------------------------------------------------------------- reads (any thread)

  /** The number of live leases. */
  int count() {
    return table.size();
  }

  /** The number of keys attached to a lease. */
  long keyCount() {
    return attachedKeys;
  }

  /** Up to max leases with the earliest deadlines at or before nowMs, earliest first. */
  List<Deadline> expiredBy(long nowMs, int max) {
    List<Deadline> out = new ArrayList<>();
    for (Deadline d : byDeadline) {
      if (d.deadlineMs() > nowMs || out.size() >= max) {
        break;
      }
      out.add(d);
    }
    return out;
  }

  /** The earliest deadline of a live lease, or Long.MAX_VALUE when there is none. */
  long earliest() {
    Deadline first = byDeadline.isEmpty() ? null : byDeadline.first();
    return first == null ? Long.MAX_VALUE : first.deadlineMs();
  }

  /** The newest grant or keep-alive time of a live lease (its deadline minus its TTL), or 0. */
  long latestActivityMs() {
    long latest = 0;
    for (Lease l : table.values()) {
      latest = Math.max(latest, l.deadlineMs() - l.ttlMs());
    }
    return latest;
  }

  /** The leases with ids at or above startId, in id order, at most limit + 1 (to tell "more"). */
  List<Lease> list(long startId, int limit) {
    List<Lease> out = new ArrayList<>();
    for (Lease l : table.tailMap(startId, true).values()) {
      if (out.size() > limit) {
        break;
      }
      out.add(l);
    }
    return out;
  }

  // ---------------------------------------------------------------- changes (apply thread)

  /** Creates or replaces lease (its key count kept as the table knows it). */
  void put(long id, long ttlMs, long deadlineMs) {
    Lease old = table.get(id);
    if (old != null) {
      byDeadline.remove(new Deadline(old.deadlineMs(), id));
    }
    Set<Key> keys = keysOf.get(id);
    Lease lease = new Lease(id, ttlMs, deadlineMs, keys == null ? 0 : keys.size());
    table.put(id, lease);
    byDeadline.add(new Deadline(deadlineMs, id));
    pending.put(headerKey(id), LeaseRecord.newBuilder().setId(id).setTtlMs(ttlMs).setDeadlineMs(deadlineMs)
        .build().toByteArray());
  }

  /** Attaches key to lease id (which exists), detaching it from its former lease. */
  void attach(byte[] key, long id) {
    Key k = new Key(key);
    Long former = leaseOf.get(k);
    if (former != null && former == id) {
      return;
    }
    if (former != null) {
      detach(key);
    }
    leaseOf.put(k, id);
    keysOf.computeIfAbsent(id, x -> new LinkedHashSet<>()).add(k);
    pending.put(keyRow(id, key), new byte[0]);
    recount(id);
    attachedKeys++;
  }

  /** Detaches key from its lease, if it has one. */
  void detach(byte[] key) {
    Key k = new Key(key);
    Long id = leaseOf.remove(k);
    if (id == null) {
      return;
    }
    Set<Key> keys = keysOf.get(id);
    keys.remove(k);
    if (keys.isEmpty()) {
      keysOf.remove(id);
    }
    pending.put(keyRow(id, key), null);
    recount(id);
    attachedKeys--;
  }

  /** Removes lease id and detaches its keys (the caller deletes their data); returns those keys. */
  List<byte[]> remove(long id) {
    List<byte[]> keys = keys(id);
    for (byte[] key : keys) {
      detach(key);
    }
    Lease old = table.remove(id);
    if (old != null) {
      byDeadline.remove(new Deadline(old.deadlineMs(), id));
    }
    pending.put(headerKey(id), null);
    return keys;
  }

  private void recount(long id) {
    Lease l = table.get(id);
    if (l != null) {
      Set<Key> keys = keysOf.get(id);
      table.put(id, new Lease(id, l.ttlMs(), l.deadlineMs(), keys == null ? 0 : keys.size()));
    }
  }

  /** Adds this apply's row changes to set. */
  void writeTo(WriteSet set) {
    for (Map.Entry<byte[], byte[]> row : pending.entrySet()) {
      if (row.getValue() == null) {
        set.deleteMeta(row.getKey());
      } else {
        set.putMeta(row.getKey(), row.getValue());
      }
    }
  }

  /** The apply's WriteSet is written. */
  void committed() {
    pending.clear();
  }

  // ---------------------------------------------------------------- the table as a whole

  void clear() {
    table.clear();
    byDeadline.clear();
    keysOf.clear();
    leaseOf.clear();
    pending.clear();
    attachedKeys = 0;
  }

  /**
   * Replaces the table by the one rows hold (a scan of {@link #PREFIX}, in key order).
   *
   * @throws StorageException on a malformed row or a key row of a lease without a header
   */
  void load(List<Map.Entry<byte[], byte[]>> rows) {
    clear();
    List<byte[]> keyRows = new ArrayList<>();
    for (Map.Entry<byte[], byte[]> row : rows) {
      byte[] k = row.getKey();
      if (k.length == PREFIX.length + 9 && k[PREFIX.length] == HEADER) {
        LeaseRecord r = parse(row.getValue());
        put(r.getId(), r.getTtlMs(), r.getDeadlineMs());
      } else if (k.length > PREFIX.length + 9 && k[PREFIX.length] == KEY) {
        keyRows.add(k);
      } else {
        throw new StorageException("malformed lease row " + Arrays.toString(k), null);
      }
    }
    for (byte[] k : keyRows) {
      long id = Bytes.bytesToLong(Arrays.copyOfRange(k, PREFIX.length + 1, PREFIX.length + 9));
      if (!table.containsKey(id)) {
        throw new StorageException("a lease key row of lease " + id + " without its header", null);
      }
      attach(Arrays.copyOfRange(k, PREFIX.length + 9, k.length), id);
    }
    pending.clear();
  }

  /** The table as self-contained records (each lease with its keys, in byte order), in id order. */
  static List<LeaseRecord> records(List<Map.Entry<byte[], byte[]>> rows) {
    TreeMap<Long, LeaseRecord.Builder> out = new TreeMap<>();
    for (Map.Entry<byte[], byte[]> row : rows) {
      byte[] k = row.getKey();
      if (k.length == PREFIX.length + 9 && k[PREFIX.length] == HEADER) {
        LeaseRecord r = parse(row.getValue());
        out.put(r.getId(), r.toBuilder());
      }
    }
    for (Map.Entry<byte[], byte[]> row : rows) {
      byte[] k = row.getKey();
      if (k.length > PREFIX.length + 9 && k[PREFIX.length] == KEY) {
        long id = Bytes.bytesToLong(Arrays.copyOfRange(k, PREFIX.length + 1, PREFIX.length + 9));
        LeaseRecord.Builder b = out.get(id);
        if (b == null) {
          throw new StorageException("a lease key row of lease " + id + " without its header", null);
        }
        b.addKeys(ByteString.copyFrom(k, PREFIX.length + 9, k.length - PREFIX.length - 9));
      }
    }
    List<LeaseRecord> records = new ArrayList<>(out.size());
    out.values().forEach(b -> records.add(b.build()));
    return records;
  }

  /** Adds the rows of record (a lease with its keys, from a state transfer) to set. */
  static void write(LeaseRecord record, WriteSet set) {
    set.putMeta(headerKey(record.getId()), record.toBuilder().clearKeys().build().toByteArray());
    for (ByteString key : record.getKeysList()) {
      set.putMeta(keyRow(record.getId(), key.toByteArray()), new byte[0]);
    }
  }

  /** What is wrong with a received record, or null. */
  static String problem(LeaseRecord record) {
    if (record.getId() == 0) {
      return "a lease of id 0";
    }
    if (record.getTtlMs() == 0 || record.getTtlMs() > LeaseCommands.MAX_TTL_MS) {
      return "lease " + record.getId() + " has TTL " + record.getTtlMs();
    }
    if (record.getKeysCount() > LeaseCommands.MAX_KEYS_PER_LEASE) {
      return "lease " + record.getId() + " has " + record.getKeysCount() + " keys";
    }
    for (ByteString key : record.getKeysList()) {
      if (key.isEmpty()) {
        return "lease " + record.getId() + " has an empty key";
      }
    }
    return null;
  }

  private static LeaseRecord parse(byte[] value) {
    try {
      return LeaseRecord.parseFrom(value);
    } catch (InvalidProtocolBufferException e) {
      throw new StorageException("malformed lease header row: " + e.getMessage(), e);
    }
  }

  static byte[] headerKey(long id) {
    byte[] k = Arrays.copyOf(PREFIX, PREFIX.length + 9);
    k[PREFIX.length] = HEADER;
    System.arraycopy(Bytes.longToBytes(id), 0, k, PREFIX.length + 1, 8);
    return k;
  }

  static byte[] keyRow(long id, byte[] key) {
    byte[] k = Arrays.copyOf(PREFIX, PREFIX.length + 9 + key.length);
    k[PREFIX.length] = KEY;
    System.arraycopy(Bytes.longToBytes(id), 0, k, PREFIX.length + 1, 8);
    System.arraycopy(key, 0, k, PREFIX.length + 9, key.length);
    return k;
  }

  /** Key wraps a byte[] with value equality. */
  private record Key(byte[] bytes) {
    @Override
    public boolean equals(Object other) {
      return other instanceof Key key && Arrays.equals(bytes, key.bytes);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
      return Arrays.toString(bytes);
    }
  }
}
