package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.choir.proto.MemberChange;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipRetryTest: a retry of a member change (same session and request id) gets the first
 * attempt's reply, whether that attempt is still in flight or already applied, and never the refusal
 * ("not executed") that checking it against the membership it changed would give (DESIGN.md
 * "Membership").
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

  private static MemberChange.Builder add(int id) {
    return MemberChange.newBuilder().setKind(MemberChange.Kind.ADD_LEARNER).setId(id)
        .setClientAddress("r" + id + ":7000").setPeerAddress("r" + id + ":7100");
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
