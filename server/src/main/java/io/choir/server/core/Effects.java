package io.choir.server.core;

import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * Effects is everything one burst of {@link ReplicaCore} steps asks its caller to do (etcd-io/raft's
 * Ready, without its channels). The core asks through methods ({@link #send}, {@link #persist}, {@link
 * #tickBy} ...); Effects keeps each ask as an {@link Effect} in the order the core asked, and {@link
 * #toExecute} hands the caller the burst's effects merged and in the order they must be carried out:
 * <ol>
 *   <li>{@link PersistView} (synced, before anything is sent: VR Revisited 4.2, a replica never goes
 *       back to an older view after a crash);
 *   <li>in storage (log lane) order: {@link TruncateLogAfter}, {@link Persist}, {@link
 *       PersistLastNormalView} (after the log writes it vouches for);
 *   <li>{@link Send}s, {@link Apply}, {@link TruncateLogBefore}, {@link Retransmit}s, {@link
 *       FetchState}, {@link Read}s, {@link Reply}s (one per connection), {@link PauseIntake} and {@link
 *       PeersChanged}.
 * </ol>
 * Besides, the caller steps a Tick again at {@link #nextTickNs} at the latest.
 *
 * <p>A burst is many steps, so one kind may be asked for several times; the merges, and why each
 * leaves the same outcome as carrying out every ask in turn:
 * <ul>
 *   <li>Persist: all of a burst's entries go in one log write, in the order asked (one fsync per
 *       burst: batching without a linger timer, DESIGN.md "Replication"). They are written after the
 *       truncation, which is right because an entry asked before a truncation survives it only when it
 *       lies at or below the truncation's op, where the truncation does not touch it.
 *   <li>TruncateLogAfter: the lowest op wins, and each truncation drops the burst's entries asked
 *       before it above its op (they are gone from the log, and a Persist of them would bring them
 *       back). Truncating above the lowest op removes a superset of what every higher one removes, so
 *       one truncation, run before the burst's entries, leaves the log every ask in turn would.
 *   <li>The Persist's epoch is the burst's latest (the last {@link #logEpoch} asked): epochs only grow
 *       with truncations, and every entry the Persist still holds is in the log of the latest epoch
 *       (those above a later truncation were dropped with it).
 *   <li>PersistView: the latest wins. Views only rise, and the record of a higher view also keeps the
 *       replica from going back to the lower one; it is synced before every send of the burst, those of
 *       the lower view included.
 *   <li>PersistLastNormalView: the latest wins (the last normal view only rises too), written after all
 *       of the burst's log writes, so it vouches for no entry that is not on disk. caughtUp holds when
 *       any step of the burst asked for it: the log was complete again then and stays so.
 *   <li>TruncateLogBefore: the latest wins (the log's retention only moves forward, so the latest op
 *       removes a superset of every earlier one).
 *   <li>PeersChanged: the latest wins (it carries the whole membership, and the latest is the current one).
 *   <li>FetchState and PauseIntake: the latest wins. A fetch asked later comes from the core's newer
 *       state (the primary of its current view); intake is a level, and the latest ask is what the core
 *       wants now.
 *   <li>Sends, Retransmits and Reads are carried out each, in the order asked; Apply holds every entry
 *       of the burst in op order (one task on the apply lane).
 *   <li>Replies: grouped per connection, each connection's in the order asked, connections in the order
 *       of their first reply (one write and flush per connection; order across sockets means nothing).
 *   <li>nextTickNs: the earliest wins; each part asks for a Tick by its own deadline, and a Tick that
 *       comes early is harmless (every timer checks its own time).
 * </ul>
 * The caller owns the object and {@link #clear}s it between bursts.
 */
public final class Effects {
  /** Destination of a peer message sent to every replica by multicast. */
  public static final int MULTICAST = 0;

  /** One kind of thing the core asks its caller to do: a record per kind, handed to a {@link Handler}. */
  public sealed interface Effect permits PersistView, TruncateLogAfter, Persist, PersistLastNormalView,
      Send, Apply, TruncateLogBefore, Retransmit, FetchState, Read, Reply, PauseIntake, PeersChanged {
    /** Calls the method of handler for this effect's kind. */
    void carryOut(Handler handler);
  }

  /**
   * What carries out effects: one method per kind, so a new kind does not compile until every handler
   * handles it (Java 17 has no pattern switch over a sealed type; this is its exhaustive stand-in).
   */
  public interface Handler {
    void persistView(PersistView e);

    void truncateLogAfter(TruncateLogAfter e);

    void persist(Persist e);

    void persistLastNormalView(PersistLastNormalView e);

    void send(Send e);

    void apply(Apply e);

    void truncateLogBefore(TruncateLogBefore e);

    void retransmit(Retransmit e);

    void fetchState(FetchState e);

    void read(Read e);

    void reply(Reply e);

    void pauseIntake(PauseIntake e);

    void peersChanged(PeersChanged e);
  }

  /**
   * Durably record view (storage meta, synced) before any message of this burst is sent; nothing to
   * report back.
   */
  public record PersistView(long view) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.persistView(this);
    }
  }

  /**
   * Log lane, before this burst's Persist: remove the log's entries above op (a new view replaces an
   * uncommitted suffix); nothing to report back (the Persist's epoch tells the core which writes count).
   */
  public record TruncateLogAfter(long op) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.truncateLogAfter(this);
    }
  }

  /**
   * Log lane: append entries (in op order), make them durable, then report Event.Persisted(last op,
   * epoch): a report of an older epoch than the core's is of entries a truncation removed. An ask
   * carries the epoch of its step; the burst's one Persist carries the burst's latest.
   */
  public record Persist(List<Entry> entries, long epoch) implements Effect {
    public Persist {
      entries = List.copyOf(entries);
    }

    @Override
    public void carryOut(Handler handler) {
      handler.persist(this);
    }
  }

  /**
   * Log lane, after this burst's log writes (and every earlier one): durably record lastNormalView (a
   * replica must never claim a last normal view whose log is not on disk yet), then report
   * Event.LastNormalViewPersisted. When caughtUp, the replica's log is complete again after it had lost
   * state (RecoveredState.mustCatchUp): clear the catching-up marker in the same write. An ask has
   * caughtUp false; the burst's {@link Effects#caughtUp} is merged into the one it carries out.
   */
  public record PersistLastNormalView(long lastNormalView, boolean caughtUp) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.persistLastNormalView(this);
    }
  }

  /** Send a peer message to a replica id, or to {@link #MULTICAST}; view is the header's view. */
  public record Send(int to, long view, MessageType type, MessageLite body) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.send(this);
    }
  }

  /** Apply lane: apply committed entries (in op order), then report Event.Applied with their replies. */
  public record Apply(List<Entry> entries) implements Effect {
    public Apply {
      entries = List.copyOf(entries);
    }

    @Override
    public void carryOut(Handler handler) {
      handler.apply(this);
    }
  }

  /**
   * Log lane: remove the log's entries below op (they are applied everywhere that matters); nothing to
   * report back.
   */
  public record TruncateLogBefore(long op) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.truncateLogBefore(this);
    }
  }

  /**
   * Read entries fromOp..toOp, no longer in the core's memory, from the log and send them as PREPAREs
   * (with commit) to a replica or by multicast, stopping once maxBytes of entries are sent (the rest is
   * asked for again). Ops the log no longer holds are skipped: the heartbeat's low watermark tells that
   * replica to ask for a state transfer. Nothing to report back.
   */
  public record Retransmit(int to, long view, long fromOp, long toOp, long commit, long maxBytes)
      implements Effect {
    /** Entries fromOp..toOp with no byte bound (tests). */
    public Retransmit(int to, long view, long fromOp, long toOp, long commit) {
      this(to, view, fromOp, toOp, commit, Long.MAX_VALUE);
    }

    @Override
    public void carryOut(Handler handler) {
      handler.retransmit(this);
    }
  }

  /**
   * Fetch a state transfer from replica from, then report Event.StateInstalled or
   * Event.StateTransferFailed.
   */
  public record FetchState(int from) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.fetchState(this);
    }
  }

  /**
   * Execute a read against the applied state (which has reached what the read needs) and answer it on
   * connectionId; nothing to report back.
   */
  public record Read(long connectionId, Request request) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.read(this);
    }
  }

  /** Send responses, in order, on connection connectionId (one write for all of them). */
  public record Reply(long connectionId, List<Response> responses) implements Effect {
    public Reply {
      responses = List.copyOf(responses);
    }

    @Override
    public void carryOut(Handler handler) {
      handler.reply(this);
    }
  }

  /** Pause (true) or resume (false) reading requests from clients. */
  public record PauseIntake(boolean paused) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.pauseIntake(this);
    }
  }

  /**
   * The membership changed (a configuration entry was applied, or a state transfer installed another
   * epoch's): the transport's peer set is now its voters and learners (DESIGN.md "Membership").
   */
  public record PeersChanged(Membership membership) implements Effect {
    @Override
    public void carryOut(Handler handler) {
      handler.peersChanged(this);
    }
  }

  /** Every ask of this burst, in the order the core asked. */
  private final List<Effect> asked = new ArrayList<>();
  /** The core's latest log epoch: the Persist's epoch (see the class comment). */
  private long logEpoch;
  /** Whether a step asked to clear the catching-up marker with the last normal view. */
  private boolean caughtUp;
  /** The earliest Tick asked for (absolute, the clock of nowNs); MAX_VALUE: none. */
  private long nextTickNs = Long.MAX_VALUE;

  // ---------------------------------------------------------------- what the core asks for

  /** Sends a peer message to replica to (or {@link #MULTICAST}) with view in its header. */
  public void send(int to, long view, MessageType type, MessageLite body) {
    asked.add(new Send(to, view, type, body));
  }

  /** Answers a client on a connection. */
  public void reply(long connectionId, Response response) {
    asked.add(new Reply(connectionId, List.of(response)));
  }

  /** Runs a read against the applied state (which has reached what it needs). */
  public void read(long connectionId, Request request) {
    asked.add(new Read(connectionId, request));
  }

  /** Appends an entry to the log (after this burst's truncation, if any). */
  public void persist(Entry entry) {
    asked.add(new Persist(List.of(entry), logEpoch));
  }

  /** Appends entries, in op order, to the log. */
  public void persistAll(List<Entry> entries) {
    asked.add(new Persist(entries, logEpoch));
  }

  /** Applies a committed entry (in op order). */
  public void apply(Entry entry) {
    asked.add(new Apply(List.of(entry)));
  }

  /** Resends entries from the log. */
  public void retransmit(Retransmit retransmit) {
    asked.add(retransmit);
  }

  /** Removes log entries below op (at least 1; the latest such request of a burst wins). */
  public void truncateLogBefore(long op) {
    if (op < 1) {
      throw new IllegalArgumentException("truncate the log before op " + op);
    }
    asked.add(new TruncateLogBefore(op));
  }

  /**
   * Removes log entries above op (at least 0) before this burst's appends (the lowest such op of a
   * burst wins); entries above op that this burst asked to persist so far are dropped, as they are gone
   * from the log.
   */
  public void truncateLogAfter(long op) {
    if (op < 0) {
      throw new IllegalArgumentException("truncate the log after op " + op);
    }
    asked.add(new TruncateLogAfter(op));
  }

  /** The core's log epoch, with which the caller reports this burst's Persist back. */
  public void logEpoch(long epoch) {
    logEpoch = epoch;
  }

  /** Durably records view before any message of this burst is sent. */
  public void persistView(long view) {
    asked.add(new PersistView(view));
  }

  /** Durably records the last normal view after this burst's log writes. */
  public void persistLastNormalView(long lastNormalView) {
    asked.add(new PersistLastNormalView(lastNormalView, false));
  }

  /** With the last normal view: clears the catching-up marker (the log is complete again). */
  public void caughtUp() {
    caughtUp = true;
  }

  /** Fetches a state transfer from replica (an id, at least 1). */
  public void fetchStateFrom(int replica) {
    if (replica < 1) {
      throw new IllegalArgumentException("fetch a state transfer from replica " + replica);
    }
    asked.add(new FetchState(replica));
  }

  /** Pauses (true) or resumes (false) reading from clients. */
  public void pauseIntake(boolean paused) {
    asked.add(new PauseIntake(paused));
  }

  /** Tells the I/O side that the peers are now membership's members. */
  public void peersChanged(Membership membership) {
    asked.add(new PeersChanged(membership));
  }

  /** The membership the burst switches the peer set to, if any. */
  public Optional<Membership> peersChangedTo() {
    return executed(PeersChanged.class).map(PeersChanged::membership);
  }

  /** Asks for a Tick at atNs at the latest (the earliest of a burst's requests wins). */
  public void tickBy(long atNs) {
    nextTickNs = Math.min(nextTickNs, atNs);
  }

  // ---------------------------------------------------------------- what the caller does

  /** The burst's effects, merged, in the order to carry them out (see the class comment). */
  public List<Effect> toExecute() {
    BurstMerge merge = new BurstMerge(logEpoch, caughtUp);
    for (Effect e : asked) {
      e.carryOut(merge);
    }
    return merge.inOrder();
  }

  /**
   * When the core wants its next Tick at the latest (absolute, the clock of nowNs), or Long.MAX_VALUE
   * for no timer.
   */
  public long nextTickNs() {
    return nextTickNs;
  }

  /** True when the burst asked for nothing to be done (a Tick time alone is not an effect). */
  public boolean isEmpty() {
    return toExecute().isEmpty();
  }

  /** Forgets the burst: the next one starts with nothing asked. */
  public void clear() {
    asked.clear();
    logEpoch = 0;
    caughtUp = false;
    nextTickNs = Long.MAX_VALUE;
  }

  // ---------------------------------------------------------------- what tests look at

  /** Every ask of this burst in the order the core asked (unmodifiable). */
  public List<Effect> asked() {
    return Collections.unmodifiableList(asked);
  }

  /** The peer messages of this burst, in the order asked. */
  public List<Send> sends() {
    return askedOf(Send.class);
  }

  /** The replies of this burst, one per {@link #reply} in the order asked (not grouped). */
  public List<Reply> replies() {
    return askedOf(Reply.class);
  }

  /** The reads released in this burst, in the order asked. */
  public List<Read> reads() {
    return askedOf(Read.class);
  }

  /** The resends from the log of this burst, in the order asked. */
  public List<Retransmit> retransmits() {
    return askedOf(Retransmit.class);
  }

  /** The entries the burst's Persist appends (after its truncations' drops), in op order. */
  public List<Entry> toPersist() {
    return executed(Persist.class).map(Persist::entries).orElse(List.of());
  }

  /** The entries the burst's Apply applies, in op order. */
  public List<Entry> toApply() {
    return executed(Apply.class).map(Apply::entries).orElse(List.of());
  }

  /** The view the burst records, if any. */
  public OptionalLong viewToPersist() {
    return executed(PersistView.class).map(v -> OptionalLong.of(v.view())).orElse(OptionalLong.empty());
  }

  /** The last normal view the burst records, if any (with whether it clears the catching-up marker). */
  public Optional<PersistLastNormalView> lastNormalViewToPersist() {
    return executed(PersistLastNormalView.class);
  }

  /** The op above which the burst truncates the log, if any. */
  public OptionalLong truncationAfter() {
    return executed(TruncateLogAfter.class).map(t -> OptionalLong.of(t.op())).orElse(OptionalLong.empty());
  }

  /** The op below which the burst truncates the log, if any. */
  public OptionalLong truncationBefore() {
    return executed(TruncateLogBefore.class).map(t -> OptionalLong.of(t.op())).orElse(OptionalLong.empty());
  }

  /** The replica the burst fetches a state transfer from, if any. */
  public OptionalInt stateTransferFrom() {
    return executed(FetchState.class).map(f -> OptionalInt.of(f.from())).orElse(OptionalInt.empty());
  }

  /** Whether the burst pauses (true) or resumes (false) client intake, if it asks either. */
  public Optional<Boolean> intakePaused() {
    return executed(PauseIntake.class).map(PauseIntake::paused);
  }

  /** The log epoch the burst's Persist is reported back with. */
  public long logEpoch() {
    return logEpoch;
  }

  private <T extends Effect> List<T> askedOf(Class<T> kind) {
    List<T> out = new ArrayList<>();
    for (Effect e : asked) {
      if (kind.isInstance(e)) {
        out.add(kind.cast(e));
      }
    }
    return Collections.unmodifiableList(out);
  }

  /** The one merged effect of kind (a kind of which a burst executes at most one). */
  private <T extends Effect> Optional<T> executed(Class<T> kind) {
    return toExecute().stream().filter(kind::isInstance).map(kind::cast).findFirst();
  }
}
