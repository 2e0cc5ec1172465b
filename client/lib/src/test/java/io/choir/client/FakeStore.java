package io.choir.client;

import com.google.protobuf.ByteString;
import io.choir.proto.BatchOp;
import io.choir.proto.CompareAndSet;
import io.choir.proto.KeyValue;
import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.HashSet;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;

/**
 * FakeStore answers requests the way a Choir replica would, from an in-memory sorted map, so client
 * tests can check round trips without a cluster. Every data write takes the next op number. Like the
 * real state machine, RegisterSession always opens a new session and answers its id (session_id);
 * the id comes from a sequence of its own ({@link #FIRST_SESSION_ID} on), not from the ops, so that
 * session requests take no op number and versions stay simple. CloseSession (client_id = the session
 * id) ends it, {@link #expireSessions} drops them all. After {@link #enforceSessions()} it executes a
 * write with a client id only inside an open session and answers SESSION_EXPIRED otherwise; by
 * default it does not check, since each fake server has its own store and a real cluster shares one
 * session table.
 */
final class FakeStore {
  record Entry(ByteString value, long version) {}

  private final NavigableMap<ByteString, Entry> data =
      new TreeMap<>(ByteString.unsignedLexicographicalComparator());
  private final int replicaId;
  /** The id of the first session a store opens. */
  static final long FIRST_SESSION_ID = 5_000;

  private final Set<Long> sessions = new HashSet<>();
  private long nextSessionId = FIRST_SESSION_ID;
  private boolean enforceSessions;
  private long lastOp;

  FakeStore(int replicaId, long firstOp) {
    this.replicaId = replicaId;
    this.lastOp = firstOp - 1;
  }

  synchronized long lastOp() {
    return lastOp;
  }

  /** From now on a write outside a registered session is answered SESSION_EXPIRED. */
  synchronized FakeStore enforceSessions() {
    enforceSessions = true;
    return this;
  }

  /** Every session is gone (as after session_timeout_ms without a write). */
  synchronized void expireSessions() {
    sessions.clear();
  }

  synchronized boolean hasSession(long sessionId) {
    return sessions.contains(sessionId);
  }

  synchronized Response apply(Request req) {
    Response.Builder r = Response.newBuilder().setRequestId(req.getRequestId());
    switch (req.getOpCase()) {
      case PUT, DELETE, COMPARE_AND_SET, BATCH -> {
        if (enforceSessions && req.getClientId() != 0 && !sessions.contains(req.getClientId())) {
          return r.setStatus(Status.SESSION_EXPIRED).setError("session not registered").build();
        }
      }
      default -> { }
    }
    switch (req.getOpCase()) {
      case REGISTER_SESSION -> {
        long id = nextSessionId++;
        sessions.add(id);
        r.setStatus(Status.OK).setSessionId(id);
      }
      case CLOSE_SESSION -> {
        sessions.remove(req.getClientId());
        r.setStatus(Status.OK);
      }
      case GET -> {
        Entry e = data.get(req.getGet().getKey());
        if (e == null) {
          r.setStatus(Status.NOT_FOUND);
        } else {
          r.setStatus(Status.OK).setValue(e.value()).setVersion(e.version());
        }
        r.setOp(lastOp);
      }
      case PUT -> {
        lastOp++;
        data.put(req.getPut().getKey(), new Entry(req.getPut().getValue(), lastOp));
        r.setStatus(Status.OK).setVersion(lastOp).setOp(lastOp);
      }
      case DELETE -> {
        lastOp++;
        boolean existed = data.remove(req.getDelete().getKey()) != null;
        r.setStatus(Status.OK).setExisted(existed).setVersion(lastOp).setOp(lastOp);
      }
      case COMPARE_AND_SET -> {
        CompareAndSet cas = req.getCompareAndSet();
        if (!matches(cas)) {
          casFailed(r, cas.getKey());
        } else {
          lastOp++;
          data.put(cas.getKey(), new Entry(cas.getNewValue(), lastOp));
          r.setStatus(Status.OK).setVersion(lastOp).setOp(lastOp);
        }
      }
      case SCAN -> {
        ByteString end = req.getScan().getEndKey();
        Map<ByteString, Entry> range = end.isEmpty()
            ? data.tailMap(req.getScan().getStartKey(), true)
            : data.subMap(req.getScan().getStartKey(), true, end, false);
        int limit = req.getScan().getLimit() == 0 ? 1000 : req.getScan().getLimit();
        int n = 0;
        for (Map.Entry<ByteString, Entry> e : range.entrySet()) {
          if (n == limit) {
            r.setMore(true);
            break;
          }
          r.addKvs(KeyValue.newBuilder().setKey(e.getKey()).setValue(e.getValue().value())
              .setVersion(e.getValue().version()));
          n++;
        }
        r.setStatus(Status.OK).setOp(lastOp);
      }
      case BATCH -> {
        for (int i = 0; i < req.getBatch().getOpsCount(); i++) {
          BatchOp op = req.getBatch().getOps(i);
          if (op.hasCompareAndSet() && !matches(op.getCompareAndSet())) {
            casFailed(r, op.getCompareAndSet().getKey());
            r.setFailedIndex(i);
            return r.build();
          }
        }
        lastOp++;
        for (BatchOp op : req.getBatch().getOpsList()) {
          switch (op.getOpCase()) {
            case PUT -> data.put(op.getPut().getKey(), new Entry(op.getPut().getValue(), lastOp));
            case DELETE -> data.remove(op.getDelete().getKey());
            case COMPARE_AND_SET -> data.put(op.getCompareAndSet().getKey(),
                new Entry(op.getCompareAndSet().getNewValue(), lastOp));
            default -> throw new IllegalStateException("bad batch op");
          }
        }
        r.setStatus(Status.OK).setVersion(lastOp).setOp(lastOp);
      }
      case STATUS -> r.setStatus(Status.OK).setReplicaStatus(ReplicaStatus.newBuilder()
          .setId(replicaId).setRole("primary").setView(1).setOp(lastOp).setCommit(lastOp)
          .setApplied(lastOp).setKeys(data.size()).putCounters("requests", 1).setVersion("fake"));
      default -> r.setStatus(Status.INVALID).setError("no operation");
    }
    return r.build();
  }

  private boolean matches(CompareAndSet cas) {
    Entry e = data.get(cas.getKey());
    return switch (cas.getExpectedCase()) {
      case EXPECTED_VALUE -> e != null && e.value().equals(cas.getExpectedValue());
      case EXPECTED_VERSION -> e != null && e.version() == cas.getExpectedVersion();
      case EXPECT_ABSENT -> e == null;
      default -> false;
    };
  }

  private void casFailed(Response.Builder r, ByteString key) {
    Entry e = data.get(key);
    r.setStatus(Status.CAS_FAILED).setOp(lastOp);
    if (e != null) {
      r.setValue(e.value()).setVersion(e.version());
    }
  }
}
