package io.choir.ycsb;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.Vector;
import site.ycsb.ByteArrayByteIterator;
import site.ycsb.ByteIterator;
import site.ycsb.DB;
import site.ycsb.DBException;
import site.ycsb.Status;

/**
 * RecordDb is what the bindings (Choir, etcd, Redis with WAIT, JGroups) share, so that they store and
 * update a YCSB record the same way and differ only in the store's calls: a record is one key,
 * {@code <table>/<key>}, whose value holds every field ({@link RecordCodec}). An insert is a put; an
 * update that names every field of the workload ({@code fieldcount}, {@code fieldnameprefix}, i.e.
 * writeallfields=true) is a put; one naming fewer reads the record and writes the merge back only if
 * the record is still what was read, retried on a conflict, as YCSB's update asks (the other fields are
 * kept); a scan reads up to {@code recordcount} records of the table from the start key.
 */
abstract class RecordDb extends DB {
  /** Tries of a partial update whose conditional write met a concurrent write. */
  static final int UPDATE_TRIES = 16;

  /** A record's bytes and the store's version of them (0 where the store has none). */
  record Stored(byte[] value, long version) {}

  /** The calls of one store; each throws a RuntimeException the store's {@link #statusOf} maps. */
  interface Store extends AutoCloseable {
    /** The record, or null when absent. */
    Stored get(byte[] key);

    void put(byte[] key, byte[] value);

    /** Writes value only if key still holds read; false when it changed or is gone. */
    boolean replace(byte[] key, Stored read, byte[] value);

    /** Whether a record was deleted. */
    boolean delete(byte[] key);

    /** The values of up to limit keys in [start, end), in key order. */
    List<byte[]> scan(byte[] start, byte[] end, int limit);

    Status statusOf(RuntimeException e);

    @Override
    void close();
  }

  private Store store;
  private int fieldCount;
  private String fieldPrefix;

  /** This thread's store, from the run's properties. */
  protected abstract Store open(Properties p) throws DBException;

  @Override
  public final void init() throws DBException {
    Properties p = getProperties();
    fieldCount = Integer.parseInt(p.getProperty("fieldcount", "10"));
    fieldPrefix = p.getProperty("fieldnameprefix", "field");
    store = open(p);
  }

  @Override
  public final void cleanup() {
    if (store != null) {
      store.close();
      store = null;
    }
  }

  static byte[] key(String table, String key) {
    return (table + "/" + key).getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public final Status read(String table, String key, Set<String> fields, Map<String, ByteIterator> result) {
    try {
      Stored v = store.get(key(table, key));
      if (v == null) {
        return Status.NOT_FOUND;
      }
      copy(RecordCodec.decode(v.value(), fields), result);
      return Status.OK;
    } catch (RuntimeException e) {
      return store.statusOf(e);
    }
  }

  @Override
  public final Status scan(String table, String startkey, int recordcount, Set<String> fields,
      Vector<HashMap<String, ByteIterator>> result) {
    try {
      byte[] end = (table + "0").getBytes(StandardCharsets.UTF_8); // '0' follows '/': the table's end
      for (byte[] value : store.scan(key(table, startkey), end, recordcount)) {
        HashMap<String, ByteIterator> row = new HashMap<>();
        copy(RecordCodec.decode(value, fields), row);
        result.add(row);
      }
      return Status.OK;
    } catch (RuntimeException e) {
      return store.statusOf(e);
    }
  }

  @Override
  public final Status update(String table, String key, Map<String, ByteIterator> values) {
    try {
      byte[] k = key(table, key);
      if (coversEveryField(values)) {
        store.put(k, RecordCodec.encode(bytesOf(values)));
        return Status.OK;
      }
      Map<String, byte[]> changed = bytesOf(values);
      for (int attempt = 0; attempt < UPDATE_TRIES; attempt++) {
        Stored current = store.get(k);
        if (current == null) {
          return Status.NOT_FOUND;
        }
        Map<String, byte[]> merged = RecordCodec.decode(current.value(), null);
        merged.putAll(changed);
        if (store.replace(k, current, RecordCodec.encode(merged))) {
          return Status.OK;
        }
      }
      return new Status("CONFLICT", "the record kept changing: " + UPDATE_TRIES + " conditional writes failed");
    } catch (RuntimeException e) {
      return store.statusOf(e);
    }
  }

  @Override
  public final Status insert(String table, String key, Map<String, ByteIterator> values) {
    try {
      store.put(key(table, key), RecordCodec.encode(bytesOf(values)));
      return Status.OK;
    } catch (RuntimeException e) {
      return store.statusOf(e);
    }
  }

  @Override
  public final Status delete(String table, String key) {
    try {
      return store.delete(key(table, key)) ? Status.OK : Status.NOT_FOUND;
    } catch (RuntimeException e) {
      return store.statusOf(e);
    }
  }

  /** Whether values names every field of the workload, so writing them replaces the whole record. */
  final boolean coversEveryField(Map<String, ByteIterator> values) {
    if (values.size() < fieldCount) {
      return false;
    }
    for (int i = 0; i < fieldCount; i++) {
      if (!values.containsKey(fieldPrefix + i)) {
        return false;
      }
    }
    return true;
  }

  private static Map<String, byte[]> bytesOf(Map<String, ByteIterator> values) {
    Map<String, byte[]> m = new LinkedHashMap<>();
    values.forEach((name, v) -> m.put(name, v.toArray()));
    return m;
  }

  private static void copy(Map<String, byte[]> fields, Map<String, ByteIterator> into) {
    fields.forEach((name, v) -> into.put(name, new ByteArrayByteIterator(v)));
  }
}
