package io.choir.client;

import static io.choir.proto.MemberRole.LEARNER;
import static io.choir.proto.MemberRole.VOTER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MemberChange;
import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

/**
 * The catch-up wait of addMember on a simulated clock and network (the real dispatcher, no threads,
 * no sleeps): it polls every 200 simulated ms, promotes only once the learner's acked op has reached
 * the primary's op, and gives up at its deadline without promoting. The learner's speed and the
 * primary's op come from the seed, which every test prints; replay one with -Dchoir.test.seed=S.
 */
class MembershipCatchUpSimTest {
  private static final long MS = 1_000_000L;
  private static final String A = "10.0.0.1:7301";

  private static long seed(String test) {
    long seed = Long.getLong("choir.test.seed", 20261202L);
    System.out.println(test + " seed=" + seed + " (replay: -Dchoir.test.seed=" + seed + ")");
    return seed;
  }

  /**
   * A primary of voters 1 2 3 whose learner 4 acks ackPerMs ops per simulated ms once added, up to its
   * op; it refuses a promotion as the real one does, unless the learner is near its op.
   */
  private static final class Primary {
    final SimClock clock;
    final FakeStore store = new FakeStore(1, 1);
    final long op;
    final double ackPerMs;
    final List<Long> listAtMs = new ArrayList<>();
    long addedAtNs = -1;
    long promotedAtNs = -1;
    long ackedAtPromotion = -1;

    Primary(SimClock clock, long op, double ackPerMs) {
      this.clock = clock;
      this.op = op;
      this.ackPerMs = ackPerMs;
    }

    long acked() {
      return addedAtNs < 0 ? 0 : Math.min(op, (long) ((clock.nanoTime() - addedAtNs) / (double) MS * ackPerMs));
    }

    MembershipInfo.Builder membership(boolean promoted) {
      MembershipInfo.Builder m = MembershipInfo.newBuilder().setEpoch(promoted ? 2 : 1);
      for (int id = 1; id <= 3; id++) {
        m.addMembers(MemberStatus.newBuilder().setId(id).setClientAddress("10.0.0." + id + ":7301")
            .setPeerAddress("10.0.0." + id + ":7401").setRole(VOTER).setAckedOp(op));
      }
      return m.addMembers(MemberStatus.newBuilder().setId(4).setClientAddress("10.0.0.4:7301")
          .setPeerAddress("10.0.0.4:7401").setRole(promoted ? VOTER : LEARNER).setAckedOp(acked()));
    }

    void onRequest(SimNet.Conn conn, Request r) {
      if (r.hasRegisterSession() || r.hasCloseSession()) {
        conn.reply(store.apply(r));
        return;
      }
      Response.Builder reply = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setOp(op);
      if (r.hasListMembers()) {
        listAtMs.add(clock.nanoTime() / MS);
        conn.reply(reply.setMembership(membership(false)).build());
      } else if (r.getMemberChange().getKind() == MemberChange.Kind.ADD_LEARNER) {
        addedAtNs = clock.nanoTime();
        conn.reply(reply.setMembership(membership(false)).build());
      } else {
        promotedAtNs = clock.nanoTime();
        ackedAtPromotion = acked();
        // The primary's own rule: near the commit (a batch of 1024, and a 16th of the log).
        conn.reply(acked() < op - Math.min(1024, op / 16)
            ? reply.setStatus(Status.INVALID).setError("learner 4 has op " + acked() + " of " + op).build()
            : reply.setMembership(membership(true)).build());
      }
    }
  }

  private static DeterministicClient client(SimClock clock, SimNet net, Random random) {
    return DeterministicClient.builder().endpoints(List.of(A)).requestTimeout(Duration.ofSeconds(5))
        .attemptTimeout(Duration.ofSeconds(1)).clientId(0xC11E48L).random(new Random(random.nextLong()))
        .scheduler(clock).transport(net).build();
  }

  @Test
  void shouldPollEvery200MsAndPromoteOnlyOnceTheLearnerHasCaughtUp() {
    long seed = seed("catch-up then promote");
    Random random = new Random(seed);
    SimClock clock = new SimClock();
    SimNet net = new SimNet(clock, new Random(random.nextLong()), 1 * MS, 3 * MS);
    Primary primary = new Primary(clock, 5_000 + random.nextInt(5_000), 2 + random.nextDouble() * 8);
    net.replica(A, primary::onRequest);
    DeterministicClient client = client(clock, net, random);
    List<CatchUpProgress> progress = new ArrayList<>();

    long startMs = clock.nanoTime() / MS;
    CompletableFuture<Membership> done = clock.runUntilDone(client.async().membership()
        .addMember(4, "10.0.0.4:7301", "10.0.0.4:7401", 0, Duration.ofSeconds(30), progress::add));
    Membership m = done.join();

    long catchUpMs = (long) Math.ceil(CatchUp.caughtUpAt(primary.op) / primary.ackPerMs);
    long tookMs = clock.nanoTime() / MS - startMs;
    System.out.println("learner of " + primary.op + " ops at " + String.format("%.2f", primary.ackPerMs)
        + " ops/ms caught up after " + catchUpMs + " ms; promoted after " + tookMs + " ms, "
        + primary.listAtMs.size() + " polls");
    assertEquals(MemberRole.VOTER, m.member(4).orElseThrow().role());
    assertTrue(primary.ackedAtPromotion >= primary.op - CatchUp.SLACK_OPS, "promoted only once caught up: acked "
        + primary.ackedAtPromotion + " of " + primary.op);
    for (int i = 1; i < primary.listAtMs.size(); i++) { // (the deadline, 30 s, is far away)
      long gap = primary.listAtMs.get(i) - primary.listAtMs.get(i - 1);
      assertTrue(gap >= CatchUp.POLL_INTERVAL_MS && gap <= CatchUp.POLL_INTERVAL_MS + 10, "poll gap " + gap + " ms");
    }
    long promotedAfterMs = (primary.promotedAtNs - primary.addedAtNs) / MS;
    assertTrue(promotedAfterMs >= catchUpMs && promotedAfterMs <= catchUpMs + CatchUp.POLL_INTERVAL_MS + 20,
        "promoted " + promotedAfterMs + " ms after the add; caught up at " + catchUpMs + " ms");
    assertEquals(primary.listAtMs.size(), progress.size());
    assertTrue(progress.get(progress.size() - 1).caughtUp());
    assertTrue(progress.subList(0, progress.size() - 1).stream().noneMatch(CatchUpProgress::caughtUp));
  }

  @Test
  void shouldGiveUpAtTheCatchUpDeadlineWithoutPromoting() {
    long seed = seed("catch-up deadline");
    Random random = new Random(seed);
    SimClock clock = new SimClock();
    SimNet net = new SimNet(clock, new Random(random.nextLong()), 1 * MS, 3 * MS);
    Primary primary = new Primary(clock, 50_000, 1); // needs 50 s; the wait is 2 s
    net.replica(A, primary::onRequest);
    DeterministicClient client = client(clock, net, random);

    CompletableFuture<Membership> done = clock.runUntilDone(client.async().membership()
        .addMember(4, "10.0.0.4:7301", "10.0.0.4:7401", 0, Duration.ofSeconds(2), null));
    long endMs = clock.nanoTime() / MS;
    assertTrue(done.isCompletedExceptionally());
    Throwable e = Futures.unwrap(assertInstanceOf(CompletionException.class, catching(done)));
    LearnerNotCaughtUpException notCaughtUp = assertInstanceOf(LearnerNotCaughtUpException.class, e);
    long waitedMs = endMs - primary.addedAtNs / MS;
    System.out.println("gave up after " + waitedMs + " ms of a 2000 ms wait, acked " + notCaughtUp.ackedOp() + " of "
        + notCaughtUp.targetOp());
    assertTrue(waitedMs >= 2_000 && waitedMs <= 2_000 + 20, "waited " + waitedMs + " ms: the last poll is at the deadline");
    assertEquals(-1, primary.promotedAtNs, "no promotion was sent");
    assertTrue(notCaughtUp.ackedOp() > 1_000 && notCaughtUp.ackedOp() < 2_100, "acked " + notCaughtUp.ackedOp());
  }

  private static Throwable catching(CompletableFuture<?> f) {
    try {
      f.join();
      throw new AssertionError("expected a failure");
    } catch (CompletionException e) {
      return e;
    }
  }
}
