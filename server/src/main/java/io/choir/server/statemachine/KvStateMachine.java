package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import io.choir.server.storage.WriteSet;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

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
 *   <li>checksum(n) = first 8 bytes (big-endian long) of SHA-256(checksum(n-1) as 8 bytes || the bytes
 *       of entry n as stored in the log); checksum(0) = 0. {@link #nextChecksum(long, ByteString)}
 *       hashes exactly the bytes it is given; the Entry-based path hashes entry.toByteString(), which
 *       equals the stored bytes for an entry this code serialized (no unknown fields).
 *   <li>Client sessions (Raft thesis section 6.3), decided at apply time from the log alone, so the
 *       same on every replica. Each entry carries time_ms, the primary's replicated clock
 *       (non-decreasing along the log, never ahead of real time).
 *       <ul>
 *         <li>Expiry: before an entry with time T is applied, every session whose last activity +
 *             timeout is below T is removed with its saved replies (an ordered index: O(log n) per
 *             entry plus the expiries). Activity is any entry of the session (client_id = its
 *             id): executed, answered from a saved reply, or refused; it moves the session's last
 *             activity up to the entry's time, never back.
 *         <li>Session ids come from the log: a RegisterSession entry always opens a NEW session
 *             whose id is the entry's op (unique, rising along the log, never reused), answered
 *             OK with Response.session_id set to it. The entry's client_id (the client instance's
 *             random id) only names the registration request, so that the primary can recognise
 *             its retries while its entry is in flight; it is not the session's id. The session
 *             starts with the entry's first_incomplete, last activity = time_ms and the entry's
 *             timeout_ms. The primary fills in the terms; 0 means this machine's defaults
 *             (constructor). Refused (BUSY, nothing changed) when the table holds max_sessions
 *             rows: a live session is never evicted, max_sessions bounds the table by refusing
 *             registrations.
 *         <li>CloseSession (client_id = the session id): the session and its saved replies are
 *             removed (OK, also when absent).
 *         <li>Any other entry with client_id != 0 whose session is not in the table (expired,
 *             closed, never opened): SESSION_EXPIRED, nothing executed, nothing saved. Since
 *             ids are never reused, a late copy of an old request (held in a paused replica's
 *             socket buffer, resent by TCP after a partition heals) can never run again: not
 *             even after a late copy of its session's RegisterSession, which opens a new session
 *             under a new id. (With client-chosen ids such a copy re-created the old session,
 *             without its saved replies, and the old write executed a second time.)
 *         <li>Within a session: an entry whose request id has a saved reply is not executed again:
 *             the saved reply is its reply. An entry whose request id is below the session's
 *             first_incomplete is refused (INVALID, "already acknowledged"). Otherwise it executes,
 *             its reply is saved, first_incomplete rises to the entry's, lower replies are dropped,
 *             at most maxRepliesPerClient are kept (lowest dropped first).
 *         <li>client_id 0 means "no session": executed, nothing saved. RegisterSession or
 *             CloseSession with client_id 0 is INVALID (no session has id 0: ops start at 1).
 *       </ul>
 * </ul>
 *
 * <p>Choices the contract leaves open, made here:
 * <ul>
 *   <li>When the maxRepliesPerClient bound drops a reply, first_incomplete rises above its request id,
 *       so a late retry of it is refused rather than executed a second time (ClientRecord's meaning of
 *       first_incomplete: "replies below this have been forgotten"). A client must therefore keep
 *       fewer than maxRepliesPerClient requests in flight.
 *   <li>A registration retried after its entry committed (its answer lost) gets an entry of its
 *       own and opens a second session: the client uses the one whose answer it gets, and the
 *       other expires unused after its timeout. Each costs one header row and one table slot until
 *       then, and needs a lost answer to a registration that reached the log (the client's
 *       Registrar says how many attempts a registration makes).
 *   <li>A new session's first_incomplete is the registration's own (the client's lowest request id
 *       in flight), not the registration's request id + 1: after SESSION_EXPIRED the client resends
 *       in the new session, under their old request ids, the writes that answer proved were not
 *       executed, and those ids are below the registration's. Nothing has run in a new session, and
 *       the client no longer waits for any id below its first_incomplete.
 *   <li>An op that is already a session's id (only possible under rows written with client-chosen
 *       ids, before ids came from the log) opens nothing: BUSY, so the client registers again, at
 *       another op; the live session is not replaced.
 *   <li>Only an execution changes first_incomplete and the saved replies; any entry of the session
 *       changes its last_op (the op of its latest entry) and last activity.
 *   <li>A time below an earlier entry's (never produced by a correct primary) expires nothing that
 *       was live at the earlier time and moves no session's activity back.
 *   <li>Data commands: see {@link Commands}.
 * </ul>
 *
 * <p>Storage: the data space holds the keys; meta holds {@link #APPLIED_KEY}, {@link #CHECKSUM_KEY}
 * and the client table, one header row per session and one row per saved reply, so that an apply
 * writes the replies it adds and the small headers it changes, never a session's whole history (see
 * {@link ClientSessions} and {@link ClientRows}). {@link #clientTable} is the one reader that
 * assembles self-contained ClientRecords for a state transfer.
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
 * count as a member of a quorum missing committed ops): the wipe writes {@link MetaKeys#CATCHING_UP}
 * in the same synced write that removes the "installing" marker, so no crash can leave an emptied
 * replica without it; the replica reads it at start (RecoveredState.mustCatchUp), neither votes nor
 * acknowledges until it has caught up, and the core then clears it (Effects.caughtUp).
 *
 * <p>Threads: {@link #apply}, {@link #load}, the install methods and {@link #clientRecord} run on one
 * thread (the storage stage's apply lane). {@link #applied()}, {@link #checksum()}, {@link
 * #appliedState()}, {@link #clientCount()} and {@link #read} may be called from any thread: the
 * applied state is published only after the WriteSet is written, so a reader never sees an applied
 * number ahead of the data.
 */
public final class KvStateMachine {
  /** Meta key of the applied op number (8 bytes big-endian). */
  public static final String APPLIED_KEY = MetaKeys.APPLIED;

  /** Meta key of the running checksum at the applied op (8 bytes big-endian). */
  public static final String CHECKSUM_KEY = MetaKeys.CHECKSUM;

  /** Meta key prefix of the client table rows (see {@link ClientRows} for the layout). */
  public static final String CLIENT_PREFIX = MetaKeys.CLIENT_PREFIX;

  /** Session timeout for RegisterSession entries without one, unless the constructor says otherwise. */
  public static final long DEFAULT_SESSION_TIMEOUT_MS = 60_000;

  private static final byte[] APPLIED = MetaKeys.bytes(MetaKeys.APPLIED);
  private static final byte[] CHECKSUM = MetaKeys.bytes(MetaKeys.CHECKSUM);
  private static final byte[] INSTALLING = MetaKeys.bytes(MetaKeys.INSTALLING);
  private static final byte[] CATCHING_UP = MetaKeys.bytes(MetaKeys.CATCHING_UP);

  /** AppliedState is the applied op number and the checksum at it, read together. */
  public record AppliedState(long applied, long checksum) {}

  private final Storage storage;
  private final ClientSessions sessions;
  private final MessageDigest sha256 = newSha256(); // apply thread only

  private volatile AppliedState state = new AppliedState(0, 0);
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
   * KvStateMachine over storage, with the default session timeout for RegisterSession entries that
   * carry none. See {@link #KvStateMachine(Storage, int, int, long)}.
   */
  public KvStateMachine(Storage storage, int maxClientSessions, int maxRepliesPerClient) {
    this(storage, maxClientSessions, maxRepliesPerClient, DEFAULT_SESSION_TIMEOUT_MS);
  }

  /**
   * KvStateMachine over storage. Call {@link #load} before the first apply when storage may already
   * hold state (a restart, an installed snapshot).
   *
   * @param maxClientSessions the table bound for RegisterSession entries without max_sessions (the
   *     primary writes its own into every registration, so this is a default, as is the timeout)
   * @param maxRepliesPerClient saved replies kept per session; must be the same on every replica
   * @param defaultSessionTimeoutMs the timeout for RegisterSession entries without timeout_ms
   */
  public KvStateMachine(
      Storage storage, int maxClientSessions, int maxRepliesPerClient, long defaultSessionTimeoutMs) {
    if (maxClientSessions < 1) {
      throw new IllegalArgumentException("maxClientSessions must be at least 1: " + maxClientSessions);
    }
    if (maxRepliesPerClient < 1) {
      throw new IllegalArgumentException(
          "maxRepliesPerClient must be at least 1: " + maxRepliesPerClient);
    }
    if (defaultSessionTimeoutMs < 1) {
      throw new IllegalArgumentException(
          "defaultSessionTimeoutMs must be at least 1: " + defaultSessionTimeoutMs);
    }
    this.storage = storage;
    this.sessions = new ClientSessions(maxClientSessions, defaultSessionTimeoutMs, maxRepliesPerClient);
  }

  /**
   * Loads applied, checksum and the client table from storage, replacing what is in memory (so it
   * also recovers from a failed apply and follows an installed snapshot). Runs on the apply thread.
   *
   * <p>When storage holds the "installing" marker (a crash, or a failed transfer given up, in the
   * middle of an install), it first wipes the replica to the empty state: applied 0, checksum 0, no
   * data, no client rows, no log; then, in one synced write, removes the marker and sets {@link
   * MetaKeys#CATCHING_UP}; see the class comment for why that is safe and what the replica must then
   * do ({@link #wipedInterruptedInstall()} tells too). Each step is idempotent and the markers change
   * last, together, so a crash during the wipe just wipes again.
   *
   * @throws io.choir.server.storage.StorageException when a client table row is malformed or a saved
   *     reply row has no session header
   */
  public void load() {
    wipedInterruptedInstall = false;
    if (storage.getMeta(INSTALLING) != null) {
      storage.beginInstall(); // data, client rows, applied, checksum gone; marker kept, synced
      storage.truncateLogAfter(0, false);
      // Synced, so the log truncation before it is durable too when the marker is gone; the
      // catching-up marker comes in the same write, so an emptied replica always carries it.
      storage.write(
          new WriteSet().deleteMeta(INSTALLING).putMeta(CATCHING_UP, new byte[] {1}), true);
      wipedInterruptedInstall = true;
    }
    byte[] applied = storage.getMeta(APPLIED);
    byte[] checksum = storage.getMeta(CHECKSUM);
    WriteSet rewrite = sessions.load(storage.scanMeta(ClientRows.PREFIX));
    if (!rewrite.isEmpty()) {
      storage.write(rewrite, true); // rows of the layout before explicit sessions, in this one
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
    sessions.clear();
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
   * log, then in ONE synced WriteSet writes the client table (clients: self-contained records, as
   * {@link #clientTable} reads them, written back in the row-per-reply layout), applied = op, checksum
   * and deletes the "installing" marker; then reloads the in-memory state from storage. It does not
   * touch {@link MetaKeys#CATCHING_UP}: the core decides when the replica has caught up.
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
   * @throws IllegalArgumentException when op is below 1, two client records share a client id, a
   *     client id is 0 or a record holds two replies of one request
   */
  public void installSnapshot(long op, long checksum, List<ClientRecord> clients) {
    if (op < 1) {
      throw new IllegalArgumentException("a snapshot is taken at op 1 or above: " + op);
    }
    Set<Long> ids = new HashSet<>();
    for (ClientRecord record : clients) {
      String problem = ClientRows.problem(record);
      if (problem == null && !ids.add(record.getClientId())) {
        problem = "client " + Long.toUnsignedString(record.getClientId()) + " appears twice";
      }
      if (problem != null) {
        throw new IllegalArgumentException("snapshot client table: " + problem);
      }
    }
    if (storage.getMeta(INSTALLING) == null) {
      throw new IllegalStateException(
          "no state transfer is being installed (no marker in storage): call beginInstall first");
    }
    storage.truncateLogAfter(0, false);
    WriteSet set = new WriteSet();
    for (ClientRecord record : clients) {
      ClientRows.write(record, set);
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
   * state (and set {@link MetaKeys#CATCHING_UP}): the replica must catch up before it takes part in a
   * view change.
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

  /**
   * The self-contained client table row of the session clientId (its id: the op of its registration,
   * ClientRecord.client_id), its saved replies included, or null. Apply
   * thread only (or while no apply, load or install runs): it reads the table the apply mutates.
   */
  public ClientRecord clientRecord(long clientId) {
    return sessions.record(clientId);
  }

  /** The number of client sessions as of the last written apply (any thread). */
  public int clientCount() {
    return sessions.count();
  }

  /** The number of keys, estimated by RocksDB (any thread). */
  public long keyCount() {
    return storage.approximateKeyCount();
  }

  /**
   * The client table as of snapshot, one self-contained record per session (its saved replies
   * included), in client id order: what a state transfer streams and {@link #installSnapshot} takes.
   * The one reader outside this package of how the table is laid out in storage.
   *
   * @throws io.choir.server.storage.StorageException on a malformed or orphan client table row
   */
  public static List<ClientRecord> clientTable(StorageSnapshot snapshot) {
    return ClientRows.records(snapshot.scanMeta(ClientRows.PREFIX));
  }

  /** The meta key of clientId's client table header row: "client/" and the id as 8 bytes BE. */
  public static byte[] clientKey(long clientId) {
    return ClientRows.clientKey(clientId);
  }

  /**
   * The checksum after applying an entry whose stored bytes are entryBytes at a state whose checksum
   * is previous: exactly those bytes are hashed (see the contract).
   */
  public static long nextChecksum(long previous, ByteString entryBytes) {
    return nextChecksum(newSha256(), previous, entryBytes);
  }

  /**
   * The checksum after applying entry at a state whose checksum is previous, hashing
   * entry.toByteString(): equal to {@link #nextChecksum(long, ByteString)} over the entry's stored
   * bytes when those are this serialization (true for entries without unknown fields).
   */
  public static long nextChecksum(long previous, Entry entry) {
    return nextChecksum(previous, entry.toByteString());
  }

  /**
   * Applies entries (see the class comment), hashing each entry's own serialization into the checksum;
   * returns one reply per entry, in order. Throws IllegalStateException when the entries do not
   * continue from applied(): applying a gap or an op twice would silently diverge from the other
   * replicas.
   */
  public List<Response> apply(List<Entry> entries, boolean sync) {
    return apply(entries, null, sync);
  }

  /**
   * Applies entries like {@link #apply(List, boolean)}, with entryBytes.get(i) the bytes entry i is
   * stored as in the log (what the checksum hashes), or entryBytes null to serialize each entry. The
   * caller vouches that the bytes parse to the entries.
   */
  public List<Response> apply(List<Entry> entries, List<ByteString> entryBytes, boolean sync) {
    if (installing()) {
      throw new IllegalStateException(
          "a state transfer is being installed; entries cannot be applied to a partial state");
    }
    if (needsLoad) {
      throw new IllegalStateException(
          "an earlier apply failed; the state machine must be reloaded from storage");
    }
    if (entryBytes != null && entryBytes.size() != entries.size()) {
      throw new IllegalArgumentException(
          entries.size() + " entries but " + entryBytes.size() + " stored byte strings");
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
    needsLoad = true; // until the WriteSet is written: the table is changed in place meanwhile
    Overlay data = new Overlay(storage);
    List<Response> replies = new ArrayList<>(entries.size());
    long checksum = start.checksum();
    for (int i = 0; i < entries.size(); i++) {
      Entry entry = entries.get(i);
      replies.add(applyOne(entry, data));
      ByteString bytes = entryBytes != null ? entryBytes.get(i) : entry.toByteString();
      checksum = nextChecksum(sha256, checksum, bytes);
    }
    long applied = entries.get(entries.size() - 1).getOp();

    WriteSet set = new WriteSet();
    data.writeTo(set);
    set.putMeta(APPLIED, Bytes.longToBytes(applied));
    set.putMeta(CHECKSUM, Bytes.longToBytes(checksum));
    sessions.writeTo(set);
    storage.write(set, sync);

    sessions.committed();
    state = new AppliedState(applied, checksum); // last: readers see applied only after the data
    needsLoad = false;
    return replies;
  }

  /** Applies one entry within a call: expiry by its time, the session rules, then the command. */
  private Response applyOne(Entry entry, Overlay data) {
    sessions.expireBefore(entry.getTimeMs());
    switch (entry.getCommandCase()) {
      case REGISTER_SESSION -> {
        return sessions.register(entry);
      }
      case CLOSE_SESSION -> {
        return sessions.close(entry);
      }
      default -> {
        if (entry.getClientId() == 0) {
          return Commands.execute(entry, data);
        }
        return sessions.executeOnce(entry, e -> Commands.execute(e, data));
      }
    }
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
    return read(request, maxScanLimit, Long.MAX_VALUE);
  }

  /**
   * Like {@link #read(Request, int)}, and a Scan's pairs also hold at most maxScanBytes (counted by
   * {@link io.choir.server.storage.StateStore#pairBytes}), except that a first pair is always returned:
   * more is then true as well, and the client continues from the last key it got.
   */
  public Response read(Request request, int maxScanLimit, long maxScanBytes) {
    if (maxScanLimit < 1) {
      throw new IllegalArgumentException("maxScanLimit must be at least 1: " + maxScanLimit);
    }
    long epoch = installEpoch;
    if ((epoch & 1) == 0) {
      Response answer = Reads.answer(storage, request, applied(), maxScanLimit, maxScanBytes);
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

  private static long nextChecksum(MessageDigest digest, long previous, ByteString entryBytes) {
    digest.reset();
    digest.update(Bytes.longToBytes(previous));
    for (ByteBuffer piece : entryBytes.asReadOnlyByteBufferList()) {
      digest.update(piece);
    }
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
}
