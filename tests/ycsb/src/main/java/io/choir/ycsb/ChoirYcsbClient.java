package io.choir.ycsb;

import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.KeyValueVersion;
import io.choir.client.ReadConsistency;
import io.choir.client.UnavailableException;
import io.choir.client.VersionedValue;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.Vector;
import site.ycsb.ByteArrayByteIterator;
import site.ycsb.ByteIterator;
import site.ycsb.DB;
import site.ycsb.DBException;
import site.ycsb.Status;

/**
 * ChoirYcsbClient is the YCSB 0.17.0 binding of Choir: {@code -db io.choir.ycsb.ChoirYcsbClient}. A
 * record is one key, {@code <table>/<key>}, whose value holds every field ({@link RecordCodec}). Reads
 * are linearizable by default; an insert is a put; an update that names every field of the workload
 * ({@code fieldcount}, {@code fieldnameprefix}: writeallfields=true) is a put, one naming fewer reads
 * the record and writes the merge back with a compare-and-set on the version read, retried on a
 * conflict, as YCSB's update asks (the other fields are kept); a scan reads {@code recordcount} keys
 * of the table from the start key.
 *
 * <p>YCSB makes one DB per client thread; the threads share {@code choir.connections} Choir clients
 * (default 1; each a connection to each replica, with many requests in flight), given out in turn, so a
 * run of 64 threads over one connection measures what a server does with pipelined clients, not with 64
 * sockets.
 *
 * <p>Properties: {@code choir.endpoints} (host:port,...; default the local cluster's 127.0.0.1:7301,
 * 7302, 7303), {@code choir.connections}, {@code choir.read} (linearizable or sequential), {@code
 * choir.timeout_ms} (per request, default 10,000), {@code choir.cacert}, {@code choir.cert}, {@code
 * choir.key} (mutual TLS), {@code choir.token}.
 *
 * <p>Statuses: NOT_FOUND for an absent record, SERVICE_UNAVAILABLE when no replica could take the
 * request (busy, unavailable), ERROR otherwise; a timed-out write is an ERROR whose outcome is unknown
 * (it may have happened), which YCSB does not tell apart.
 */
public final class ChoirYcsbClient extends DB {
  static final String DEFAULT_ENDPOINTS = "127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303";
  /** Tries of a partial update whose compare-and-set met a concurrent write. */
  static final int UPDATE_TRIES = 16;

  private SharedClients.Lease lease;
  private ChoirClient client;
  private ReadConsistency consistency;
  private int fieldCount;
  private String fieldPrefix;

  @Override
  public void init() throws DBException {
    Properties p = getProperties();
    String endpoints = p.getProperty("choir.endpoints", DEFAULT_ENDPOINTS);
    int connections = Integer.parseInt(p.getProperty("choir.connections", "1"));
    long timeoutMs = Long.parseLong(p.getProperty("choir.timeout_ms", "10000"));
    String read = p.getProperty("choir.read", "linearizable");
    switch (read) {
      case "linearizable" -> consistency = ReadConsistency.LINEARIZABLE;
      case "sequential" -> consistency = ReadConsistency.SEQUENTIAL;
      default -> throw new DBException("choir.read must be linearizable or sequential, not " + read);
    }
    fieldCount = Integer.parseInt(p.getProperty("fieldcount", "10"));
    fieldPrefix = p.getProperty("fieldnameprefix", "field");
    if (connections < 1) {
      throw new DBException("choir.connections must be at least 1");
    }
    SharedClients.Settings settings = new SharedClients.Settings(List.of(endpoints.split(",")), connections,
        timeoutMs, p.getProperty("choir.cacert"), p.getProperty("choir.cert"), p.getProperty("choir.key"),
        p.getProperty("choir.token"));
    try {
      lease = SharedClients.acquire(settings);
    } catch (RuntimeException e) {
      throw new DBException("cannot make a Choir client: " + e.getMessage(), e);
    }
    client = lease.client();
  }

  @Override
  public void cleanup() {
    if (lease != null) {
      lease.release();
      lease = null;
    }
  }

  static byte[] key(String table, String key) {
    return (table + "/" + key).getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public Status read(String table, String key, Set<String> fields, Map<String, ByteIterator> result) {
    try {
      Optional<VersionedValue> v = client.get(key(table, key), consistency);
      if (v.isEmpty()) {
        return Status.NOT_FOUND;
      }
      copy(RecordCodec.decode(v.get().value(), fields), result);
      return Status.OK;
    } catch (ChoirException e) {
      return statusOf(e);
    }
  }

  @Override
  public Status scan(String table, String startkey, int recordcount, Set<String> fields,
      Vector<HashMap<String, ByteIterator>> result) {
    try {
      byte[] start = key(table, startkey);
      byte[] end = (table + "0").getBytes(StandardCharsets.UTF_8); // '0' follows '/': the table's end
      List<KeyValueVersion> entries = client.scan(start, end, recordcount, consistency).entries();
      for (KeyValueVersion e : entries) {
        HashMap<String, ByteIterator> row = new HashMap<>();
        copy(RecordCodec.decode(e.value(), fields), row);
        result.add(row);
      }
      return Status.OK;
    } catch (ChoirException e) {
      return statusOf(e);
    }
  }

  @Override
  public Status update(String table, String key, Map<String, ByteIterator> values) {
    try {
      byte[] k = key(table, key);
      if (coversEveryField(values)) {
        client.put(k, RecordCodec.encode(bytesOf(values)));
        return Status.OK;
      }
      for (int attempt = 0; attempt < UPDATE_TRIES; attempt++) {
        Optional<VersionedValue> current = client.get(k, ReadConsistency.LINEARIZABLE);
        if (current.isEmpty()) {
          return Status.NOT_FOUND;
        }
        Map<String, byte[]> merged = RecordCodec.decode(current.get().value(), null);
        merged.putAll(bytesOf(values));
        try {
          client.compareAndSetVersion(k, current.get().version(), RecordCodec.encode(merged));
          return Status.OK;
        } catch (CasFailedException conflict) {
          // Another writer came in between: read again.
        }
      }
      return new Status("CONFLICT", "the record kept changing: " + UPDATE_TRIES + " compare-and-sets failed");
    } catch (ChoirException e) {
      return statusOf(e);
    }
  }

  @Override
  public Status insert(String table, String key, Map<String, ByteIterator> values) {
    try {
      client.put(key(table, key), RecordCodec.encode(bytesOf(values)));
      return Status.OK;
    } catch (ChoirException e) {
      return statusOf(e);
    }
  }

  @Override
  public Status delete(String table, String key) {
    try {
      return client.delete(key(table, key)) ? Status.OK : Status.NOT_FOUND;
    } catch (ChoirException e) {
      return statusOf(e);
    }
  }

  /** Whether values names every field of the workload, so writing them replaces the whole record. */
  boolean coversEveryField(Map<String, ByteIterator> values) {
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

  static Status statusOf(ChoirException e) {
    if (e instanceof UnavailableException || e instanceof BusyException) {
      return Status.SERVICE_UNAVAILABLE;
    }
    if (e instanceof ChoirTimeoutException) {
      return new Status("TIMEOUT", "outcome unknown: " + e.getMessage());
    }
    return new Status("ERROR", e.getClass().getSimpleName() + ": " + e.getMessage());
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
