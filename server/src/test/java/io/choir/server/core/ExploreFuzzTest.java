package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import io.choir.proto.*;
import java.util.*;
import org.junit.jupiter.api.Test;

class ExploreFuzzTest {
  static long pick(SplittableRandom r, long base) {
    return switch (r.nextInt(9)) {
      case 0 -> 0; case 1 -> -1; case 2 -> Long.MAX_VALUE; case 3 -> base + (1L << 40); case 4 -> base + 1;
      case 5 -> Math.max(0, base - 1); case 6 -> base; case 7 -> 1_000_000; default -> r.nextLong(Math.max(1, base + 5));
    };
  }
  static Event.Peer msg(SplittableRandom r, CoreCluster c) {
    ReplicaCore ref = c.cores[1 + r.nextInt(3)];
    long v = pick(r, ref.view()), op = ref.lastOp(), cm = ref.commitOp();
    int from = 1 + r.nextInt(3);
    MessageType t = MessageType.forNumber(new int[]{1,2,3,4,5,6,7,8,9,13,14,15}[r.nextInt(12)]);
    com.google.protobuf.MessageLite body = switch (t) {
      case PREPARE -> { long f = pick(r, op); Prepare.Builder b = Prepare.newBuilder().setFirstOp(f).setCommit(pick(r, cm));
        int k = r.nextInt(3); for (int i = 0; i < k; i++) b.addEntries(CoreKit.entry(r.nextInt(4)==0 ? pick(r, op) : f + i, pick(r, ref.view()), "z" + r.nextInt(3))); yield b.build(); }
      case PREPARE_OK -> PrepareOk.newBuilder().setOp(pick(r, op)).build();
      case HEARTBEAT -> Heartbeat.newBuilder().setLastOp(pick(r, op)).setCommit(pick(r, cm)).setLowWatermark(pick(r, 1)).setRound(pick(r, 3)).build();
      case NACK -> Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(pick(r, op)).setLast(pick(r, op))).build();
      case START_VIEW_CHANGE -> StartViewChange.getDefaultInstance();
      case DO_VIEW_CHANGE -> DoViewChange.newBuilder().setLastNormalView(pick(r, ref.lastNormalView())).setLastOp(pick(r, op)).setCommit(pick(r, cm)).setLogFirstOp(pick(r, 1)).build();
      case START_VIEW -> StartView.newBuilder().setLastOp(pick(r, op)).setCommit(pick(r, cm)).build();
      case RECOVERY -> Recovery.newBuilder().setNonce(r.nextLong()).build();
      case RECOVERY_RESPONSE -> RecoveryResponse.newBuilder().setNonce(r.nextLong()).setLastOp(pick(r, op)).setCommit(pick(r, cm)).setFromPrimary(r.nextBoolean()).build();
      case HEARTBEAT_OK -> HeartbeatOk.newBuilder().setOp(pick(r, op)).setRound(pick(r, 3)).build();
      case PRE_VIEW_CHANGE -> PreViewChange.newBuilder().setView(pick(r, v)).build();
      default -> PreViewChangeOk.newBuilder().setView(pick(r, v)).build();
    };
    return new Event.Peer(from, v, t, body);
  }
  @Test void fuzz() {
    Map<String, Integer> seen = new TreeMap<>();
    for (long seed = 1; seed <= 300; seed++) {
      SplittableRandom r = new SplittableRandom(seed);
      CoreCluster c = new CoreCluster(3);
      c.tickAll(0);
      long req = 1;
      try {
        for (int i = 0; i < 400; i++) {
          if (r.nextInt(4) == 0) { int p = c.primary(); if (p > 0) c.write(p, 1, req++, "k" + r.nextInt(5)); }
          if (r.nextInt(3) == 0) { Event.Peer m = msg(r, c); int to = 1 + r.nextInt(3); if (to != m.from()) c.inject(to, m); }
          c.tickAll(c.now + 5 * MS);
        }
      } catch (RuntimeException e) {
        StackTraceElement[] st = e.getStackTrace();
        String where = e.getClass().getSimpleName() + " " + String.valueOf(e.getMessage()).replaceAll("[0-9]+", "N") + " @ " + st[0] + " < " + (st.length > 1 ? st[1] : "") + " < " + (st.length > 2 ? st[2] : "");
        if (seen.merge(where, 1, Integer::sum) == 1) System.out.println("seed " + seed + ": " + e);
      }
    }
    seen.forEach((k, v) -> System.out.println(v + " x " + k));
  }
}
