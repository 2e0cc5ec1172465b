package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import io.choir.proto.*;
import org.junit.jupiter.api.Test;

class ExploreAttackTest {
  CoreCluster up() {
    CoreCluster c = new CoreCluster(3);
    c.tickAll(0);
    for (int i = 1; i <= 10; i++) c.write(1, 1, i, "k" + i);
    c.run(200 * MS, 10 * MS);
    System.out.println("start " + c.cores[1] + "\n " + c.cores[2] + "\n " + c.cores[3]);
    return c;
  }
  void attempt(String name, java.util.function.Consumer<CoreCluster> attack) {
    CoreCluster c = up();
    try {
      attack.accept(c);
      c.run(5000 * MS, 10 * MS);
      for (int i = 11; i <= 13; i++) { int p = c.primary(); if (p > 0) c.write(p, 1, i, "k" + i); }
      c.run(3000 * MS, 10 * MS);
      System.out.println(name + ": OK " + c.cores[1] + "\n " + c.cores[2] + "\n " + c.cores[3]);
    } catch (RuntimeException e) {
      System.out.println(name + ": THREW " + e);
      e.printStackTrace(System.out);
    }
  }
  static Event.Peer dvc(int from, long view, long lnv, long lastOp, long commit) {
    return new Event.Peer(from, view, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder().setLastNormalView(lnv).setLastOp(lastOp).setCommit(commit).build());
  }
  @Test void explore() {
    attempt("dvc-v0-to-primary", c -> c.inject(1, dvc(2, 0, 0, 1_000_000, 1_000_000)));
    attempt("dvc-v1-from1-to2", c -> c.inject(2, dvc(1, 1, 0, 1_000_000, 1_000_000)));
    attempt("dvc-v1-from3-to2", c -> c.inject(2, dvc(3, 1, 0, 1_000_000, 1_000_000)));
    attempt("dvc-v1-from1-to2-lnv0-last10", c -> c.inject(2, dvc(1, 1, 0, 10, 1_000_000)));
    attempt("dvc-v1-from1-to2-both", c -> { c.inject(2, dvc(1, 1, 0, 1_000_000, 1_000_000)); c.inject(3, dvc(1, 2, 0, 1_000_000, 1_000_000)); });
    attempt("dvc-v1-from1-commit-only", c -> c.inject(2, dvc(1, 1, 5, 1_000_000, 1_000_000)));
    attempt("svc-max", c -> c.inject(2, new Event.Peer(1, Long.MAX_VALUE, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance())));
    attempt("svc-max-both", c -> { c.inject(2, new Event.Peer(1, Long.MAX_VALUE, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance())); c.inject(3, new Event.Peer(1, Long.MAX_VALUE, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()));});
    attempt("hb-neg-view", c -> c.inject(2, new Event.Peer(1, -5, MessageType.HEARTBEAT, Heartbeat.getDefaultInstance())));
    attempt("sv-absurd", c -> c.inject(2, new Event.Peer(3, 2, MessageType.START_VIEW, StartView.newBuilder().setLastOp(1L<<62).setCommit(1L<<62).build())));
    attempt("sv-commit>op", c -> c.inject(2, new Event.Peer(3, 2, MessageType.START_VIEW, StartView.newBuilder().setLastOp(3).setCommit(1_000_000).build())));
    attempt("prep-neg", c -> c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(-1).addEntries(CoreKit.entry(-1, 0, "x")).setCommit(-1).build())));
    attempt("prep-far", c -> c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(Long.MAX_VALUE).addEntries(CoreKit.entry(Long.MAX_VALUE, 0, "x")).setCommit(Long.MAX_VALUE).build())));
    attempt("prep-commit-max", c -> c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(11).addEntries(CoreKit.entry(11, 0, "x")).setCommit(Long.MAX_VALUE).build())));
    attempt("hb-lw-max", c -> c.inject(2, new Event.Peer(1, 0, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(Long.MAX_VALUE).setLowWatermark(Long.MAX_VALUE).setCommit(Long.MAX_VALUE).build())));
    attempt("entry-time-max", c -> c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(11).addEntries(CoreKit.entry(11, 0, "x").toBuilder().setTimeMs(Long.MAX_VALUE)).setCommit(10).build())));
    attempt("recresp-neg", c -> c.inject(2, new Event.Peer(1, -1, MessageType.RECOVERY_RESPONSE, RecoveryResponse.getDefaultInstance())));
    attempt("pvc-max", c -> c.inject(2, new Event.Peer(1, Long.MAX_VALUE, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(Long.MIN_VALUE).build())));
  }
}
