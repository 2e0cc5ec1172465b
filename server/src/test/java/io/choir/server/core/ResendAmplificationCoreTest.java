package io.choir.server.core;

import static io.choir.server.core.CoreKit.MS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.Put;
import io.choir.proto.Request;
import org.junit.jupiter.api.Test;

/**
 * Issue 10, item 6: no request can amplify traffic. The NACK storm (3 KB of NACKs made the
 * primary resend 107 MB, 34,000x) against a primary of 2,000 entries of 1 KB: NACKs for the whole log,
 * one every millisecond, as from a member. Measured: bytes of PREPAREs resent per byte of NACK body
 * received (the figure printed). The primary answers only what the asker can be missing (above what it
 * acknowledged, at or below our last op), skips what it just resent to it, and spends at most the
 * asker's byte budget (ResendBudget).
 */
class ResendAmplificationCoreTest {
  private static final int OPS = 2_000;
  private static final long STORM_BYTES = 3_000;

  private static CoreCluster loaded(int cutOff) {
    return loaded(cutOff, 0);
  }

  /** amplificationLimit: resend_amplification_limit of every replica (a cluster without a key), 0: off. */
  private static CoreCluster loaded(int cutOff, int amplificationLimit) {
    CoreCluster c = new CoreCluster(3, id -> CoreKit.builder(id, 3).resendAmplificationLimit(amplificationLimit).build());
    c.tickAll(0);
    c.dropFrom = cutOff;
    String kb = "x".repeat(1_000);
    for (int i = 1; i <= OPS; i++) {
      c.step(1, new Event.ClientRequest(i, Request.newBuilder().setClientId(1).setRequestId(i)
          .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k" + i)).setValue(ByteString.copyFromUtf8(kb)))
          .build()));
      if (i % 100 == 0) {
        c.tickAll(c.now + MS);
      }
    }
    c.run(100 * MS, 10 * MS);
    assertEquals(OPS, c.cores[1].commitOp(), c.cores[1].toString());
    return c;
  }

  /** Sends STORM_BYTES of NACKs for ops 1..OPS as from asker, one per ms; returns bytes resent to it. */
  private static long storm(CoreCluster c, int asker, String what) {
    long before = c.prepareBytesTo(1, asker);
    long in = 0;
    int nacks = 0;
    Nack nack = Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(1).setLast(OPS)).build();
    while (in < STORM_BYTES) {
      c.now += MS;
      c.inject(1, new Event.Peer(asker, 0, MessageType.NACK, nack));
      in += nack.getSerializedSize();
      nacks++;
    }
    long out = c.prepareBytesTo(1, asker) - before;
    System.out.printf("NACK storm (%s): %d NACKs, %d bytes in, %d bytes resent, amplification %.1fx"
            + " (throttled %d, already acknowledged ops %d)%n", what, nacks, in, out, (double) out / in,
        c.cores[1].counters().resendsThrottled, c.cores[1].counters().resendsAlreadyAcked);
    return out / in;
  }

  @Test
  void shouldResendNothingToAnAskerThatAcknowledgedEverything() {
    CoreCluster c = loaded(0);
    long amplification = storm(c, 2, "asker acknowledged every op");
    assertTrue(amplification < 10, "amplification " + amplification + "x");
  }

  @Test
  void shouldBoundWhatALaggingAskerGetsByItsByteBudget() {
    // Replica 3 was cut off: it really misses every op, so a NACK in its name is answered, but at most
    // the bucket's burst plus its rate over the storm, however many NACKs ask.
    CoreCluster c = loaded(3);
    long start = c.now;
    long before = c.prepareBytesTo(1, 3);
    storm(c, 3, "asker misses every op");
    long out = c.prepareBytesTo(1, 3) - before;
    CoreConfig cfg = CoreKit.config(1, 3);
    long bound = cfg.resendBytesPerPeerPerSec / 1000 * ResendBudget.BURST_MS
        + cfg.resendBytesPerPeerPerSec * (c.now - start) / 1_000_000_000L + 2L * CoreKit.config(1, 3).maxRetransmitBytesPerNack;
    assertTrue(out <= bound, out + " bytes resent, budget " + bound);
    assertTrue(out >= OPS * 1_000L, "the asker gets what it misses: " + out);
  }

  @Test
  void shouldResendALaggingAskersGapAboutOnceWhenItComesBackDuringTheStorm() {
    // Replica 3 comes back as the storm starts: its own NACKs and the storm's both ask for the gap;
    // once it has caught up and acknowledged, the storm gets nothing more.
    CoreCluster c = loaded(3);
    c.dropFrom = 0;
    long amplification = storm(c, 3, "asker misses every op, then catches up");
    assertTrue(c.cores[3].appliedOp() == OPS, c.cores[3].toString());
    assertTrue(amplification < 2 * OPS * 1_000L / STORM_BYTES, amplification + "x");
  }

  /**
   * Without a key a stranger can send NACKs in the name of a member that is away (it never
   * acknowledges, so it can be missing everything): with resend_amplification_limit 10 the primary
   * resends at most 10 times the bytes that arrived in that member's name. Before the credit rule, the
   * same storm made it resend 7,639 times what was sent (bounded only by the byte budget).
   */
  @Test
  void shouldResendAtMostTenTimesWhatArrivedInAnAwayMembersNameWithoutAKey() {
    CoreCluster c = loaded(3, 10);
    long before = c.prepareWireBytesTo(1, 3);
    long in = 0;
    Nack nack = Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(1).setLast(OPS)).build();
    Nack padded = nack.toBuilder().setPadding(ByteString.copyFrom(new byte[1_100])).build();
    int nacks = 0;
    while (in < 20 * STORM_BYTES) {
      c.now += MS;
      // Small NACKs and padded ones, as a stranger would mix them: each earns ten times its bytes.
      Nack n = nacks % 2 == 0 ? nack : padded;
      c.inject(1, new Event.Peer(3, 0, MessageType.NACK, n));
      in += ReplicaCore.DATAGRAM_HEADER_BYTES + n.getSerializedSize();
      nacks++;
    }
    long out = c.prepareWireBytesTo(1, 3) - before;
    System.out.printf("NACK storm without a key (asker away, limit 10): %d NACKs, %d bytes in, %d bytes resent,"
            + " amplification %.2fx (answers cut by credit %d)%n", nacks, in, out, (double) out / in,
        c.cores[1].counters().resendsOverCredit);
    assertTrue(out > 0, "nothing was resent: the rule must answer what was earned");
    assertTrue(out <= 10 * in, "resent " + out + " bytes for " + in + " bytes in: over 10x");
  }

  /**
   * The same rule does not stall a member's own repair: replica 3 comes back missing all 2,000 ops
   * (2 MB) and catches up by padded NACKs, each earning its answer.
   */
  @Test
  void shouldLetAMemberThatComesBackRepairItsGapByPaddedNacksWithoutAKey() {
    CoreCluster c = loaded(3, 10);
    c.dropFrom = 0;
    long start = c.now;
    long nacksBefore = c.cores[3].counters().nacksSent;
    for (int i = 0; i < 20_000 && c.cores[3].appliedOp() < OPS; i++) {
      c.tickAll(c.now + MS);
    }
    System.out.printf("repair of %d ops of 1 KB without a key (limit 10): %d ms of simulated time, %d NACKs%n",
        OPS, (c.now - start) / MS, c.cores[3].counters().nacksSent - nacksBefore);
    assertEquals(OPS, c.cores[3].appliedOp(), c.cores[3].toString());
  }
}
