package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
import io.choir.proto.Batch;
import io.choir.proto.BatchOp;
import io.choir.proto.ClientRecord;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.SavedReply;
import io.choir.proto.Scan;
import io.choir.proto.Status;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * KvStateMachine applies committed log entries to the data, deterministically: the same entries in the
 * same order give the same data, replies, client table and checksum on every replica, however the
 * entries are grouped into {@link #apply} calls.
 *
 * <p>Contract:
 * <ul>
 *   <li>{@link #apply} takes consecutive entries starting at applied() + 1 and writes, in ONE atomic
 *       {@link WriteSet}, their data changes, the new applied number, the new checksum and the changed
 *       client table rows. Every entry is applied, even one whose command is invalid (it gets an
 *       INVALID reply and changes no data), so applied() and the checksum always follow the log.
 *   <li>checksum(n) = first 8 bytes (big-endian long) of SHA-256(checksum(n-1) as 8 bytes || the entry's
 *       serialized bytes); checksum(0) = 0.
 *   <li>Client table (Raft thesis 6.3): per client, the saved replies of request ids at or above its
 *       first_incomplete. An entry whose request id has a saved reply is not executed again: the saved
 *       reply is its reply. An entry whose request id is below the row's first_incomplete is refused
 *       (INVALID, "already acknowledged"). Otherwise it executes, its reply is saved, first_incomplete
 *       rises to the entry's, lower replies are dropped, at most maxRepliesPerClient are kept (lowest
 *       dropped first). Rows beyond maxClientSessions are evicted, lowest last_op first. client_id 0
 *       means "no session": executed, nothing saved.
 * </ul>
 *
 * <p>Choices the contract leaves open, made here:
 * <ul>
 *   <li>When the maxRepliesPerClient bound drops a reply, first_incomplete rises above its request id,
 *       so a late retry of it is refused rather than executed a second time (ClientRecord's meaning of
 *       first_incomplete: "replies below this have been forgotten"). A client must therefore keep
 *       fewer than maxRepliesPerClient requests in flight.
 *   <li>A duplicate or a refused entry leaves its client's row unchanged (last_op included): only an
 *       execution changes the row.
 *   <li>Eviction runs after every entry that creates a row, so that replicas grouping entries into
 *       apply calls differently still evict the same rows.
 *   <li>CompareAndSet with expected_version 0 matches an absent key (an absent key has version 0);
 *       expect_absent set to false is INVALID.
 *   <li>An empty Batch is OK and writes nothing.
 * </ul>
 *
 * <p>State transfer (DESIGN.md "Loss, repair and flow"): a replica that needs ops its primary's log no
 * longer holds replaces its whole state with a snapshot of the primary's, in three steps on the apply
 * thread: {@link #beginInstall} (storage wipes the state and sets the "installing" marker, synced),
 * {@link #installData} per received chunk (unsynced), {@link #installSnapshot} (client table, applied,
 * checksum and marker removal in one synced write; the log is emptied). While installing, {@link
 * #apply} is refused (it would build on a partial state) and {@link #read} answers UNAVAILABLE.
 *
 * <p>Crash in the middle of an install: {@link #load} finds the marker and wipes the replica to the
 * empty state (applied 0, no data, no client rows, no log), so it simply fetches a state transfer
 * again. That loses nothing acknowledged: the replica only installs a snapshot at an op above its
 * applied number, fetched from a primary whose log had already dropped the ops it lacked, so every op
 * it ever acknowledged is committed and held by a majority that does not include it. It does mean the
 * replica must NOT take part in a view change as if its empty log were what it acknowledged (it would
 * count as a member of a quorum missing committed ops): after {@link #wipedInterruptedInstall()} it
 * must rejoin as recovering (VR section 4.3) and catch up before it votes. (Follow-up for the core.)
 *
 * <p>Threads: {@link #apply}, {@link #load} and the install methods run on one thread (the storage
 * stage). {@link #applied()}, {@link #checksum()}, {@link #appliedState()}, {@link #clientRecord} and
 * {@link #read} may be called from any thread: the applied state and client rows are published only
 * after the WriteSet is written, so a reader never sees an applied number ahead of the data.
 */
public final class KvStateMachine {
  /** Meta key of the applied op number (8 bytes big-endian). */
  public static final String APPLIED_KEY = MetaKeys.APPLIED;

  /** Meta key of the running checksum at the applied op (8 bytes big-endian). */
  public static final String CHECKSUM_KEY = MetaKeys.CHECKSUM;

  /** Meta key prefix of the client table rows; the row key adds the client id as 8 bytes BE. */
  public static final String CLIENT_PREFIX = MetaKeys.CLIENT_PREFIX;

  private static final byte[] APPLIED = MetaKeys.bytes(MetaKeys.APPLIED);
  private static final byte[] CHECKSUM = MetaKeys.bytes(MetaKeys.CHECKSUM);
  private static final byte[] CLIENTS = MetaKeys.bytes(MetaKeys.CLIENT_PREFIX);
  private static final byte[] INSTALLING = MetaKeys.bytes(MetaKeys.INSTALLING);

  /** AppliedState is the applied op number and the checksum at it, read together. */
  public record AppliedState(long applied, long checksum) {}

  /** Rank orders client rows for eviction: lowest last_op first (ties, never expected, by id). */
  private record Rank(long lastOp, long clientId) implements Comparable<Rank> {
    @Override
    public int compareTo(Rank other) {
      int byOp = Long.compare(lastOp, other.lastOp);
      return byOp != 0 ? byOp : Long.compareUnsigned(clientId, other.clientId);
    }
  }

  private final Storage storage;
  private final int maxClientSessions;
  private final int maxRepliesPerClient;
  private final MessageDigest sha256 = newSha256(); // apply thread only

  private volatile AppliedState state = new AppliedState(0, 0);
  private final ConcurrentHashMap<Long, ClientRecord> clients = new ConcurrentHashMap<>();
  /** The rows of clients in eviction order; apply thread only, mutated during a call. */
  private final TreeSet<Rank> evictionOrder = new TreeSet<>();
  /** True while an apply call runs, and after one failed: the in-memory table must be reloaded. */
  private boolean needsLoad;
  /**
   * Even while the state is whole, odd from {@link #beginInstall} until the install is finished (or
   * given up by {@link #load}): a reader that sees it odd, or changed across its read, refuses the
   * read (a sequence lock). Written by the apply thread only.
   */
  private volatile long installEpoch;
  /** Whether the last {@link #load} wiped an interrupted install (apply thread; volatile for status). */
  private volatile boolean wipedInterruptedInstall;

  /**
   * KvStateMachine over storage. Call {@link #load} before the first apply when storage may already
   * hold state (a restart, an installed snapshot).
   */
  public KvStateMachine(Storage storage, int maxClientSessions, int maxRepliesPerClient) {
    if (maxClientSessions < 1) {
      throw new IllegalArgumentException("maxClientSessions must be at least 1: " + maxClientSessions);
    }
    if (maxRepliesPerClient < 1) {
      throw new IllegalArgumentException(
          "maxRepliesPerClient must be at least 1: " + maxRepliesPerClient);
    }
    this.storage = storage;
    this.maxClientSessions = maxClientSessions;
    this.maxRepliesPerClient = maxRepliesPerClient;
  }

  /**
   * Loads applied, checksum and the client table from storage, replacing what is in memory (so it
   * also recovers from a failed apply and follows an installed snapshot). Runs on the apply thread;
   * readers may see a partly loaded client table meanwhile.
   *
   * <p>When storage holds the "installing" marker (a crash, or a failed transfer given up, in the
   * middle of an install), it first wipes the replica to the empty state: applied 0, checksum 0, no
   * data, no client rows, no log, marker cleared; see the class comment for why that is safe and what
   * the replica must then do ({@link #wipedInterruptedInstall()} tells). Each step is idempotent and
   * the marker goes last, in a synced write, so a crash during the wipe just wipes again.
   */
  public void load() {
    wipedInterruptedInstall = false;
    if (storage.getMeta(INSTALLING) != null) {
      storage.beginInstall(); // data, client rows, applied, checksum gone; marker kept, synced
      storage.truncateLogAfter(0, false);
      // Synced, so the log truncation before it is durable too when the marker is gone.
      storage.write(new WriteSet().deleteMeta(INSTALLING), true);
      wipedInterruptedInstall = true;
    }
    byte[] applied = storage.getMeta(APPLIED);
    byte[] checksum = storage.getMeta(CHECKSUM);
    clients.clear();
    evictionOrder.clear();
    for (Map.Entry<byte[], byte[]> row : storage.scanMeta(CLIENTS)) {
      ClientRecord record;
      try {
        record = ClientRecord.parseFrom(row.getValue());
      } catch (InvalidProtocolBufferException e) {
        throw new StorageException("corrupt client table row " + Arrays.toString(row.getKey()), e);
      }
      if (!Arrays.equals(row.getKey(), clientKey(record.getClientId()))) {
        throw new StorageException(
            "client table row " + Arrays.toString(row.getKey()) + " holds client "
                + Long.toUnsignedString(record.getClientId()));
      }
      clients.put(record.getClientId(), record);
      evictionOrder.add(new Rank(record.getLastOp(), record.getClientId()));
    }
    state =
        new AppliedState(
            applied == null ? 0 : Bytes.bytesToLong(applied),
            checksum == null ? 0 : Bytes.bytesToLong(checksum));
    needsLoad = false;
    if ((installEpoch & 1) != 0) {
      installEpoch++; // the state is whole again (installed, or wiped to empty)
    }
  }

  /**
   * Starts installing a state transfer (apply thread): marks the in-memory state as being replaced
   * (reads answer UNAVAILABLE, apply is refused), shows applied 0 and an empty client table, and calls
   * {@link Storage#beginInstall()} (marker set and state wiped, synced). Calling it again while
   * installing restarts the install from empty (a new fetch after a failed one).
   */
  public void beginInstall() {
    if ((installEpoch & 1) == 0) {
      installEpoch++; // before touching storage: readers must never see the wipe as a state
    }
    needsLoad = true;
    clients.clear();
    evictionOrder.clear();
    state = new AppliedState(0, 0);
    storage.beginInstall();
  }

  /**
   * Writes one chunk of snapshot pairs (apply thread, between {@link #beginInstall} and {@link
   * #installSnapshot}); unsynced, made durable by installSnapshot's synced write.
   */
  public void installData(List<KeyValue> kvs) {
    if (!installing()) {
      throw new IllegalStateException("no state transfer is being installed: call beginInstall first");
    }
    storage.installData(kvs);
  }

  /**
   * Finishes installing a state transfer taken at op with checksum (apply thread): truncates the whole
   * log, then in ONE synced WriteSet writes the client rows, applied = op, checksum and deletes the
   * "installing" marker; then reloads the in-memory state from storage.
   *
   * <p>Crash safety: the log truncation comes first and unsynced. A crash before the synced WriteSet
   * leaves the marker, so {@link #load} wipes and the replica fetches again, whether or not the
   * truncation survived. Once the WriteSet is durable, so is the truncation before it (a synced write
   * makes every earlier write durable), so no state ever pairs applied = op with stale log entries
   * (which recovery would replay above op). Truncating after the WriteSet would leave exactly that
   * window: marker gone, old entries still in the log.
   *
   * @throws IllegalStateException when storage holds no install marker (no beginInstall, or the
   *     install was wiped by a restart in between)
   * @throws IllegalArgumentException when op is below 1 or two client rows share a client id
   */
  public void installSnapshot(long op, long checksum, List<ClientRecord> clients) {
    if (op < 1) {
      throw new IllegalArgumentException("a snapshot is taken at op 1 or above: " + op);
    }
    Set<Long> ids = new HashSet<>();
    for (ClientRecord record : clients) {
      if (record.getClientId() == 0 || !ids.add(record.getClientId())) {
        throw new IllegalArgumentException(
            "snapshot client table has a zero or repeated client id "
                + Long.toUnsignedString(record.getClientId()));
      }
    }
    if (storage.getMeta(INSTALLING) == null) {
      throw new IllegalStateException(
          "no state transfer is being installed (no marker in storage): call beginInstall first");
    }
    storage.truncateLogAfter(0, false);
    WriteSet set = new WriteSet();
    for (ClientRecord record : clients) {
      set.putMeta(clientKey(record.getClientId()), record.toByteArray());
    }
    set.putMeta(APPLIED, Bytes.longToBytes(op));
    set.putMeta(CHECKSUM, Bytes.longToBytes(checksum));
    set.deleteMeta(INSTALLING);
    storage.write(set, true);
    load();
  }

  /** True from {@link #beginInstall} until the install is finished or wiped (any thread). */
  public boolean installing() {
    return (installEpoch & 1) != 0;
  }

  /**
   * True when the last {@link #load} found an interrupted install and wiped the replica to the empty
   * state: the replica must catch up (state transfer) before it takes part in a view change.
   */
  public boolean wipedInterruptedInstall() {
    return wipedInterruptedInstall;
  }

  /** Highest applied op (volatile read; any thread). */
  public long applied() {
    return state.applied();
  }

  /** Running checksum at applied() (any thread). */
  public long checksum() {
    return state.checksum();
  }

  /** The applied op and the checksum at it, as one consistent pair (any thread). */
  public AppliedState appliedState() {
    return state;
  }

  /** The client table row of clientId, or null (any thread). */
  public ClientRecord clientRecord(long clientId) {
    return clients.get(clientId);
  }

  /** The number of rows in the client table (any thread). */
  public int clientCount() {
    return clients.size();
  }

  /** The number of keys, estimated by RocksDB (any thread). */
  public long keyCount() {
    return storage.approximateKeyCount();
  }

  /**
   * The client table as of snapshot, one self-contained record per session (its saved replies
   * included), in client id order: what a state transfer streams and {@link #installSnapshot} takes.
   * The one place that knows how the table is laid out in storage.
   */
  public static List<ClientRecord> clientTable(io.choir.server.storage.StorageSnapshot snapshot) {
    List<ClientRecord> rows = new ArrayList<>();
    for (Map.Entry<byte[], byte[]> row : snapshot.scanMeta(CLIENTS)) {
      try {
        rows.add(ClientRecord.parseFrom(row.getValue()));
      } catch (InvalidProtocolBufferException e) {
        throw new StorageException("corrupt client table row " + Arrays.toString(row.getKey()), e);
      }
    }
    return rows;
  }

  /** The meta key of clientId's client table row: "client/" followed by the id as 8 bytes BE. */
  public static byte[] clientKey(long clientId) {
    return Bytes.concat(CLIENTS, Bytes.longToBytes(clientId));
  }

  /** The checksum after applying entry at a state whose checksum is previous (see the contract). */
  public static long nextChecksum(long previous, Entry entry) {
    return nextChecksum(newSha256(), previous, entry);
  }

  /**
   * Applies entries (see the class comment); returns one reply per entry, in order. Throws
   * IllegalStateException when the entries do not continue from applied(): applying a gap or an op
   * twice would silently diverge from the other replicas.
   */
  public List<Response> apply(List<Entry> entries, boolean sync) {
    if (installing()) {
      throw new IllegalStateException(
          "a state transfer is being installed; entries cannot be applied to a partial state");
    }
    if (needsLoad) {
      throw new IllegalStateException(
          "an earlier apply failed; the state machine must be reloaded from storage");
    }
    AppliedState start = state;
    for (int i = 0; i < entries.size(); i++) {
      long expected = start.applied() + 1 + i;
      if (entries.get(i).getOp() != expected) {
        throw new IllegalStateException(
            "entry " + i + " has op " + entries.get(i).getOp() + ", expected " + expected
                + " (applied " + start.applied() + ")");
      }
    }
    if (entries.isEmpty()) {
      return List.of();
    }
    needsLoad = true; // until the WriteSet is written and the result published
    Pass pass = new Pass();
    List<Response> replies = new ArrayList<>(entries.size());
    long checksum = start.checksum();
    for (Entry entry : entries) {
      replies.add(applyOne(entry, pass));
      checksum = nextChecksum(sha256, checksum, entry);
    }
    long applied = entries.get(entries.size() - 1).getOp();

    WriteSet set = new WriteSet();
    pass.data.writeTo(set);
    set.putMeta(APPLIED, Bytes.longToBytes(applied));
    set.putMeta(CHECKSUM, Bytes.longToBytes(checksum));
    Map<Long, ClientRecord> rows = pass.changedRows();
    for (Map.Entry<Long, ClientRecord> row : rows.entrySet()) {
      if (row.getValue() == null) {
        set.deleteMeta(clientKey(row.getKey()));
      } else {
        set.putMeta(clientKey(row.getKey()), row.getValue().toByteArray());
      }
    }
    storage.write(set, sync);

    for (Map.Entry<Long, ClientRecord> row : rows.entrySet()) {
      if (row.getValue() == null) {
        clients.remove(row.getKey());
      } else {
        clients.put(row.getKey(), row.getValue());
      }
    }
    state = new AppliedState(applied, checksum); // last: readers see applied only after the data
    needsLoad = false;
    return replies;
  }

  /**
   * Answers a Get or Scan request from the applied state. Response.op is applied() read BEFORE the
   * data, so the data answered is at least as new as op: a client sending op back as min_op never
   * reads older state. A Scan returns at most maxScanLimit pairs (the request's limit, or
   * maxScanLimit when 0); more is true when the range holds more keys. Other requests are INVALID.
   * While a state transfer is being installed (or when one began during the read) the answer is
   * UNAVAILABLE: the data then is a partial snapshot, no state at any op.
   */
  public Response read(Request request, int maxScanLimit) {
    if (maxScanLimit < 1) {
      throw new IllegalArgumentException("maxScanLimit must be at least 1: " + maxScanLimit);
    }
    long epoch = installEpoch;
    if ((epoch & 1) == 0) {
      Response answer = readState(request, maxScanLimit);
      if (installEpoch == epoch) {
        return answer;
      }
    }
    return Response.newBuilder()
        .setRequestId(request.getRequestId())
        .setStatus(Status.UNAVAILABLE)
        .setError("this replica is installing a state transfer")
        .build();
  }

  /** The answer to a read from the current state, without the install check. */
  private Response readState(Request request, int maxScanLimit) {
    long op = applied();
    Response.Builder reply = Response.newBuilder().setRequestId(request.getRequestId()).setOp(op);
    switch (request.getOpCase()) {
      case GET -> {
        byte[] key = request.getGet().getKey().toByteArray();
        if (key.length == 0) {
          return reply.setStatus(Status.INVALID).setError("empty key").build();
        }
        Versioned found = storage.get(key);
        if (found == null) {
          return reply.setStatus(Status.NOT_FOUND).build();
        }
        return reply
            .setStatus(Status.OK)
            .setValue(UnsafeByteOperations.unsafeWrap(found.value()))
            .setVersion(found.version())
            .build();
      }
      case SCAN -> {
        Scan scan = request.getScan();
        int limit =
            scan.getLimit() == 0
                ? maxScanLimit
                : (int) Math.min(Integer.toUnsignedLong(scan.getLimit()), maxScanLimit);
        // One more than the limit tells whether the range goes on.
        int fetch = limit == Integer.MAX_VALUE ? limit : limit + 1;
        List<KeyValue> kvs =
            storage.scan(scan.getStartKey().toByteArray(), scan.getEndKey().toByteArray(), fetch);
        boolean more = kvs.size() > limit;
        return reply
            .setStatus(Status.OK)
            .addAllKvs(more ? kvs.subList(0, limit) : kvs)
            .setMore(more)
            .build();
      }
      default -> {
        return reply
            .setStatus(Status.INVALID)
            .setError("not a read request: " + request.getOpCase())
            .build();
      }
    }
  }

  /** Applies one entry within a call: the client table check, then the command. */
  private Response applyOne(Entry entry, Pass pass) {
    long clientId = entry.getClientId();
    if (clientId == 0) {
      return execute(entry, pass.data);
    }
    Session session = pass.session(clientId);
    if (session != null) {
      SavedReply saved = session.replies.get(entry.getRequestId());
      if (saved != null) {
        return saved.getReply();
      }
      if (Long.compareUnsigned(entry.getRequestId(), session.firstIncomplete) < 0) {
        return reply(entry, Status.INVALID)
            .setError(
                "request " + Long.toUnsignedString(entry.getRequestId())
                    + " already acknowledged (first_incomplete "
                    + Long.toUnsignedString(session.firstIncomplete) + ")")
            .build();
      }
      evictionOrder.remove(new Rank(session.lastOp, clientId));
    } else {
      session = new Session(clientId);
    }
    Response reply = execute(entry, pass.data);
    remember(session, entry, reply);
    pass.changed(session);
    evictionOrder.add(new Rank(session.lastOp, clientId));
    while (evictionOrder.size() > maxClientSessions) {
      Rank oldest = evictionOrder.pollFirst();
      // The entry's own row has the highest last_op, and maxClientSessions >= 1.
      assert oldest.clientId() != clientId;
      pass.evicted(oldest.clientId());
    }
    return reply;
  }

  /** Saves reply in entry's client session (Raft thesis 6.3, with first_incomplete). */
  private void remember(Session session, Entry entry, Response reply) {
    if (Long.compareUnsigned(entry.getFirstIncomplete(), session.firstIncomplete) > 0) {
      session.firstIncomplete = entry.getFirstIncomplete();
    }
    session.replies.put(
        entry.getRequestId(),
        SavedReply.newBuilder()
            .setRequestId(entry.getRequestId())
            .setOp(entry.getOp())
            .setReply(reply)
            .build());
    session.replies.headMap(session.firstIncomplete, false).clear();
    while (session.replies.size() > maxRepliesPerClient) {
      // Forgetting a reply raises first_incomplete past it: its retry is refused, never re-executed.
      long dropped = session.replies.pollFirstEntry().getKey();
      if (Long.compareUnsigned(dropped + 1, session.firstIncomplete) > 0) {
        session.firstIncomplete = dropped + 1;
      }
    }
    session.lastOp = entry.getOp();
  }

  /** Executes entry's command against data; the reply carries the entry's op and request id. */
  private Response execute(Entry entry, Overlay data) {
    long op = entry.getOp();
    switch (entry.getCommandCase()) {
      case PUT -> {
        if (entry.getPut().getKey().isEmpty()) {
          return invalid(entry, "empty key");
        }
        data.put(entry.getPut().getKey().toByteArray(), entry.getPut().getValue().toByteArray(), op);
        return reply(entry, Status.OK).setVersion(op).build();
      }
      case DELETE -> {
        if (entry.getDelete().getKey().isEmpty()) {
          return invalid(entry, "empty key");
        }
        boolean existed = data.delete(entry.getDelete().getKey().toByteArray());
        return reply(entry, Status.OK).setVersion(op).setExisted(existed).build();
      }
      case COMPARE_AND_SET -> {
        String problem = invalidReason(entry.getCompareAndSet());
        if (problem != null) {
          return invalid(entry, problem);
        }
        Response.Builder failed = compareAndSet(entry.getCompareAndSet(), data, op);
        return failed != null
            ? failed.setRequestId(entry.getRequestId()).setOp(op).build()
            : reply(entry, Status.OK).setVersion(op).build();
      }
      case BATCH -> {
        return executeBatch(entry, entry.getBatch(), data);
      }
      case NOOP -> {
        return reply(entry, Status.OK).build();
      }
      default -> {
        return invalid(entry, "entry has no command");
      }
    }
  }

  /**
   * Executes a batch all or nothing: its ops run in order on an overlay of data (later ops see the
   * earlier ones), and the overlay reaches data only when no op failed.
   */
  private Response executeBatch(Entry entry, Batch batch, Overlay data) {
    long op = entry.getOp();
    // Validate every op first, so an invalid batch is INVALID whatever the data holds.
    for (int i = 0; i < batch.getOpsCount(); i++) {
      String problem = invalidReason(batch.getOps(i));
      if (problem != null) {
        return reply(entry, Status.INVALID)
            .setFailedIndex(i)
            .setError("batch op " + i + ": " + problem)
            .build();
      }
    }
    Overlay overlay = new Overlay(data);
    for (int i = 0; i < batch.getOpsCount(); i++) {
      BatchOp batchOp = batch.getOps(i);
      switch (batchOp.getOpCase()) {
        case PUT -> {
          Put put = batchOp.getPut();
          overlay.put(put.getKey().toByteArray(), put.getValue().toByteArray(), op);
        }
        case DELETE -> overlay.delete(batchOp.getDelete().getKey().toByteArray());
        case COMPARE_AND_SET -> {
          Response.Builder failed = compareAndSet(batchOp.getCompareAndSet(), overlay, op);
          if (failed != null) {
            return failed
                .setRequestId(entry.getRequestId())
                .setOp(op)
                .setFailedIndex(i)
                .setError("batch op " + i + ": " + failed.getError())
                .build();
          }
        }
        default -> throw new IllegalStateException("unvalidated batch op " + batchOp.getOpCase());
      }
    }
    overlay.mergeIntoParent();
    return reply(entry, Status.OK).setVersion(op).build();
  }

  /**
   * Writes cas.new_value with version op when the expectation holds and returns null; otherwise
   * returns a CAS_FAILED reply (without request id and op) with the current value and version.
   */
  private static Response.Builder compareAndSet(CompareAndSet cas, Overlay data, long op) {
    byte[] key = cas.getKey().toByteArray();
    Versioned current = data.get(key);
    long currentVersion = current == null ? 0 : current.version();
    String mismatch =
        switch (cas.getExpectedCase()) {
          case EXPECTED_VALUE -> {
            if (current == null) {
              yield "key is absent";
            }
            yield Arrays.equals(current.value(), cas.getExpectedValue().toByteArray())
                ? null
                : "value differs from the expected value";
          }
          case EXPECTED_VERSION ->
              currentVersion == cas.getExpectedVersion()
                  ? null
                  : "version is " + currentVersion + ", expected " + cas.getExpectedVersion();
          case EXPECT_ABSENT -> current == null ? null : "key exists (version " + currentVersion + ")";
          default -> throw new IllegalStateException("unvalidated compare-and-set " + cas);
        };
    if (mismatch == null) {
      data.put(key, cas.getNewValue().toByteArray(), op);
      return null;
    }
    return Response.newBuilder()
        .setStatus(Status.CAS_FAILED)
        .setValue(
            current == null ? ByteString.EMPTY : UnsafeByteOperations.unsafeWrap(current.value()))
        .setVersion(currentVersion)
        .setError("compare-and-set failed: " + mismatch);
  }

  private static String invalidReason(CompareAndSet cas) {
    if (cas.getKey().isEmpty()) {
      return "empty key";
    }
    return switch (cas.getExpectedCase()) {
      case EXPECTED_NOT_SET -> "compare-and-set without an expectation";
      case EXPECT_ABSENT -> cas.getExpectAbsent() ? null : "expect_absent must be true when set";
      default -> null;
    };
  }

  private static String invalidReason(BatchOp batchOp) {
    return switch (batchOp.getOpCase()) {
      case PUT -> batchOp.getPut().getKey().isEmpty() ? "empty key" : null;
      case DELETE -> batchOp.getDelete().getKey().isEmpty() ? "empty key" : null;
      case COMPARE_AND_SET -> invalidReason(batchOp.getCompareAndSet());
      default -> "batch op has no operation";
    };
  }

  private static Response.Builder reply(Entry entry, Status status) {
    return Response.newBuilder()
        .setRequestId(entry.getRequestId())
        .setStatus(status)
        .setOp(entry.getOp());
  }

  private static Response invalid(Entry entry, String error) {
    return reply(entry, Status.INVALID).setError(error).build();
  }

  private static long nextChecksum(MessageDigest digest, long previous, Entry entry) {
    digest.reset();
    digest.update(Bytes.longToBytes(previous));
    digest.update(entry.toByteArray());
    return Bytes.getLong(digest.digest(), 0);
  }

  private static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      // Every Java platform must provide SHA-256 (MessageDigest's Javadoc).
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }

  /**
   * Pass is the working state of one apply call: the data overlay and working copies of the client rows
   * it read or changed. A row is copied once per call and turned back into a ClientRecord once at its
   * end, so an entry costs O(log replies) in the client table, not a copy of its client's row.
   */
  private final class Pass {
    final Overlay data = new Overlay(null);
    /** Rows looked up or changed in this call; a null value: no row (absent, or evicted in this call). */
    private final Map<Long, Session> sessions = new HashMap<>();
    /** Ids of the rows this call changed or evicted, in change order. */
    private final Set<Long> changed = new LinkedHashSet<>();

    /** session is clientId's row as of this point of the call, or null when there is none. */
    Session session(long clientId) {
      if (sessions.containsKey(clientId)) {
        return sessions.get(clientId);
      }
      ClientRecord record = KvStateMachine.this.clients.get(clientId);
      Session s = record == null ? null : Session.of(record);
      sessions.put(clientId, s);
      return s;
    }

    void changed(Session s) {
      sessions.put(s.clientId, s);
      changed.add(s.clientId);
    }

    void evicted(long clientId) {
      sessions.put(clientId, null);
      changed.add(clientId);
    }

    /** changedRows are the rows to write, in change order; a null value deletes the row. */
    Map<Long, ClientRecord> changedRows() {
      Map<Long, ClientRecord> rows = new LinkedHashMap<>();
      for (long id : changed) {
        Session s = sessions.get(id);
        rows.put(id, s == null ? null : s.toRecord());
      }
      return rows;
    }
  }

  /** Session is a mutable working copy of a ClientRecord, used within one apply call. */
  private static final class Session {
    final long clientId;
    long firstIncomplete;
    long lastOp;
    /** Saved replies by request id, in unsigned order. */
    final TreeMap<Long, SavedReply> replies = new TreeMap<>(Long::compareUnsigned);

    Session(long clientId) {
      this.clientId = clientId;
    }

    static Session of(ClientRecord record) {
      Session s = new Session(record.getClientId());
      s.firstIncomplete = record.getFirstIncomplete();
      s.lastOp = record.getLastOp();
      for (SavedReply saved : record.getRepliesList()) {
        s.replies.put(saved.getRequestId(), saved);
      }
      return s;
    }

    ClientRecord toRecord() {
      return ClientRecord.newBuilder()
          .setClientId(clientId)
          .setFirstIncomplete(firstIncomplete)
          .setLastOp(lastOp)
          .addAllReplies(replies.values())
          .build();
    }
  }

  /** Key wraps a byte[] key with value equality, for hash maps. */
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

  /**
   * Overlay holds data changes not yet written, on top of its parent (or of storage when the parent
   * is null): the changes of an apply call, or of a batch on top of them.
   */
  private final class Overlay {
    private final Overlay parent;
    /** Changed keys in change order; a null value marks a deleted key. */
    private final Map<Key, Versioned> changes = new LinkedHashMap<>();

    Overlay(Overlay parent) {
      this.parent = parent;
    }

    Versioned get(byte[] key) {
      Key wrapped = new Key(key);
      if (changes.containsKey(wrapped)) {
        return changes.get(wrapped);
      }
      return parent != null ? parent.get(key) : storage.get(key);
    }

    void put(byte[] key, byte[] value, long version) {
      changes.put(new Key(key), new Versioned(value, version));
    }

    /** Deletes key; returns whether it existed. */
    boolean delete(byte[] key) {
      boolean existed = get(key) != null;
      if (existed) {
        changes.put(new Key(key), null);
      }
      return existed;
    }

    void mergeIntoParent() {
      parent.changes.putAll(changes);
    }

    void writeTo(WriteSet set) {
      for (Map.Entry<Key, Versioned> change : changes.entrySet()) {
        if (change.getValue() == null) {
          set.deleteData(change.getKey().bytes());
        } else {
          set.putData(change.getKey().bytes(), change.getValue().value(), change.getValue().version());
        }
      }
    }
  }
}
