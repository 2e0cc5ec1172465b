package io.choir.server.metrics;

import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.List;

/**
 * RequestTimes holds, for one client connection, when each of its timed requests (reads and writes,
 * {@link ClientLatency}) was decoded, by request id, until its reply is written: an open-addressing
 * table of primitive arrays (linear probing, deletion by backward shift), so timing a request allocates
 * nothing once the table has grown to the connection's requests in flight. It holds at most
 * {@link #MAX_ENTRIES}; beyond that (a client that reuses no ids and is never answered cannot exist,
 * but the bound does not rely on it) requests go untimed. Request id 0 is never timed. Not
 * thread-safe: the connection's event loop only.
 */
public final class RequestTimes {
  /** Most requests timed at once per connection (above max_in_flight_per_connection's default). */
  static final int MAX_ENTRIES = 1 << 16;
  private static final int FIRST_CAPACITY = 16;

  private final ClientLatency latency;
  private long[] ids;
  private long[] startNs;
  private byte[] kinds;
  private int size;

  public RequestTimes(ClientLatency latency) {
    this.latency = latency;
  }

  /** Notes that request was decoded at nowNs (System.nanoTime()); requests that are not timed are ignored. */
  public void started(Request request, long nowNs) {
    byte kind = ClientLatency.kindOf(request);
    long id = request.getRequestId();
    if (kind == ClientLatency.NONE || id == 0) {
      return;
    }
    if (ids == null) {
      allocate(FIRST_CAPACITY);
    } else if ((size + 1) * 2 > ids.length) {
      if (ids.length >= 2 * MAX_ENTRIES) {
        return;
      }
      grow();
    }
    int i = slot(id);
    while (ids[i] != 0 && ids[i] != id) {
      i = (i + 1) & (ids.length - 1);
    }
    if (ids[i] == 0) {
      size++;
    }
    ids[i] = id;
    startNs[i] = nowNs;
    kinds[i] = kind;
  }

  /** Records the latency of every timed request among replies (written at nowNs) and forgets them. */
  public void finished(List<Response> replies, long nowNs) {
    if (size == 0) {
      return;
    }
    for (int r = 0; r < replies.size(); r++) {
      Response reply = replies.get(r);
      int i = find(reply.getRequestId());
      if (i >= 0) {
        latency.record(kinds[i], reply.getStatus(), nowNs - startNs[i]);
        remove(i);
      }
    }
  }

  /** Requests timed and not yet answered (tests). */
  int size() {
    return size;
  }

  private int find(long id) {
    if (id == 0 || ids == null) {
      return -1;
    }
    int i = slot(id);
    while (ids[i] != 0) {
      if (ids[i] == id) {
        return i;
      }
      i = (i + 1) & (ids.length - 1);
    }
    return -1;
  }

  /** Empties slot i and shifts back the entries after it that probed past it (no tombstones). */
  private void remove(int i) {
    int mask = ids.length - 1;
    int hole = i;
    int j = i;
    while (true) {
      j = (j + 1) & mask;
      if (ids[j] == 0) {
        break;
      }
      int home = slot(ids[j]);
      // Move j into the hole unless its home lies cyclically in (hole, j].
      boolean stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!stays) {
        ids[hole] = ids[j];
        startNs[hole] = startNs[j];
        kinds[hole] = kinds[j];
        hole = j;
      }
    }
    ids[hole] = 0;
    size--;
  }

  private int slot(long id) {
    long h = id * 0x9E3779B97F4A7C15L;
    return (int) (h >>> 40) & (ids.length - 1);
  }

  private void allocate(int capacity) {
    ids = new long[capacity];
    startNs = new long[capacity];
    kinds = new byte[capacity];
    size = 0;
  }

  private void grow() {
    long[] oldIds = ids;
    long[] oldStart = startNs;
    byte[] oldKinds = kinds;
    allocate(oldIds.length * 2);
    for (int i = 0; i < oldIds.length; i++) {
      if (oldIds[i] != 0) {
        int j = slot(oldIds[i]);
        while (ids[j] != 0) {
          j = (j + 1) & (ids.length - 1);
        }
        ids[j] = oldIds[i];
        startNs[j] = oldStart[i];
        kinds[j] = oldKinds[i];
        size++;
      }
    }
  }
}
