package io.choir.sim;

import io.choir.client.DeterministicClient;
import io.choir.client.LeaseNotFoundException;
import io.choir.client.LeaseStatus;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseRecord;
import io.choir.proto.LeaseRevoke;
import io.choir.proto.Request;
import io.choir.server.core.Event;
import io.choir.server.replica.LeaseExpiryPolicy;
import io.choir.server.statemachine.Change;
import io.choir.server.statemachine.ChangeListener;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.statemachine.TransferRows;
import io.choir.server.storage.StorageSnapshot;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Consumer;

/**
 * SimLeases runs lease clients (the client library's lease calls: grant, puts attached to the lease,
 * keep-alives, then a revoke or silence) and, on every simulated replica, the server's own expiry
 * decision ({@link LeaseExpiryPolicy}, as LeaseExpiry runs it: every check interval on the replica's
 * clock, its requests handed to the loop as the primary's expiry connection). It checks that (a) a key
 * of lease L is deleted (other than by its holder's revoke) only at or after the time the last
 * successful grant or keep-alive of L was sent plus the TTL; (b) a lease whose deadline passed is gone
 * within the documented bound (election timeout + check interval + 1 s, docs/lease.md) measured from
 * its deadline, or from the first convergence after healing when the deadline fell among faults; (c) at
 * the end every lease is gone, with its keys, from every replica.
 */
final class SimLeases implements ChangeListener {
  private static final long MS = Simulation.MS;
  /** LeaseExpiry's check interval on the server (ReplicaServer.LEASE_CHECK_INTERVAL_MS). */
  static final long CHECK_INTERVAL_NS = 50 * MS;
  /** The sim's election timeout (its quorum timeout), LeaseExpiry's retry interval on the server. */
  static final long ELECTION_TIMEOUT_MS = 500;
  /** The bound on lateness after the deadline: election timeout + check interval + 1 s for the commit. */
  static final long LATE_BOUND_NS = (ELECTION_TIMEOUT_MS + 50 + 1_000) * MS;
  /** The connection id the early-revoking breakage writes from (no client's: it is answered nowhere). */
  private static final long ROGUE_CONNECTION = 1L << 40;

  private final Simulation sim;
  private final SimConfig cfg;
  private final Consumer<String> violations;
  /** A deliberate bug: the primary's expiry revokes a lease half a TTL before its deadline. */
  private final boolean early;
  private final SplittableRandom rnd;
  private final SimClientIo io;
  private final List<Holder> holders = new ArrayList<>();
  private final Map<Long, Lease> leases = new HashMap<>();
  private final Map<String, Lease> byKey = new HashMap<>();
  /** What the entry at an op is, when it ends a lease: the lease id (expire or revoke), and which. */
  private final Map<Long, Long> expireOps = new HashMap<>();
  private final Map<Long, Long> revokeOps = new HashMap<>();
  /** When the run first converged after healing (Long.MAX_VALUE: not yet). */
  long convergedNs = Long.MAX_VALUE;
  long leasesChecked;
  long keysChecked;
  long expired;
  long revoked;
  long maxLateNs = Long.MIN_VALUE;
  long maxLateQuietNs = Long.MIN_VALUE;
  long unmeasured;

  private static final class Lease {
    final long id;
    final long ttlNs;
    final Set<String> keys = new HashSet<>();
    /** When the last successful grant or keep-alive was sent: the earliest the deadline may be. */
    long lastOkSentNs;
    /** When the last grant or keep-alive call ended, whatever its outcome: the latest it may be. */
    long lastEndedNs;
    boolean revokeSent;
    boolean revokeAcked;
    long goneNs = -1;

    Lease(long id, long ttlNs, long sentNs, long endedNs) {
      this.id = id;
      this.ttlNs = ttlNs;
      this.lastOkSentNs = sentNs;
      this.lastEndedNs = endedNs;
    }
  }

  private final class Holder {
    final int index;
    final SplittableRandom r;
    DeterministicClient lib;
    int leasesLeft;
    boolean done;

    Holder(int index, long seed) {
      this.index = index;
      this.r = new SplittableRandom(seed);
      this.leasesLeft = 2 + r.nextInt(3);
    }
  }

  SimLeases(Simulation sim, SimConfig cfg, Consumer<String> violations, boolean early) {
    this.sim = sim;
    this.cfg = cfg;
    this.violations = violations;
    this.early = early;
    this.rnd = new SplittableRandom(cfg.seed() ^ 0x1EA5EL);
    this.io = new SimClientIo(sim, cfg);
  }

  /** Starts the lease holders a little into the run. */
  void start() {
    int n = 1 + rnd.nextInt(2);
    for (int i = 0; i < n; i++) {
      Holder h = new Holder(i, rnd.nextLong());
      List<String> endpoints = new ArrayList<>();
      int first = h.r.nextInt(cfg.replicas());
      for (int k = 0; k < cfg.replicas(); k++) {
        endpoints.add(SimClientIo.address(1 + (first + k) % cfg.replicas()));
      }
      h.lib = DeterministicClient.builder().endpoints(endpoints).requestTimeout(Duration.ofMillis(4_000))
          .attemptTimeout(Duration.ofMillis(1_000)).maxInFlight(2).clientId(0x7000 + i)
          .random(new Random(h.r.nextLong())).scheduler(io.scheduler).transport(io.new Transport()).build();
      holders.add(h);
      sim.clock.after(h.r.nextLong(300 * MS), () -> nextLease(h));
    }
  }

  private void nextLease(Holder h) {
    if (h.leasesLeft-- <= 0) {
      h.done = true;
      return;
    }
    long ttlMs = 1_000 + h.r.nextInt(1_000);
    long sent = sim.clock.now();
    h.lib.async().leases().grantOnce(Duration.ofMillis(ttlMs)).whenComplete((status, e) -> {
      if (e != null) {
        sim.clock.after(50 * MS, () -> nextLease(h)); // not granted, or granted and unknown (keyless)
        return;
      }
      Lease l = new Lease(status.id(), status.ttlMs() * MS, sent, sim.clock.now());
      leases.put(l.id, l);
      put(h, l, 1 + h.r.nextInt(2), 1 + h.r.nextInt(4));
    });
  }

  private void put(Holder h, Lease l, int keysLeft, int keepAlives) {
    if (keysLeft == 0) {
      sim.clock.after(l.ttlNs / 3, () -> keepAlive(h, l, keepAlives));
      return;
    }
    String key = "L" + h.index + "-" + l.id + "-" + keysLeft;
    l.keys.add(key); // attached if it executes, even when the answer is lost
    byKey.put(key, l);
    h.lib.async().leases().put(key, "v" + l.id, l.id).whenComplete((v, e) -> put(h, l, keysLeft - 1, keepAlives));
  }

  private void keepAlive(Holder h, Lease l, int left) {
    if (left == 0) {
      if (h.r.nextBoolean()) {
        l.revokeSent = true;
        h.lib.async().leases().revoke(l.id).whenComplete((op, e) -> {
          l.revokeAcked = e == null;
          nextLease(h);
        });
      } else {
        nextLease(h); // silence: the lease expires
      }
      return;
    }
    long sent = sim.clock.now();
    h.lib.async().leases().keepAlive(l.id).whenComplete((LeaseStatus s, Throwable e) -> {
      l.lastEndedNs = sim.clock.now();
      Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
      if (e == null) {
        l.lastOkSentNs = Math.max(l.lastOkSentNs, sent);
      } else if (cause instanceof LeaseNotFoundException) {
        nextLease(h); // it expired (the checks say whether rightly)
        return;
      }
      sim.clock.after(l.ttlNs / 3, () -> keepAlive(h, l, left - 1));
    });
  }

  boolean holdersDone() {
    return holders.stream().allMatch(h -> h.done);
  }

  /** The process of node started: its expiry runs the server's policy on its state machine. */
  void attach(SimReplica node) {
    LeaseExpiryPolicy policy = new LeaseExpiryPolicy(ELECTION_TIMEOUT_MS);
    KvStateMachine sm = node.stateMachine;
    sim.clock.after(CHECK_INTERVAL_NS, node, () -> expiryCheck(node, sm, policy));
  }

  private void expiryCheck(SimReplica node, KvStateMachine sm, LeaseExpiryPolicy policy) {
    long now = sim.clock.now();
    List<Long> due = policy.check(now, sm);
    if (!due.isEmpty()) {
      if (node.core.isPrimary()) {
        for (long id : due) {
          node.post(new Event.ClientRequest(Event.ClientRequest.LEASE_EXPIRY_CONNECTION, revoke(id)));
        }
      } else {
        policy.notSent(due);
      }
    }
    if (early && node.core.isPrimary() && policy.estimatedClockMs(now) > 0) {
      for (long id : sm.leasesExpiredBy(policy.estimatedClockMs(now) + 500, 4)) {
        node.post(new Event.ClientRequest(ROGUE_CONNECTION, revoke(id)));
      }
    }
    sim.clock.after(CHECK_INTERVAL_NS, node, () -> expiryCheck(node, sm, policy));
  }

  private static Request revoke(long id) {
    return Request.newBuilder().setLeaseRevoke(LeaseRevoke.newBuilder().setId(id)).build();
  }

  /** A replica is about to apply entries: which of them end a lease. */
  void applying(List<Entry> entries) {
    for (Entry e : entries) {
      if (e.hasLeaseExpire()) {
        expireOps.put(e.getOp(), e.getLeaseExpire().getId());
      } else if (e.hasLeaseRevoke()) {
        revokeOps.put(e.getOp(), e.getLeaseRevoke().getId());
      }
    }
  }

  /** The changes a replica applied: a lease key deleted by an expiry or revoke is checked (a). */
  @Override
  public void applied(List<Change> changes, long applied) {
    long now = sim.clock.now();
    for (Change c : changes) {
      Lease l = c.deleted() ? byKey.get(new String(c.key(), StandardCharsets.UTF_8)) : null;
      if (l == null || l.goneNs >= 0) {
        continue;
      }
      Long expiredId = expireOps.get(c.revision());
      Long revokedId = revokeOps.get(c.revision());
      boolean byHolder = revokedId != null && revokedId == l.id && l.revokeSent;
      // Early in real time fails even when on time by the entries' own stamps: the replicated clock
      // must not run faster than real time across primaries (ReplicatedClock follows the newest entry;
      // seeds 165, 272, 637 caught the clock that took the larger estimate).
      if (!byHolder && now < l.lastOkSentNs + l.ttlNs) {
        violations.accept("lease " + l.id + "'s key " + new String(c.key(), StandardCharsets.UTF_8) + " deleted at t="
            + now / MS + "ms by " + (expiredId != null ? "an expiry" : revokedId != null ? "a revoke its holder never"
            + " sent" : "op " + c.revision()) + ", before its deadline: last keep-alive sent at t="
            + l.lastOkSentNs / MS + "ms + TTL " + l.ttlNs / MS + "ms");
      }
      l.goneNs = now;
      if (byHolder) {
        revoked++;
      } else {
        expired++;
        long late = now - (l.lastEndedNs + l.ttlNs);
        maxLateNs = Math.max(maxLateNs, late);
        long from = quietRun() ? l.lastEndedNs + l.ttlNs : Math.max(l.lastEndedNs + l.ttlNs, convergedNs);
        if (quietRun()) {
          maxLateQuietNs = Math.max(maxLateQuietNs, late);
        }
        if (now - from > LATE_BOUND_NS) {
          violations.accept("lease " + l.id + " expired " + (now - from) / MS + "ms after its deadline (t="
              + (l.lastEndedNs + l.ttlNs) / MS + "ms" + (quietRun() ? "" : ", converged t=" + convergedNs / MS + "ms")
              + "), beyond the bound " + LATE_BOUND_NS / MS + "ms");
        }
      }
    }
  }

  @Override
  public void replaced(long applied) {}

  /** A run without faults and with little loss: the bound holds from the deadline itself. */
  private boolean quietRun() {
    return !cfg.faults() && cfg.lossRate() <= 0.05;
  }

  /**
   * Whether every holder is done and every lease it knows is gone at the primary p (the run waits for
   * it after converging); also checks (b) for the leases still alive after the bound.
   */
  boolean settled(SimReplica p) {
    if (!holdersDone() || p == null) {
      return false;
    }
    long now = sim.clock.now();
    Set<Long> live = liveLeases(p);
    for (Lease l : leases.values()) {
      if (live.contains(l.id)) {
        long from = Math.max(l.lastEndedNs + l.ttlNs, convergedNs);
        if (now - from > LATE_BOUND_NS) {
          violations.accept("lease " + l.id + " still alive at t=" + now / MS + "ms, " + (now - from) / MS
              + "ms after its deadline and convergence, beyond the bound " + LATE_BOUND_NS / MS + "ms");
        }
        return false;
      }
    }
    return true;
  }

  private static Set<Long> liveLeases(SimReplica n) {
    Set<Long> ids = new HashSet<>();
    try (StorageSnapshot snap = n.storage.snapshot()) {
      for (LeaseRecord r : TransferRows.leaseTable(snap)) {
        ids.add(r.getId());
      }
    }
    return ids;
  }

  /** (c), at the end: no replica holds any of the leases or any key attached to one. */
  void checkEnd(SimReplica[] nodes) {
    for (int id = 1; id < nodes.length; id++) {
      SimReplica n = nodes[id];
      if (n.gone || !n.up) {
        continue;
      }
      Set<Long> live = liveLeases(n);
      try (StorageSnapshot snap = n.storage.snapshot()) {
        for (Lease l : leases.values()) {
          if (live.contains(l.id)) {
            violations.accept("replica " + id + " still holds lease " + l.id + " at the end");
          }
          for (String k : l.keys) {
            byte[] kb = k.getBytes(StandardCharsets.UTF_8);
            List<KeyValue> kv = snap.scanData(kb, 1, 1 << 20);
            if (!kv.isEmpty() && kv.get(0).getKey().toStringUtf8().equals(k)) {
              violations.accept("replica " + id + " still holds key " + k + " of lease " + l.id
                  + (l.revokeAcked ? " (revoke acknowledged)" : " (expired)") + " at the end");
            }
            keysChecked++;
          }
        }
      }
    }
    for (Lease l : leases.values()) {
      leasesChecked++;
      if (l.goneNs < 0 && !l.keys.isEmpty()) {
        unmeasured++; // its keys went by a state transfer only, or its puts never executed
      }
    }
  }

  /** Puts the figures of a watches+leases run's checks into its totals. */
  static void report(SimWatches watches, SimLeases leases, SimTotals totals) {
    totals.add("watchers", watches.watcherCount());
    totals.add("watch_events_delivered", watches.eventsDelivered);
    totals.add("watch_events_checked", watches.eventsChecked);
    totals.add("watch_revisions_checked", watches.revisionsChecked);
    totals.add("watch_revisions_unverified", watches.revisionsUnverified);
    totals.add("watch_resumes", watches.resumes);
    totals.add("watch_cut_offs", watches.cutOffs);
    totals.add("watch_compacted_refusals", watches.compactedRefusals);
    totals.add("watch_compacted_ends", watches.compactedEnds);
    totals.add("leases_checked", leases.leasesChecked);
    totals.add("lease_keys_checked", leases.keysChecked);
    totals.add("leases_expired", leases.expired);
    totals.add("leases_revoked", leases.revoked);
    totals.add("leases_unmeasured", leases.unmeasured);
    if (leases.maxLateNs != Long.MIN_VALUE) {
      totals.add("lease_max_late_ms", leases.maxLateNs / MS);
    }
    if (leases.maxLateQuietNs != Long.MIN_VALUE) {
      totals.add("lease_max_late_quiet_ms", leases.maxLateQuietNs / MS);
    }
  }
}
