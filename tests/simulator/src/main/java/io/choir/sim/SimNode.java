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

  static final byte[] META_VIEW = "view".getBytes(java.nio.charset.StandardCharsets.UTF_8);
  static final byte[] META_LNV = "last_normal_view".getBytes(java.nio.charset.StandardCharsets.UTF_8);
  boolean buffered;
  static final byte[] META_INITIALIZED = "initialized".getBytes(java.nio.charset.StandardCharsets.UTF_8);

  /** Starts (or restarts) the process from what storage holds, as ReplicaServer does. */
  void start() {
    storage.sync(); // what a kill -9 left in the page cache is the base of this start: make it durable
    stateMachine = new KvStateMachine(storage, 10_000, 1024);
    stateMachine.load();
    byte[] v = storage.getMeta(META_VIEW);
    byte[] l = storage.getMeta(META_LNV);
    long view = v == null ? 0 : io.choir.server.storage.Bytes.bytesToLong(v);
    long lnv = l == null ? 0 : io.choir.server.storage.Bytes.bytesToLong(l);
    long applied = stateMachine.applied();
    List<Entry> above = new ArrayList<>();
    long last = storage.lastLogOp();
    if (last > applied) {
      above.addAll(storage.readLog(applied + 1, last, Integer.MAX_VALUE));
    }
    long first = storage.firstLogOp();
    // A synced marker written at first start tells a restart from a fresh replica, even when a crash
    // under buffered durability lost everything else.
    boolean initialized = storage.getMeta(META_INITIALIZED) != null;
    if (!initialized) {
      storage.write(new io.choir.server.storage.WriteSet().putMeta(META_INITIALIZED, new byte[] {1}), true);
    }
    boolean recovering = buffered && initialized;
    core = new ReplicaCore(config, new RecoveredState(view, lnv, initialized, recovering, false, applied,
        stateMachine.checksum(), first == 0 ? applied + 1 : first, above));
    up = true;
    incarnation++;
    nextTickAtNs = Long.MAX_VALUE;
    tickScheduledNow = false;
    storageFreeAtNs = 0;
  }

  /** Durably records the view, as ReplicaServer.storeView does. */
  void storeView(long view) {
    storage.write(new io.choir.server.storage.WriteSet()
        .putMeta(META_VIEW, io.choir.server.storage.Bytes.longToBytes(view)), true);
  }

  /** Durably records the last normal view (on the storage thread, after the log writes). */
  void storeLastNormalView(long lastNormalView) {
    storage.write(new io.choir.server.storage.WriteSet()
        .putMeta(META_LNV, io.choir.server.storage.Bytes.longToBytes(lastNormalView)), true);
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
