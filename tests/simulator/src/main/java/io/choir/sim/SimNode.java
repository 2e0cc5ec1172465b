package io.choir.sim;

import io.choir.proto.Entry;
import io.choir.server.core.CoreConfig;
import io.choir.server.core.Effects;
import io.choir.server.core.RecoveredState;
import io.choir.server.core.ReplicaCore;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MemoryStorage;
import java.util.ArrayList;
import java.util.List;

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

  /** Starts (or restarts) the process from what storage holds, as ReplicaServer does. */
  void start() {
    stateMachine = new KvStateMachine(storage, 10_000, 1024);
    stateMachine.load();
    long applied = stateMachine.applied();
    List<Entry> above = new ArrayList<>();
    long last = storage.lastLogOp();
    if (last > applied) {
      above.addAll(storage.readLog(applied + 1, last, Integer.MAX_VALUE));
    }
    long first = storage.firstLogOp();
    core = new ReplicaCore(config,
        new RecoveredState(0, applied, stateMachine.checksum(), first == 0 ? applied + 1 : first, above));
    up = true;
    incarnation++;
    nextTickAtNs = Long.MAX_VALUE;
    tickScheduledNow = false;
    storageFreeAtNs = 0;
  }

  /** kill -9: the process and its unsynced writes are gone. */
  void crash() {
    up = false;
    incarnation++;
    storage = storage.crash();
    core = null;
    stateMachine = null;
  }
}
