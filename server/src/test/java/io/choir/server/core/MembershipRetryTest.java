package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.add;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MemberChange;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipRetryTest: a retry of a member change (same session and request id) gets the first
 * attempt's reply, whether that attempt is still in flight or already applied (also after every
 * replica restarted, or at a primary that got the change by state transfer: the membership row keeps
 * the recent changes), and never the refusal ("not executed") that checking it against the membership
 * it changed would give (DESIGN.md "Membership").
 */
class MembershipRetryTest {
  private static final long SESSION = 77;

  private static CoreCluster cluster(int n) {
    CoreCluster c = new CoreCluster(n, id -> CoreKit.config(id, 3));
    c.tickAll(1);
    return c;
  }

  private static void send(CoreCluster c, int at, long requestId, MemberChange.Builder change) {
    c.step(at, new Event.ClientRequest(requestId, Request.newBuilder().setClientId(SESSION)
        .setRequestId(requestId).setMemberChange(change).build()));
    c.step(at, new Event.Tick());
  }

  private static List<Response> repliesTo(CoreCluster c, long requestId) {
    return c.replies.stream().filter(r -> r.getRequestId() == requestId).toList();
  }

  @Test
  void shouldAnswerARetryOfAnAppliedChangeWithItsReply() {
    CoreCluster c = cluster(4);
    send(c, 1, 500, add(4));
    c.run(20 * MS, MS);
    Response first = repliesTo(c, 500).get(0);
    assertEquals(Status.OK, first.getStatus(), first.toString());
    long last = c.cores[1].lastOp();

    send(c, 1, 500, add(4)); // the reply was lost: the client retries
    c.run(20 * MS, MS);

    List<Response> replies = repliesTo(c, 500);
    assertEquals(2, replies.size(), replies.toString());
    Response retry = replies.get(1);
    assertEquals(Status.OK, retry.getStatus(), "not \"already a member\": " + retry);
    assertEquals(last, retry.getOp(), "the first attempt's op");
    assertEquals(last, c.cores[1].lastOp(), "nothing logged again");
    assertEquals(List.of(1, 2, 3, 4), c.cores[1].membership().memberIds());
    assertEquals(4, retry.getMembership().getMembersCount(), "the membership after the change");
  }

  @Test
  void shouldAnswerARetryOfAnAppliedChangeAfterEveryReplicaRestarted() {
    CoreCluster c = cluster(4);
    send(c, 1, 500, add(4));
    c.run(20 * MS, MS);
    Response first = repliesTo(c, 500).get(0);
    assertEquals(Status.OK, first.getStatus(), first.toString());

    for (int id = 1; id <= 4; id++) {
      c.restart(id); // a power loss: nothing of the first attempt's reply is in memory anywhere
    }
    int primary = primaryWithin(c, 10 * T);
    send(c, primary, 500, add(4)); // the reply was lost: the client retries, at the new primary
    c.run(20 * MS, MS);

    List<Response> replies = repliesTo(c, 500);
    assertEquals(2, replies.size(), replies.toString());
    Response retry = replies.get(1);
    assertEquals(Status.OK, retry.getStatus(), "executed, so not \"already a member\": " + retry);
    assertEquals(first.getVersion(), retry.getOp(), "the first attempt's op");
  }

  @Test
  void shouldAnswerARetryAtANewPrimaryThatGotTheChangeByStateTransfer() {
    CoreCluster c = new CoreCluster(4, id -> CoreKit.builder(id, 3).logRetentionMinOps(5).logRetentionMaxOps(10).build());
    c.serveStateTransfers = true;
    c.tickAll(1);
    c.dropFrom = 3; // replica 3 misses the change and what follows, beyond the primary's log
    send(c, 1, 500, add(4));
    for (int i = 0; i < 40; i++) {
      c.write(1, 0, 10_000 + i, "k" + i);
    }
    c.run(20 * MS, MS);
    Response first = repliesTo(c, 500).get(0);
    assertEquals(Status.OK, first.getStatus(), first.toString());
    c.dropFrom = 0;
    c.run(10 * T, 10 * MS);
    assertTrue(c.cores[3].counters().stateTransfers > 0, "replica 3 caught up by a state transfer");
    assertEquals(List.of(1, 2, 3, 4), c.cores[3].membership().memberIds());

    // Replica 3 becomes the primary: the primary of the moment is cut off until another one leads.
    for (int round = 0; round < 6 && c.primary() != 3; round++) {
      int deposed = c.primary();
      c.dropFrom = deposed;
      long deadline = c.now + 10 * T;
      while ((c.primary() == 0 || c.primary() == deposed) && c.now < deadline) {
        c.run(10 * MS, MS);
      }
      c.dropFrom = 0;
      c.run(T, 10 * MS);
    }
    assertEquals(3, c.primary(), "replica 3 leads");
    c.dropFrom = 0;
    send(c, 3, 500, add(4));
    c.run(20 * MS, MS);

    List<Response> replies = repliesTo(c, 500);
    assertEquals(2, replies.size(), replies.toString());
    Response retry = replies.get(1);
    assertEquals(Status.OK, retry.getStatus(), "executed, so not \"already a member\": " + retry);
    assertEquals(first.getVersion(), retry.getOp(), "the first attempt's op");
  }

  /** Runs the cluster until some replica is primary, within limit (cluster time): its id. */
  private static int primaryWithin(CoreCluster c, long limit) {
    long deadline = c.now + limit;
    while (c.primary() == 0 && c.now < deadline) {
      c.run(10 * MS, MS);
    }
    assertTrue(c.primary() != 0, "a primary within " + limit / MS + " ms");
    return c.primary();
  }

  @Test
  void shouldLetARetryOfAChangeInFlightWaitForItsReply() {
    CoreCluster c = cluster(3);
    // Backups acknowledge nothing for now: the EpochChange stays uncommitted.
    c.drop = s -> s.type() == MessageType.PREPARE_OK || s.type() == MessageType.HEARTBEAT_OK;
    MemberChange.Builder remove = MemberChange.newBuilder().setKind(MemberChange.Kind.REMOVE).setId(3);
    send(c, 1, 600, remove);
    long last = c.cores[1].lastOp();
    send(c, 1, 600, remove);
    assertEquals(List.of(), repliesTo(c, 600), "not \"change in progress\"");
    assertEquals(last, c.cores[1].lastOp());

    c.drop = s -> false;
    c.run(3 * HB, MS);

    List<Response> replies = repliesTo(c, 600);
    assertEquals(2, replies.size(), replies.toString());
    for (Response r : replies) {
      assertEquals(Status.OK, r.getStatus(), r.toString());
    }
    assertEquals(2, c.cores[1].membership().epoch());
    assertNotNull(c.cores[1].membership().member(1).orElse(null));
  }
}
