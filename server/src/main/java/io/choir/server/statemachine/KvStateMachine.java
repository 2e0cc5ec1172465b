package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseRecord;
import io.choir.proto.MembershipRecord;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.WriteSet;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * KvStateMachine applies committed log entries to the data, deterministically: the same entries in the
 * same order give the same data, replies, client table and checksum on every replica, however the
 * entries are grouped into {@link #apply} calls. It is the facade of its parts, each with one job:
 *
 * <ul>
 *   <li>{@link EntryApplier}: a run of entries to replies and one WriteSet ({@link Commands} for the
 *       data commands over an {@link Overlay}, {@link ChecksumChain} for the checksum);
 *   <li>{@link ClientSessions}: the client table and its rules (its class comment), laid out in
 *       storage by {@link ClientRows};
 *   <li>{@link LeaseTable}: the leases and their keys, with the rules of {@link LeaseCommands}; the
 *       lease queries of this facade are {@link LeaseQueries};
 *   <li>{@link SnapshotInstall}: replacing the state by a state transfer, and wiping an interrupted one;
 *   <li>{@link Reads}: Get and Scan from the applied state, never from a partial one.
 * </ul>
 *
 * <p>This class owns the applied state (the applied number and the checksum, published only after
 * their write) and whether the in-memory table must be reloaded. Contract:
 *
 * <ul>
 *   <li>{@link #apply} takes consecutive entries starting at applied() + 1 and writes, in ONE atomic
 *       {@link WriteSet}, their data changes, the new applied number, the new checksum and the changed
 *       client table rows. Every entry is applied, even one whose command is invalid (it gets an
 *       INVALID reply and changes no data), so applied() and the checksum always follow the log.
 *   <li>checksum(n) = first 8 bytes (big-endian long) of SHA-256(checksum(n-1) as 8 bytes || the bytes
 *       of entry n as stored in the log); checksum(0) = 0. {@link #nextChecksum(long, ByteString)}
 *       hashes exactly the bytes it is given; the Entry-based path hashes entry.toByteString(), which
 *       equals the stored bytes for an entry this code serialized (no unknown fields).
 *   <li>Client sessions (Raft thesis section 6.3): see {@link ClientSessions}. Data commands: see
 *       {@link Commands}.
 *   <li>While a state transfer is being installed ({@link #beginInstall} to {@link #installSnapshot},
 *       see {@link SnapshotInstall}), {@link #apply} is refused (it would build on a partial state)
 *       and {@link #read} answers UNAVAILABLE. After a crash in the middle of one, {@link #load} wipes
 *       the replica to the empty state and marks it {@link MetaKeys#CATCHING_UP}.
 * </ul>
 *
 * <p>Storage: the data space holds the keys; meta holds {@link #APPLIED_KEY}, {@link #CHECKSUM_KEY}
 * the membership row ({@link MembershipRow}) and the client table, one header row per session and one row per saved reply, so that an apply
 * writes the replies it adds and the small headers it changes, never a session's whole history (see
 * {@link ClientSessions} and {@link ClientRows}). {@link TransferRows#clientTable} is the one reader that
 * assembles self-contained ClientRecords for a state transfer.
 *
 * <p>Threads: {@link #apply}, {@link #load}, the install methods and {@link #clientRecord} run on one
 * thread (the storage stage's apply lane). {@link #applied()}, {@link #checksum()}, {@link
 * #appliedState()}, {@link #clientCount()} and {@link #read} may be called from any thread: the
 * applied state is published only after the WriteSet is written, so a reader never sees an applied
 * number ahead of the data.
 */
public final class KvStateMachine {
  private static final Logger log = LoggerFactory.getLogger(KvStateMachine.class);
  /** Meta key of the applied op number (8 bytes big-endian). */
  public static final String APPLIED_KEY = MetaKeys.APPLIED;

  /** Meta key of the running checksum at the applied op (8 bytes big-endian). */
  public static final String CHECKSUM_KEY = MetaKeys.CHECKSUM;

  /** Meta key prefix of the client table rows (see {@link ClientRows} for the layout). */
  public static final String CLIENT_PREFIX = MetaKeys.CLIENT_PREFIX;

  /** Session timeout for RegisterSession entries without one, unless the constructor says otherwise. */
  public static final long DEFAULT_SESSION_TIMEOUT_MS = 60_000;
  /** The default bound of {@link RecentValues}: the values of recently used keys kept in memory. */
  public static final long DEFAULT_RECENT_VALUES_BYTES = 32L << 20;

  private static final byte[] APPLIED = MetaKeys.bytes(MetaKeys.APPLIED);
  private static final byte[] CHECKSUM = MetaKeys.bytes(MetaKeys.CHECKSUM);
  private static final byte[] MEMBERSHIP = MetaKeys.bytes(MetaKeys.MEMBERSHIP);

  /** AppliedState is the applied op number and the checksum at it, read together. */
  public record AppliedState(long applied, long checksum) {}

  private final Storage storage;
  private final ClientSessions sessions;
  private final EntryApplier applier;
  private final SnapshotInstall install;
  private final Reads reads;
  private final MembershipRow membership = new MembershipRow();
  private final LeaseTable leases = new LeaseTable();
  private final LeaseQueries leaseQueries = new LeaseQueries(leases);
  private final RecentValues recent;

  private volatile AppliedState state = new AppliedState(0, 0);
  /** The replicated clock of the last applied entry (see {@link #lastTimeMs()}). */
  private volatile long lastTimeMs;
  /** Hears every applied change and every replacement of the state (the watches); null: none. */
  private volatile ChangeListener changes;
  /** True while an apply call runs, and after one failed: the in-memory table must be reloaded. */
  private boolean needsLoad;

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
    this(storage, maxClientSessions, maxRepliesPerClient, defaultSessionTimeoutMs, DEFAULT_RECENT_VALUES_BYTES);
  }

  /**
   * Like {@link #KvStateMachine(Storage, int, int, long)}, keeping the values of recently used keys in
   * memory up to recentValuesBytes (0: none) so that writes need not read the values they replace
   * from storage ({@link RecentValues}).
   */
  public KvStateMachine(Storage storage, int maxClientSessions, int maxRepliesPerClient,
      long defaultSessionTimeoutMs, long recentValuesBytes) {
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
    this.recent = new RecentValues(recentValuesBytes);
    this.applier = new EntryApplier(storage, sessions, membership, leases, recent);
    this.install = new SnapshotInstall(storage);
    this.reads = new Reads(storage, recent, install, this::applied, leases, this::lastTimeMs);
  }

  /**
   * Loads applied, checksum and the client table from storage, replacing what is in memory (so it
   * also recovers from a failed apply and follows an installed snapshot). Runs on the apply thread.
   *
   * <p>When storage holds the "installing" marker (a crash, or a failed transfer given up, in the
   * middle of an install), it first wipes the replica to the empty state and marks it {@link
   * MetaKeys#CATCHING_UP} ({@link SnapshotInstall#wipeIfInterrupted}; {@link
   * #wipedInterruptedInstall()} tells).
   *
   * @throws io.choir.server.storage.StorageException when a client table row is malformed or a saved
   *     reply row has no session header
   */
  public void load() {
    recent.clear();
    install.wipeIfInterrupted();
    byte[] applied = storage.getMeta(APPLIED);
    byte[] checksum = storage.getMeta(CHECKSUM);
    membership.load(storage.getMeta(MEMBERSHIP));
    leases.load(storage.scanMeta(LeaseTable.PREFIX));
    WriteSet rewrite = sessions.load(storage.scanMeta(ClientRows.PREFIX));
    if (!rewrite.isEmpty()) {
      storage.write(rewrite, true); // rows of the layout before explicit sessions, in this one
    }
    state =
        new AppliedState(
            applied == null ? 0 : Bytes.bytesToLong(applied),
            checksum == null ? 0 : Bytes.bytesToLong(checksum));
    lastTimeMs = Math.max(leases.latestActivityMs(), loggedTimeMs(state.applied()));
    needsLoad = false;
    install.markWhole();
    tellReplaced();
  }

  /**
   * Sets who hears the applied changes (apply thread, or before the first apply): from now on every
   * apply records each entry's changes with the previous values (one more read of each written key)
   * and reports them after publishing the new state; every load and install reports a replacement.
   * It is told the current applied op at once ({@link ChangeListener#replaced}).
   */
  public void changeListener(ChangeListener listener) {
    this.changes = listener;
    tellReplaced();
  }

  private void tellReplaced() {
    ChangeListener listener = changes;
    if (listener != null) {
      try {
        listener.replaced(state.applied());
      } catch (RuntimeException e) {
        log.atWarn().setCause(e).log("the change listener failed on a replaced state");
      }
    }
  }

  /**
   * Starts installing a state transfer (apply thread): marks the in-memory state as being replaced
   * (reads answer UNAVAILABLE, apply is refused), shows applied 0 and an empty client table, and calls
   * {@link Storage#beginInstall()} (marker set and state wiped, synced). Calling it again while
   * installing restarts the install from empty (a new fetch after a failed one).
   */
  public void beginInstall() {
    install.markBegun(); // before touching storage: readers must never see the wipe as a state
    needsLoad = true;
    recent.clear();
    sessions.clear();
    leases.clear();
    state = new AppliedState(0, 0);
    install.wipeForInstall();
  }

  /**
   * Writes one chunk of snapshot pairs (apply thread, between {@link #beginInstall} and {@link
   * #installSnapshot}); unsynced, made durable by installSnapshot's synced write.
   */
  public void installData(List<KeyValue> kvs) {
    install.installData(kvs);
  }

  /**
   * Finishes installing a state transfer taken at op with checksum (apply thread): truncates the whole
   * log, then in ONE synced WriteSet writes the client table (clients: self-contained records, as
   * {@link TransferRows#clientTable} reads them), applied = op, checksum and deletes the "installing" marker (see
   * {@link SnapshotInstall#finish} for why in this order); then reloads the in-memory state from
   * storage. It does not touch {@link MetaKeys#CATCHING_UP}: the core decides when the replica has
   * caught up.
   *
   * @throws IllegalStateException when storage holds no install marker (no beginInstall, or the
   *     install was wiped by a restart in between)
   * @throws IllegalArgumentException when op is below 1, two client records share a client id, a
   *     client id is 0 or a record holds two replies of one request
   */
  public void installSnapshot(long op, long checksum, List<ClientRecord> clients) {
    installSnapshot(op, checksum, clients, null);
  }

  /**
   * Like {@link #installSnapshot(long, long, List)}, with the snapshot's membership row written in the
   * same synced WriteSet (epoch 0: the bootstrap membership, the row is removed; null: none was sent,
   * the row is kept).
   */
  public void installSnapshot(long op, long checksum, List<ClientRecord> clients, MembershipRecord members) {
    installSnapshot(op, checksum, clients, members, List.of());
  }

  /**
   * Like {@link #installSnapshot(long, long, List, MembershipRecord)}, with the snapshot's lease table
   * (self-contained records, as {@link TransferRows#leaseTable} reads them) written in the same synced WriteSet.
   *
   * @throws IllegalArgumentException when a lease record is malformed or two share an id
   */
  public void installSnapshot(long op, long checksum, List<ClientRecord> clients, MembershipRecord members,
      List<LeaseRecord> leaseRecords) {
    install.finish(op, checksum, clients, members, leaseRecords);
    load();
  }

  // The lease facade: each body is in LeaseQueries (its comments say more).

  /** The number of live leases as of the last apply (any thread). */
  public int leaseCount() {
    return leaseQueries.count();
  }

  /** The number of keys attached to a lease as of the last apply (any thread). */
  public long leaseKeyCount() {
    return leaseQueries.keyCount();
  }

  /** Leases granted, kept alive, revoked and expired by applied entries since this start (any thread). */
  public LeaseCounts leaseCounts() {
    return leaseQueries.counts();
  }

  /** LeaseCounts are the lease counters of {@link #leaseCounts()}. */
  public record LeaseCounts(long granted, long keepAlives, long revoked, long expired) {}

  /** The ids of up to max live leases expired by nowMs (replicated clock), earliest first (any thread). */
  public List<Long> leasesExpiredBy(long nowMs, int max) {
    return leaseQueries.expiredBy(nowMs, max);
  }

  /** The earliest deadline of a live lease (replicated clock, ms), or Long.MAX_VALUE (any thread). */
  public long earliestLeaseDeadline() {
    return leaseQueries.earliestDeadline();
  }

  /** The time_ms of the applied entry op when the log still holds it, else 0. */
  private long loggedTimeMs(long op) {
    if (op < 1 || op < storage.firstLogOp() || op > storage.lastLogOp()) {
      return 0;
    }
    List<Entry> entries = storage.readLog(op, op, Integer.MAX_VALUE);
    return entries.isEmpty() ? 0 : entries.get(0).getTimeMs();
  }

  /**
   * The replicated clock as of the applied state, a lower bound (any thread): the time_ms of the last
   * applied entry, or after a load the newest of the last applied entry still in the log and every
   * lease's latest grant or keep-alive; 0 when none is known.
   */
  public long lastTimeMs() {
    return lastTimeMs;
  }

  /**
   * Writes the membership row that a state transfer brought beside its snapshot (apply thread, right
   * after installSnapshot): the snapshot's row (epoch 0: the bootstrap membership), synced.
   */
  public void installMembership(MembershipRecord record) {
    WriteSet set = new WriteSet();
    MembershipRow.install(record, set);
    storage.write(set, true);
    membership.load(storage.getMeta(MEMBERSHIP));
  }

  /**
   * The membership after the last applied configuration entry (epoch 0: none applied, the bootstrap
   * membership of the configuration), as of the last written apply or load (any thread).
   */
  public MembershipRecord membership() {
    return membership.current();
  }

  /** True from {@link #beginInstall} until the install is finished or wiped (any thread). */
  public boolean installing() {
    return install.installing();
  }

  /**
   * True when the last {@link #load} found an interrupted install and wiped the replica to the empty
   * state (and set {@link MetaKeys#CATCHING_UP}): the replica must catch up before it takes part in a
   * view change.
   */
  public boolean wipedInterruptedInstall() {
    return install.wipedInterruptedInstall();
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
   * The checksum after applying an entry whose stored bytes are entryBytes at a state whose checksum
   * is previous: exactly those bytes are hashed (see the contract).
   */
  public static long nextChecksum(long previous, ByteString entryBytes) {
    return ChecksumChain.nextOnce(previous, entryBytes);
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
    AppliedState start = state;
    EntryApplier.checkContinues(start.applied(), entries, entryBytes);
    if (entries.isEmpty()) {
      return List.of();
    }
    needsLoad = true; // until the WriteSet is written: the table is changed in place meanwhile
    ChangeListener listener = changes;
    EntryApplier.Applied done = applier.apply(start.checksum(), entries, entryBytes, listener != null);
    recent.writing(); // readers of recent values go to storage until they are published
    try {
      storage.write(done.set(), sync);
    } catch (RuntimeException e) {
      membership.abandon();
      recent.clear();
      throw e;
    }
    done.data().written();
    recent.published();

    sessions.committed();
    membership.committed();
    leases.committed();
    lastTimeMs = Math.max(lastTimeMs, entries.get(entries.size() - 1).getTimeMs());
    // Last: readers see applied only after the data.
    state = new AppliedState(done.applied(), done.checksum());
    needsLoad = false;
    if (listener != null) {
      try {
        listener.applied(done.changes(), done.applied());
      } catch (RuntimeException e) {
        log.atWarn().setCause(e).log("the change listener failed; the entries are applied");
      }
    }
    return done.replies();
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
   * {@link io.choir.server.storage.StateStore#pairBytes}), except that a first pair is always
   * returned: more is then true as well, and the client continues from the last key it got.
   */
  public Response read(Request request, int maxScanLimit, long maxScanBytes) {
    return reads.read(request, maxScanLimit, maxScanBytes);
  }

  /**
   * The answer {@link #read} gives to a Get, when the storage has it in memory (memtables, block
   * cache); null when that needs the disk or request is no Get: call {@link #read} then. Never waits
   * for I/O, so an event loop may call it. Any thread.
   */
  public Response readFromMemory(Request request) {
    return reads.readFromMemory(request);
  }
}
