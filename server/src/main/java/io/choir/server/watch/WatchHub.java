package io.choir.server.watch;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.choir.proto.CancelWatch;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.Watch;
import io.choir.proto.WatchEvent;
import io.choir.proto.WatchEvents;
import io.choir.proto.wire.FrameDecoder;
import io.choir.server.statemachine.Change;
import io.choir.server.statemachine.ChangeListener;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * WatchHub serves a replica's watches (docs/design.md "Watches"): it hears every applied change from
 * the state machine ({@link ChangeListener}, on the apply thread), keeps the latest in a bounded
 * {@link WatchHistory}, and sends each watcher the changes of its key or prefix, in revision order,
 * each once, through its {@link WatchOutput}.
 *
 * <p>A watcher is live (handed each change as it is applied) until its connection holds
 * watch_buffer_bytes unwritten; it then waits, holding nothing but its place (a seq of the history),
 * and when the connection drains it catches up from the history. Once the history has evicted its
 * place it is cut off: a last Response UNAVAILABLE saying so, counted as choir.watch.cut_off. A
 * replaced state (a state transfer) empties the history; a watcher whose next revision is not above
 * the new state's op then gets the compacted error, never a gap.
 *
 * <p>Thread-safe: every method runs under the hub's lock, and sends only enqueue (the output writes on
 * the connection's event loop, in the order of the calls).
 */
public final class WatchHub implements ChangeListener {
  private static final Logger log = LoggerFactory.getLogger(WatchHub.class);

  private final WatchLimits limits;
  private final WatchHistory history;
  /** Every watcher by connection, then by its request id. */
  private final Map<Long, Map<Long, Watcher>> byConnection = new HashMap<>();
  /** The key watchers (not prefix) by key, and the prefix watchers: the candidates of each change. */
  private final Map<ByteString, Set<Watcher>> byKey = new HashMap<>();
  private final Set<Watcher> prefixWatchers = new LinkedHashSet<>();
  private final Set<Watcher> behind = new LinkedHashSet<>();
  private volatile int watchers;
  private volatile long applied;
  private volatile long oldest;
  private volatile int historyEvents;
  private volatile long historyBytes;
  private final Counter eventsSent;
  private final Counter cutOff;
  private final Counter compacted;
  private final MeterRegistry metrics;

  public WatchHub(WatchLimits limits, MeterRegistry metrics) {
    this.limits = limits;
    this.history = new WatchHistory(limits.historyEvents(), limits.historyBytes());
    this.metrics = metrics;
    this.eventsSent = Counter.builder("choir.watch.events_sent").description("Watch events sent to watchers")
        .register(metrics);
    this.cutOff = Counter.builder("choir.watch.cut_off")
        .description("Watchers cut off: their connection did not take their events before the history moved on")
        .register(metrics);
    this.compacted = Counter.builder("choir.watch.compacted")
        .description("Watchers ended because the state was replaced past their next revision (a state transfer)")
        .register(metrics);
    Gauge.builder("choir.watchers", this, h -> h.watchers).description("Watches open on this replica")
        .register(metrics);
    Gauge.builder("choir.watch.history.events", this, h -> h.historyEvents)
        .description("Changes kept in the watch history").register(metrics);
    Gauge.builder("choir.watch.history.bytes", this, h -> h.historyBytes)
        .description("Bytes of the watch history").register(metrics);
    Gauge.builder("choir.watch.history.oldest_revision", this, h -> h.oldest)
        .description("The oldest revision a watch may start from").register(metrics);
  }

  /** Watches open now. */
  public int watchers() {
    return watchers;
  }

  /** The oldest revision a watch may start from now (the history's floor + 1). */
  public long oldestRevision() {
    return oldest;
  }

  /** Watchers cut off so far because their connection did not take their events (choir.watch.cut_off). */
  public long cutOffCount() {
    return (long) cutOff.count();
  }

  /** The last applied op the hub heard of. */
  public long applied() {
    return applied;
  }

  /**
   * Starts the watch of request requestId on connectionId: sends its first Response (OK, or why not)
   * and then its events through output.
   */
  public synchronized void watch(long connectionId, long requestId, Watch watch, WatchOutput output) {
    Response.Builder refusal = Response.newBuilder().setRequestId(requestId);
    Map<Long, Watcher> mine = byConnection.get(connectionId);
    if (watch.getKey().isEmpty() && !watch.getPrefix()) {
      refuse(output, "invalid", refusal.setStatus(Status.INVALID)
          .setError("watch of an empty key: set prefix to watch every key"));
      return;
    }
    if (watch.getKey().size() > limits.maxKeyBytes()) {
      refuse(output, "too_large", refusal.setStatus(Status.TOO_LARGE).setError("watch: the key has "
          + watch.getKey().size() + " bytes, more than max_key_bytes " + limits.maxKeyBytes()));
      return;
    }
    if (mine != null && mine.containsKey(requestId)) {
      refuse(output, "invalid", refusal.setStatus(Status.INVALID)
          .setError("request id " + requestId + " already names a watch on this connection"));
      return;
    }
    if (watchers >= limits.maxWatchers()) {
      refuse(output, "max_watchers", refusal.setStatus(Status.BUSY)
          .setError("too many watches on this replica (max_watchers " + limits.maxWatchers() + ")"));
      return;
    }
    if (mine != null && mine.size() >= limits.maxWatchersPerConnection()) {
      refuse(output, "max_watchers_per_connection", refusal.setStatus(Status.BUSY)
          .setError("too many watches on this connection (max_watchers_per_connection "
              + limits.maxWatchersPerConnection() + ")"));
      return;
    }
    long start = watch.getStartRevision() == 0 ? applied + 1 : watch.getStartRevision();
    if (start <= history.floor()) {
      refuse(output, "compacted", refusal.setStatus(Status.INVALID)
          .setWatchEvents(WatchEvents.newBuilder().setCompacted(true).setOldestRevision(history.floor() + 1))
          .setError(compactedMessage(start)));
      return;
    }
    Watcher w = new Watcher(connectionId, requestId, watch.getKey(), watch.getPrefix(), watch.getPrevValue(), output,
        start);
    byConnection.computeIfAbsent(connectionId, id -> new LinkedHashMap<>()).put(requestId, w);
    if (w.prefix) {
      prefixWatchers.add(w);
    } else {
      byKey.computeIfAbsent(w.key, k -> new LinkedHashSet<>()).add(w);
    }
    watchers++;
    send(w, Response.newBuilder().setRequestId(requestId).setStatus(Status.OK).setOp(applied)
        .setWatchEvents(WatchEvents.newBuilder().setStartRevision(start)).build(), 0);
    w.nextSeq = history.firstSeqAtOrAfter(start);
    catchUp(w);
  }

  /** Ends the watch cancel names on connectionId, answering request requestId (OK, or NOT_FOUND). */
  public synchronized void cancel(long connectionId, long requestId, CancelWatch cancel, WatchOutput output) {
    Map<Long, Watcher> mine = byConnection.get(connectionId);
    Watcher w = mine == null ? null : mine.get(cancel.getWatchRequestId());
    Response.Builder r = Response.newBuilder().setRequestId(requestId).setOp(applied);
    if (w == null) {
      output.send(r.setStatus(Status.NOT_FOUND).setError("no watch of request id " + cancel.getWatchRequestId()
          + " on this connection").build(), () -> { });
      return;
    }
    remove(w);
    output.send(r.setStatus(Status.OK).build(), () -> { });
  }

  /** Forgets every watch of connectionId (its connection closed). */
  public synchronized void connectionClosed(long connectionId) {
    Map<Long, Watcher> mine = byConnection.get(connectionId);
    if (mine != null) {
      for (Watcher w : new ArrayList<>(mine.values())) {
        remove(w);
      }
    }
  }

  @Override
  public synchronized void applied(List<Change> changes, long applied) {
    long firstNew = history.tailSeq();
    for (Change c : changes) {
      history.append(event(c));
    }
    this.applied = applied;
    Set<Watcher> candidates = new LinkedHashSet<>();
    for (long seq = firstNew; seq < history.tailSeq(); seq++) {
      ByteString key = history.get(seq).key();
      Set<Watcher> exact = byKey.get(key);
      if (exact != null) {
        candidates.addAll(exact);
      }
      for (Watcher w : prefixWatchers) {
        if (w.matches(key)) {
          candidates.add(w);
        }
      }
    }
    for (Watcher w : candidates) {
      if (w.live) {
        w.nextSeq = firstNew;
        catchUp(w);
      }
    }
    history.trim();
    cutOffEvicted();
    published();
  }

  @Override
  public synchronized void replaced(long applied) {
    long before = this.applied;
    history.reset(applied);
    this.applied = applied;
    List<Watcher> gone = new ArrayList<>();
    for (Map<Long, Watcher> mine : byConnection.values()) {
      for (Watcher w : mine.values()) {
        long next = w.live ? Math.max(w.nextRevision, before + 1) : w.nextRevision;
        if (next <= applied) {
          gone.add(w);
        } else {
          w.nextRevision = next;
          w.nextSeq = history.tailSeq();
        }
      }
    }
    for (Watcher w : gone) {
      compacted.increment();
      end(w, Response.newBuilder().setStatus(Status.INVALID)
          .setWatchEvents(WatchEvents.newBuilder().setCompacted(true).setOldestRevision(applied + 1))
          .setError("the replica's state was replaced by a state transfer at revision " + applied + ": "
              + compactedMessage(w.nextRevision)));
    }
    if (!gone.isEmpty()) {
      log.atInfo().addKeyValue("applied", applied).addKeyValue("watches_ended", gone.size())
          .log("state replaced: watches behind it ended as compacted");
    }
    published();
  }

  private String compactedMessage(long start) {
    return "revision " + start + " is compacted: the oldest revision this replica keeps is " + (history.floor() + 1)
        + " (applied " + applied + ")";
  }

  /**
   * Sends w the history's events from w.nextSeq that match it, in messages of whole revisions, while
   * its connection has room; then w is live, or behind until its connection drains.
   */
  private void catchUp(Watcher w) {
    while (!w.closed && w.nextSeq < history.tailSeq()) {
      if (w.nextSeq < history.headSeq()) {
        return; // evicted: cutOffEvicted ends it
      }
      if (w.unwritten >= limits.bufferBytes()) {
        w.live = false;
        behind.add(w);
        return;
      }
      WatchEvents.Builder batch = WatchEvents.newBuilder();
      long batchBytes = 0;
      long last = -1;
      long seq = w.nextSeq;
      for (; seq < history.tailSeq(); seq++) {
        WatchHistory.Event e = history.get(seq);
        if (e.revision() != last && batchBytes >= WatchLimits.MESSAGE_BYTES) {
          break; // only between revisions: all events of one revision travel together
        }
        last = e.revision();
        if (e.revision() >= w.nextRevision && w.matches(e.key())) {
          batch.addEvents(w.prevValue ? e.withPrev() : e.plain());
          batchBytes += e.bytes();
        }
      }
      w.nextSeq = seq;
      if (batch.getEventsCount() > 0) {
        int count = batch.getEventsCount();
        w.nextRevision = batch.getEvents(count - 1).getRevision() + 1;
        send(w, Response.newBuilder().setRequestId(w.requestId).setStatus(Status.OK).setOp(applied)
            .setWatchEvents(batch).build(), count);
      }
    }
    if (!w.closed && !w.live) {
      w.live = true;
      behind.remove(w);
    }
  }

  private void send(Watcher w, Response r, int events) {
    long bytes = FrameDecoder.LENGTH_BYTES + r.getSerializedSize();
    w.unwritten += bytes;
    eventsSent.increment(events);
    w.output.send(r, () -> written(w, bytes));
  }

  private synchronized void written(Watcher w, long bytes) {
    w.unwritten -= bytes;
    if (!w.closed && !w.live && w.unwritten < limits.bufferBytes()) {
      catchUp(w);
      cutOffEvicted();
    }
  }

  /** Ends the behind watchers whose place the history has evicted. */
  private void cutOffEvicted() {
    List<Watcher> evicted = new ArrayList<>();
    for (Watcher w : behind) {
      if (w.nextSeq < history.headSeq()) {
        evicted.add(w);
      }
    }
    for (Watcher w : evicted) {
      cutOff.increment();
      log.atInfo().addKeyValue("watch", w.describe()).addKeyValue("next_revision", w.nextRevision)
          .addKeyValue("unwritten_bytes", w.unwritten).log("cut off a slow watcher");
      end(w, Response.newBuilder().setStatus(Status.UNAVAILABLE).setError("watch cut off: its connection did not"
          + " take its events (watch_buffer_bytes " + limits.bufferBytes() + ") before the history moved past"
          + " revision " + w.nextRevision + "; the oldest revision kept is " + (history.floor() + 1)));
    }
  }

  /** Sends w's last Response (an error) and forgets it. */
  private void end(Watcher w, Response.Builder last) {
    remove(w);
    w.output.send(last.setRequestId(w.requestId).setOp(applied).build(), () -> { });
  }

  private void remove(Watcher w) {
    if (w.closed) {
      return;
    }
    w.closed = true;
    Map<Long, Watcher> mine = byConnection.get(w.connectionId);
    if (mine != null) {
      mine.remove(w.requestId);
      if (mine.isEmpty()) {
        byConnection.remove(w.connectionId);
      }
    }
    if (w.prefix) {
      prefixWatchers.remove(w);
    } else {
      Set<Watcher> same = byKey.get(w.key);
      if (same != null) {
        same.remove(w);
        if (same.isEmpty()) {
          byKey.remove(w.key);
        }
      }
    }
    behind.remove(w);
    watchers--;
  }

  private void refuse(WatchOutput output, String reason, Response.Builder r) {
    Counter.builder("choir.watch.refused").description("Watches refused (invalid, compacted, over a bound)")
        .tag("reason", reason).register(metrics).increment();
    output.send(r.setOp(applied).build(), () -> { });
  }

  private void published() {
    historyEvents = history.size();
    historyBytes = history.bytes();
    oldest = history.floor() + 1;
  }

  private static WatchHistory.Event event(Change c) {
    ByteString key = UnsafeByteOperations.unsafeWrap(c.key());
    WatchEvent.Builder plain = WatchEvent.newBuilder().setRevision(c.revision()).setKey(key)
        .setKind(c.deleted() ? WatchEvent.Kind.DELETE : WatchEvent.Kind.PUT);
    long bytes = WatchHistory.EVENT_OVERHEAD_BYTES + c.key().length;
    if (!c.deleted()) {
      plain.setValue(UnsafeByteOperations.unsafeWrap(c.value()));
      bytes += c.value().length;
    }
    WatchEvent withPrev = plain.build();
    if (c.prevValue() != null) {
      withPrev = withPrev.toBuilder().setHasPrev(true).setPrevValue(UnsafeByteOperations.unsafeWrap(c.prevValue()))
          .setPrevVersion(c.prevVersion()).build();
      bytes += c.prevValue().length;
    }
    return new WatchHistory.Event(c.revision(), key, plain.build(), withPrev, bytes);
  }
}
