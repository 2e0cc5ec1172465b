package io.choir.sim;

import io.choir.server.core.CoreConfig;
import io.choir.server.core.Effects;
import io.choir.server.replica.Recovery;
import io.choir.server.replica.ReplicaMeta;
import io.choir.server.core.ReplicaCore;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;

/**
 * SimNode is one simulated replica: the real core and state machine over the in-memory storage twin,
 * with the replica process's threads replaced by scheduled events. A crash keeps only what the storage
 * had synced and bumps the incarnation, so events scheduled for the dead process are ignored.
 */
final class SimNode {
  final int id;
  final CoreConfig config;
  MemoryStorage storage = new MemoryStorage();
  KvStateMachine stateMachine;
  ReplicaCore core;
  boolean up;
  int incarnation;
  long storageFreeAtNs;
  long nextTickAtNs = Long.MAX_VALUE;
  boolean tickScheduledNow;
  final Effects effects = new Effects();

  SimNode(int id, CoreConfig config) {
    this.id = id;
    this.config = config;
  }

  boolean buffered;

  /** Starts (or restarts) the process from what storage holds, with the server's own recovery. */
  void start() {
    stateMachine = new KvStateMachine(storage, 10_000, 1024);
    core = new ReplicaCore(config, Recovery.recover(storage, stateMachine, "node " + id, buffered, true));
    up = true;
    incarnation++;
    nextTickAtNs = Long.MAX_VALUE;
    tickScheduledNow = false;
    storageFreeAtNs = 0;
  }

  /** Durably records the view, as the server does. */
  void storeView(long view) {
    ReplicaMeta.storeView(storage, view);
  }

  /** Durably records the last normal view (on the storage thread, after the log writes). */
  void storeLastNormalView(long lastNormalView, boolean caughtUp) {
    ReplicaMeta.storeLastNormalView(storage, lastNormalView, caughtUp);
  }

  /**
   * The process stops: kill -9 (every completed write survives) or a power loss (the synced writes
   * and a prefix, chosen by random, of the unsynced ones).
   */
  void crash(boolean powerLoss, java.util.random.RandomGenerator random) {
    if (Boolean.getBoolean("choir.sim.trace")) {
      System.out.println((powerLoss ? "POWER LOSS n" : "CRASH n") + id + " " + core);
    }
    up = false;
    incarnation++;
    storage = powerLoss ? storage.powerLoss(random) : storage.processCrash();
    core = null;
    stateMachine = null;
  }
}
