package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.add;
import static io.choir.server.core.CoreKit.kind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.choir.proto.MemberChange;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipSwitchTest: what the primary knows of the members that stay is carried across an epoch
 * switch (DESIGN.md "Membership"), so a change asked right after a switch is checked against the
 * members' real progress, and the carried acknowledgements commit nothing of the new epoch.
 */
class MembershipSwitchTest {
  private static final long BASE2 = Membership.epochBase(2);
  private long requestIds = 1000;

  private static CoreCluster cluster(int n) {
    CoreCluster c = new CoreCluster(n, id -> CoreKit.config(id, 3));
    c.tickAll(1);
    return c;
  }

  /** Sends change to replica at and steps it once: the reply, if one came at once. */
  private Response ask(CoreCluster c, int at, long id, MemberChange.Builder change) {
    int before = c.replies.size();
    c.step(at, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id).setMemberChange(change).build()));
    c.step(at, new Event.Tick());
    return c.replies.subList(before, c.replies.size()).stream().filter(r -> r.getRequestId() == id)
        .findFirst().orElse(null);
  }

  private Response change(CoreCluster c, int at, MemberChange.Builder change) {
    long id = ++requestIds;
    Response at0 = ask(c, at, id, change);
    if (at0 != null) {
      return at0;
    }
    c.run(20 * MS, MS);
    return c.replies.stream().filter(r -> r.getRequestId() == id).findFirst().orElse(null);
  }

  private void writes(CoreCluster c, int at, int count) {
    for (int i = 0; i < count; i++) {
      c.write(at, 0, ++requestIds, "k" + requestIds);
    }
    c.run(20 * MS, MS);
  }

  /** Replicas 1..3 voters, 4 a caught-up learner promoted: epoch 2, and no ack of epoch 2 gets through. */
  private CoreCluster promotedWithoutNewAcks() {
    CoreCluster c = cluster(4);
    writes(c, 1, 5);
    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    writes(c, 1, 5);
    // The acks of the new epoch's first view are late (in flight): the primary knows only the old epoch's.
    c.drop = s -> (s.type() == MessageType.PREPARE_OK || s.type() == MessageType.HEARTBEAT_OK) && s.view() >= BASE2;
    Response promoted = change(c, 1, kind(MemberChange.Kind.PROMOTE, 4));
    assertEquals(Status.OK, promoted.getStatus(), promoted.toString());
    assertEquals(2, c.cores[1].membership().epoch());
    assertEquals(List.of(1, 2, 3, 4), c.cores[1].membership().voterIds());
    return c;
  }

  @Test
  void shouldAdmitARemovalAskedRightAfterAPromotionsSwitch() {
    CoreCluster c = promotedWithoutNewAcks();
    long endOfEpoch = c.cores[1].commitOp();

    long id = ++requestIds;
    Response refused = ask(c, 1, id, kind(MemberChange.Kind.REMOVE, 2));

    assertNull(refused, "admitted, not refused (\"would leave no majority\"): " + refused);
    assertEquals(endOfEpoch + 1, c.cores[1].lastOp(), "the EpochChange is logged");
    c.drop = s -> false;
    c.run(3 * HB, MS);
    Response done = c.replies.stream().filter(r -> r.getRequestId() == id).findFirst().orElse(null);
    assertNotNull(done);
    assertEquals(Status.OK, done.getStatus(), done.toString());
    assertEquals(List.of(1, 3, 4), c.cores[1].membership().voterIds());
  }

  @Test
  void shouldCommitNothingOfTheNewEpochByTheOldEpochsAcks() {
    CoreCluster c = promotedWithoutNewAcks();
    long endOfEpoch = c.cores[1].commitOp();

    writes(c, 1, 3);

    assertEquals(endOfEpoch + 3, c.cores[1].lastOp());
    assertEquals(endOfEpoch, c.cores[1].commitOp(), "only acks of the new epoch commit its ops");
    c.drop = s -> false;
    c.run(3 * HB, MS);
    assertEquals(endOfEpoch + 3, c.cores[1].commitOp());
  }

  @Test
  void shouldStillRefuseARemovalWhenTheStayingVotersWereNotHeardLately() {
    CoreCluster c = promotedWithoutNewAcks();
    // Replicas 3 and 4 fall silent: after the election timeout they are not alive, carried acks or not.
    c.dropSent = (from, s) -> from == 3 || from == 4;
    c.run(2 * CoreKit.T, 10 * MS);

    Response r = change(c, 1, kind(MemberChange.Kind.REMOVE, 2));

    assertNotNull(r);
    assertEquals(Status.INVALID, r.getStatus(), r.toString());
  }
}
