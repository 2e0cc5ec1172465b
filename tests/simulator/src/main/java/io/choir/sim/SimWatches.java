package io.choir.sim;

import com.google.protobuf.ByteString;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.Watch;
import io.choir.proto.WatchEvent;
import io.choir.server.statemachine.Change;
import io.choir.server.statemachine.ChangeListener;
import io.choir.server.watch.WatchHub;
import io.choir.server.watch.WatchLimits;
import io.choir.server.watch.WatchOutput;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * SimWatches runs the server's own {@link WatchHub} on every simulated replica (a listener of its real
 * KvStateMachine) and a few sim watchers that behave as the client library's ClientWatch: a watch of a
 * key or a prefix on one replica; when that replica crashes, is cut off from the clients, or cuts the
 * watch off, it resumes on another from the last revision delivered + 1; refused as compacted, it tries
 * the next replica, and ends as compacted only when every replica it tried said so. Responses travel
 * with a network delay, in order per watch, and the hub's written callback runs when one is delivered.
 *
 * <p>The truth is what the replicas' state machines reported applied, op by op (the changes of each op,
 * the same at every replica that applied it one by one: checked too; ops a replica only got by state
 * transfer are covered by another). At the end every watcher's delivered events must be exactly the
 * committed changes of its range over the revisions it covered: in order, no gap, no duplicate, the
 * right values and previous values.
 */
final class SimWatches {
  private static final long MS = Simulation.MS;
  private static final long WATCHDOG_NS = 100 * MS;

  private final Simulation sim;
  private final SplittableRandom rnd;
  private final Consumer<String> violations;
  /** A deliberate bug: the sim's output drops the 3rd response with events of the first watcher. */
  private final boolean dropOne;
  private final WatchLimits limits;
  private final WatchHub[] hubs;
  private final long[] lastApplied;
  private final Map<Long, List<Change>> changesAt = new HashMap<>();
  private final BitSet covered = new BitSet();
  private final List<Watcher> watchers = new ArrayList<>();
  /** Who else hears the applied changes (the lease checker): node, changes. */
  private final List<ChangeListener> also = new ArrayList<>();
  private long nextConnection = 1;
  private int dropped;
  long eventsDelivered;
  long eventsChecked;
  long revisionsChecked;
  long revisionsUnverified;
  long resumes;
  long cutOffs;
  long compactedRefusals;
  long compactedEnds;

  /** One watch as ClientWatch keeps it across replicas. */
  private final class Watcher {
    final int index;
    final byte[] key;
    final boolean prefix;
    final boolean prevValue;
    /** A slow reader takes this long more per response (its connection fills, the hub holds it back). */
    final long slowNs;
    /** The first revision of the delivered range (-1: not started yet). */
    long first = -1;
    /** The next revision wanted (0: from now, before the first start). */
    long next;
    int node;
    int incarnation;
    long connection;
    int attempt;
    boolean active;
    boolean ended;
    long lastDeliveryNs;
    int eventResponses;
    final Set<Integer> compactedAt = new HashSet<>();
    final List<WatchEvent> delivered = new ArrayList<>();

    Watcher(int index, byte[] key, boolean prefix, boolean prevValue, long start, long slowNs) {
      this.index = index;
      this.slowNs = slowNs;
      this.key = key;
      this.prefix = prefix;
      this.prevValue = prevValue;
      this.next = start;
    }

    boolean matches(byte[] k) {
      if (!prefix) {
        return Arrays.equals(k, key);
      }
      return k.length >= key.length && Arrays.equals(k, 0, key.length, key, 0, key.length);
    }

    String describe() {
      return "watcher " + index + " (" + (prefix ? "prefix '" : "key '") + new String(key) + "'"
          + (prevValue ? " +prev" : "") + ")";
    }
  }

  SimWatches(Simulation sim, SimConfig cfg, Consumer<String> violations, boolean dropOne) {
    this.sim = sim;
    this.violations = violations;
    this.dropOne = dropOne;
    this.rnd = new SplittableRandom(cfg.seed() ^ 0x3A7C4L);
    // A short history and a small buffer now and then: watchers fall behind, get cut off, or find
    // their revision compacted on a restarted replica, and must resume elsewhere.
    int historyEvents = rnd.nextInt(3) == 0 ? 20 + rnd.nextInt(60) : 10_000;
    long bufferBytes = rnd.nextInt(3) == 0 ? 300 + rnd.nextInt(2_000) : 1 << 20;
    this.limits = new WatchLimits(historyEvents, 64L << 20, bufferBytes, 1_000, 100);
    this.hubs = new WatchHub[cfg.replicas() + 1];
    this.lastApplied = new long[cfg.replicas() + 1];
    int n = 2 + rnd.nextInt(4);
    for (int i = 0; i < n; i++) {
      int kind = rnd.nextInt(4);
      byte[] key = switch (kind) {
        case 0 -> ("k" + rnd.nextInt(cfg.keys())).getBytes();
        case 1 -> "k".getBytes();
        case 2 -> "L".getBytes();
        default -> new byte[0];
      };
      watchers.add(new Watcher(i, key, kind != 0, rnd.nextBoolean(), rnd.nextBoolean() ? 1 : 0,
          rnd.nextInt(3) == 0 ? rnd.nextLong(100 * MS) : 0));
    }
  }

  void alsoTell(ChangeListener listener) {
    also.add(listener);
  }

  /** The process of node started: a new hub listens to its new state machine. */
  void attach(SimReplica node) {
    WatchHub hub = new WatchHub(limits, new SimpleMeterRegistry());
    hubs[node.id] = hub;
    node.stateMachine.changeListener(new ChangeListener() {
      @Override
      public void applied(List<Change> changes, long applied) {
        record(node.id, changes, applied);
        hub.applied(changes, applied);
        for (ChangeListener l : also) {
          l.applied(changes, applied);
        }
      }

      @Override
      public void replaced(long applied) {
        lastApplied[node.id] = applied;
        hub.replaced(applied);
      }
    });
  }

  private void record(int node, List<Change> changes, long applied) {
    Map<Long, List<Change>> byOp = new HashMap<>();
    for (Change c : changes) {
      byOp.computeIfAbsent(c.revision(), r -> new ArrayList<>()).add(c);
    }
    for (long op = lastApplied[node] + 1; op <= applied; op++) {
      List<Change> mine = byOp.getOrDefault(op, List.of());
      if (covered.get((int) op)) {
        List<Change> seen = changesAt.getOrDefault(op, List.of());
        // The same changes in the same order: a lease's end deletes its keys in key order everywhere
        // (LeaseTable.keys; the attach order on one replica and key order on a reloaded one was caught).
        if (!fingerprint(mine).equals(fingerprint(seen))) {
          violations.accept("replica " + node + " reported other changes at op " + op + " than another replica: "
              + fingerprint(mine) + " vs " + fingerprint(changesAt.getOrDefault(op, List.of())));
        }
      } else {
        covered.set((int) op);
        if (!mine.isEmpty()) {
          changesAt.put(op, mine);
        }
      }
    }
    lastApplied[node] = applied;
  }

  private static String fingerprint(List<Change> changes) {
    StringBuilder sb = new StringBuilder();
    for (Change c : changes) {
      sb.append(new String(c.key())).append(c.deleted() ? " del" : "=" + new String(c.value())).append(" prev=")
          .append(c.prevValue() == null ? "-" : new String(c.prevValue()) + "@" + c.prevVersion()).append("; ");
    }
    return sb.toString();
  }

  /** Starts every watcher a little into the run, each with its watchdog. */
  void start() {
    for (Watcher w : watchers) {
      sim.clock.after(rnd.nextLong(200 * MS), () -> open(w));
      sim.clock.after(WATCHDOG_NS, () -> watchdog(w));
    }
  }

  /** Opens w's watch on an up replica it has not been told "compacted" by, from w.next. */
  private void open(Watcher w) {
    if (w.ended) {
      return;
    }
    List<SimReplica> candidates = new ArrayList<>();
    for (int id = 1; id < hubs.length; id++) {
      SimReplica n = sim.node(id);
      if (n.up && !n.gone && !w.compactedAt.contains(id) && !sim.net.clientCutBetween(0, id)) {
        candidates.add(n);
      }
    }
    if (candidates.isEmpty()) {
      sim.clock.after(WATCHDOG_NS, () -> open(w));
      return;
    }
    SimReplica n = candidates.get(rnd.nextInt(candidates.size()));
    w.node = n.id;
    w.incarnation = n.incarnation;
    w.connection = nextConnection++;
    w.attempt++;
    w.active = true;
    w.lastDeliveryNs = 0;
    int attempt = w.attempt;
    long connection = w.connection;
    WatchHub hub = hubs[n.id];
    Watch watch = Watch.newBuilder().setKey(ByteString.copyFrom(w.key)).setPrefix(w.prefix)
        .setPrevValue(w.prevValue).setStartRevision(w.next).build();
    sim.clock.after(sim.net.delay(), n, () -> hub.watch(connection, 1, watch, output(w, n.id, attempt)));
  }

  private WatchOutput output(Watcher w, int node, int attempt) {
    return (response, written) -> {
      long at = Math.max(sim.clock.now() + sim.net.delay(), w.lastDeliveryNs + w.slowNs);
      if (w.attempt == attempt) {
        w.lastDeliveryNs = at;
      }
      sim.clock.after(at - sim.clock.now(), () -> {
        written.run();
        if (w.attempt == attempt && w.active) {
          if (sim.net.clientCutBetween(0, node)) {
            broken(w); // the connection broke under the cut: this and what follows are lost
          } else {
            handle(w, response);
          }
        }
      });
    };
  }

  private void handle(Watcher w, Response r) {
    if (r.getStatus() == Status.OK && r.getWatchEvents().getEventsCount() == 0) {
      long start = r.getWatchEvents().getStartRevision();
      if (w.next != 0 && start != w.next) {
        violations.accept(w.describe() + " asked to start at " + w.next + " and was started at " + start);
      }
      if (w.first < 0) {
        w.first = start;
      }
      w.next = start;
      w.compactedAt.clear();
      return;
    }
    if (r.getStatus() == Status.OK) {
      if (dropOne && w.index == 0 && ++w.eventResponses == 3 && dropped++ == 0) {
        return; // the deliberate bug: one response of events lost on a connection that stays up
      }
      for (WatchEvent e : r.getWatchEvents().getEventsList()) {
        w.delivered.add(e);
        eventsDelivered++;
      }
      w.next = r.getWatchEvents().getEvents(r.getWatchEvents().getEventsCount() - 1).getRevision() + 1;
      return;
    }
    w.active = false;
    if (r.getWatchEvents().getCompacted()) {
      compactedRefusals++;
      long oldest = r.getWatchEvents().getOldestRevision();
      if (w.next != 0 && oldest <= w.next) {
        violations.accept(w.describe() + " refused as compacted at revision " + w.next + " by replica " + w.node
            + ", which says it keeps from " + oldest);
      }
      w.compactedAt.add(w.node);
      boolean untried = false;
      for (int id = 1; id < hubs.length; id++) {
        untried |= !w.compactedAt.contains(id) && !sim.node(id).gone;
      }
      if (!untried) {
        w.ended = true; // compacted everywhere it tried: a legitimate end (each said so, checked above)
        compactedEnds++;
        return;
      }
    } else if (r.getStatus() == Status.UNAVAILABLE) {
      cutOffs++;
    }
    resumes++;
    sim.clock.after(sim.net.delay(), () -> open(w));
  }

  /** w's connection broke (its replica crashed or was cut off): resume elsewhere. */
  private void broken(Watcher w) {
    SimReplica n = sim.node(w.node);
    if (n.up && n.incarnation == w.incarnation) {
      hubs[n.id].connectionClosed(w.connection);
    }
    w.active = false;
    w.attempt++;
    resumes++;
    sim.clock.after(sim.net.delay(), () -> open(w));
  }

  private void watchdog(Watcher w) {
    if (w.ended) {
      return;
    }
    if (w.active) {
      SimReplica n = sim.node(w.node);
      if (!n.up || n.incarnation != w.incarnation || sim.net.clientCutBetween(0, n.id)) {
        broken(w);
      }
    }
    sim.clock.after(WATCHDOG_NS, () -> watchdog(w));
  }

  /**
   * The end of the run: every watcher's delivered events are the committed changes of its range over
   * the revisions from its first start to its last event, in order, each once.
   */
  void check() {
    for (Watcher w : watchers) {
      if (w.first < 0) {
        continue;
      }
      long last = w.next - 1;
      int i = 0;
      for (long rev = w.first; rev <= last; rev++) {
        List<WatchEvent> got = new ArrayList<>();
        while (i < w.delivered.size() && w.delivered.get(i).getRevision() == rev) {
          got.add(w.delivered.get(i++));
        }
        if (!covered.get((int) rev)) {
          revisionsUnverified++;
          continue;
        }
        List<WatchEvent> want = new ArrayList<>();
        List<Change> truth = changesAt.getOrDefault(rev, List.of());
        for (Change c : truth) {
          if (w.matches(c.key())) {
            want.add(expected(c, w.prevValue));
          }
        }
        revisionsChecked++;
        if (!got.equals(want)) {
          violations.accept(w.describe() + " at revision " + rev + " got " + brief(got) + " but the committed"
              + " changes are " + brief(want) + (got.isEmpty() ? " (a gap)" : ""));
          return;
        }
        eventsChecked += got.size();
      }
      if (i < w.delivered.size()) {
        violations.accept(w.describe() + " got revision " + w.delivered.get(i).getRevision() + " out of order"
            + " (a duplicate or a step back) after its range " + w.first + ".." + last);
        return;
      }
    }
  }

  private static WatchEvent expected(Change c, boolean prev) {
    WatchEvent.Builder b = WatchEvent.newBuilder().setRevision(c.revision()).setKey(ByteString.copyFrom(c.key()))
        .setKind(c.deleted() ? WatchEvent.Kind.DELETE : WatchEvent.Kind.PUT);
    if (!c.deleted()) {
      b.setValue(ByteString.copyFrom(c.value()));
    }
    if (prev && c.prevValue() != null) {
      b.setHasPrev(true).setPrevValue(ByteString.copyFrom(c.prevValue())).setPrevVersion(c.prevVersion());
    }
    return b.build();
  }

  private static String brief(List<WatchEvent> events) {
    StringBuilder sb = new StringBuilder("[");
    for (WatchEvent e : events) {
      sb.append(e.getKey().toStringUtf8()).append(e.getKind() == WatchEvent.Kind.DELETE ? " del" : "="
          + e.getValue().toStringUtf8()).append(e.getHasPrev() ? " prev=" + e.getPrevValue().toStringUtf8() : "")
          .append(' ');
    }
    return sb.append(']').toString();
  }

  int watcherCount() {
    return watchers.size();
  }
}
