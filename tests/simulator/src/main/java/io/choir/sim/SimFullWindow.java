package io.choir.sim;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.ReplicaCore;
import java.util.SplittableRandom;

/**
 * SimFullWindow is the scenario of hole 2e: a view change must finish with a full window of 1 MiB
 * values under 20% datagram loss. Clients write 1 MiB values (more of them in flight than the window
 * holds) until the primary's flow-control window (CoreConfig.maxInFlightBytes, here 32 MiB: 32 such
 * entries) is full, which the primary shows by pausing client intake; at that moment the primary is
 * crashed (kill -9, restarted later) or cut off from the other replicas (healed later). Every datagram
 * is lost with probability 0.2, so a 1 MiB PREPARE (about 790 fragments) practically never arrives
 * whole: backups get the entries by NACK, over the peer streams, and so does the new primary when it
 * fetches the chosen log in bounded pieces during the view change.
 *
 * <p>Measured, in simulated time from the fault: when a replica first leads a newer view in normal
 * mode (the new primary elected and its view change finished), when every replica the new primary
 * can reach is normal in that view, and when the first write is acknowledged in it. Each must happen
 * within {@link #BOUND_NS}, else the run is a violation. The run then goes on as every simulated run
 * does: the clients finish (each worker reads a key back last), everything heals, the replicas must
 * converge to the same state, no acknowledged write may be lost (the durability invariant and the
 * linearizability checker on the history).
 */
final class SimFullWindow implements SimObserver {
  /** The fault injected when the window is full. */
  enum Fault {
    CRASH,
    ISOLATE
  }

  static final long MS = 1_000_000L;
  static final int VALUE_BYTES = 1 << 20;
  static final long WINDOW_BYTES = 32L * VALUE_BYTES;
  /** Each measured step must happen within this much simulated time of the fault. */
  static final long BOUND_NS = 10_000 * MS;
  /** How long the old primary stays down or cut off. */
  private static final long FAULT_NS = 4_000 * MS;

  private final Fault fault;
  private SimReplica oldPrimary;
  private long oldView = -1;
  private long faultAtNs = -1;
  long primaryElectedNs = -1;
  long viewChangeDoneNs = -1;
  long firstWriteNs = -1;
  /** The window's entries at the fault: the old primary's last op minus its commit. */
  long entriesInWindow;
  private boolean boundReported;

  SimFullWindow(Fault fault) {
    this.fault = fault;
  }

  /** The scenario's run: 3 or 5 replicas, 20% loss, 1 MiB values, a 32 MiB window, no other fault. */
  static SimConfig config(long seed, int replicas) {
    SplittableRandom r = new SplittableRandom(seed);
    return new SimConfig(seed, replicas, 4, 4, 30 + r.nextInt(20), 0.2, 0.0, 50_000L, (1 + r.nextInt(3)) * MS,
        false, 1_000 * MS, 1_000_000, false, 10_000, 60_000, false, SimConfig.FaultPlan.FULL_WINDOW, VALUE_BYTES,
        WINDOW_BYTES, 1_000, 30_000);
  }

  @Override
  public void intakePaused(Simulation sim, SimReplica node, boolean paused) {
    if (!paused || faultAtNs >= 0 || !node.core.isPrimary()) {
      return;
    }
    oldPrimary = node;
    oldView = node.core.view();
    faultAtNs = sim.clock.now();
    entriesInWindow = node.core.lastOp() - node.core.commitOp();
    sim.bump("full_window_faults");
    if (fault == Fault.CRASH) {
      sim.crash(node, false);
      sim.clock.after(FAULT_NS, () -> sim.restart(node));
    } else {
      sim.net.isolate(node.id);
      sim.clock.after(FAULT_NS, sim.net::healLinks);
    }
  }

  @Override
  public void replying(Simulation sim, SimReplica node, Request.OpCase op, Response r) {
    if (faultAtNs >= 0 && firstWriteNs < 0 && op == Request.OpCase.PUT && r.getStatus() == Status.OK
        && node.core.view() > oldView) {
      firstWriteNs = sim.clock.now() - faultAtNs;
    }
  }

  @Override
  public void afterEvent(Simulation sim) {
    if (faultAtNs < 0) {
      return;
    }
    long since = sim.clock.now() - faultAtNs;
    if (viewChangeDoneNs < 0) {
      SimReplica p = sim.currentPrimary();
      if (p != null && p != oldPrimary && p.core.view() > oldView && p.core.mode() == ReplicaCore.Mode.NORMAL) {
        if (primaryElectedNs < 0) {
          primaryElectedNs = since;
        }
        boolean all = true;
        for (int id = 1; id <= sim.config().replicas(); id++) {
          SimReplica n = sim.node(id);
          boolean reachable = n.up && (n == p || sim.net.reachable(n.id, p.id));
          if (reachable && (n.core.view() != p.core.view() || n.core.mode() != ReplicaCore.Mode.NORMAL)) {
            all = false;
          }
        }
        if (all) {
          viewChangeDoneNs = since;
        }
      }
    }
    if (!boundReported && since > BOUND_NS && (viewChangeDoneNs < 0 || firstWriteNs < 0)) {
      boundReported = true;
      sim.violation("2e: " + BOUND_NS / MS + " ms after the primary's " + fault + " with a full window ("
          + entriesInWindow + " entries), new primary " + (primaryElectedNs < 0 ? "not elected" : "after "
          + primaryElectedNs / MS + " ms") + ", view change " + (viewChangeDoneNs < 0 ? "not finished" : "finished")
          + ", " + (firstWriteNs < 0 ? "no write acknowledged" : "first write after " + firstWriteNs / MS + " ms"));
    }
  }

  /** True when the fault happened (the window filled). */
  boolean faulted() {
    return faultAtNs >= 0;
  }
}
