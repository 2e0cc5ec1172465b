package io.choir.client;

import static io.choir.proto.MemberRole.LEARNER;
import static io.choir.proto.MemberRole.VOTER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.MemberChange;
import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.netty.channel.Channel;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The membership calls against a scripted fake replica over real sockets: each request built right
 * and sent as a write of the session, OK answers parsed, a refusal is "not executed", no answer is
 * "unknown", a retry reuses the request id, and addMember / replaceMember wait for the learner to
 * catch up before they promote or replace.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MembershipClientTest {
  private static ChoirClient clientFor(FakeServer server, Duration requestTimeout) {
    return ChoirClient.builder().endpoints(server.address()).requestTimeout(requestTimeout)
        .eventLoopThreads(1).random(new Random(7)).build();
  }

  private static MemberStatus.Builder member(int id, long acked) {
    return MemberStatus.newBuilder().setId(id).setClientAddress("127.0.0.1:" + (7300 + id))
        .setPeerAddress("127.0.0.1:" + (7400 + id)).setAckedOp(acked);
  }

  private static MemberStatus voter(int id, long acked) {
    return member(id, acked).setRole(VOTER).build();
  }

  private static MemberStatus learner(int id, long acked) {
    return member(id, acked).setRole(LEARNER).build();
  }

  private static MembershipInfo.Builder threeVoters(long epoch) {
    return MembershipInfo.newBuilder().setEpoch(epoch).setStartView(epoch * 16)
        .addMembers(voter(1, 90))
        .addMembers(voter(2, 90))
        .addMembers(voter(3, 88));
  }

  private static Response ok(Request r, MembershipInfo.Builder m, long op) {
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setMembership(m).setOp(op).build();
  }

  private static Response refused(Request r, String why) {
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.INVALID).setError(why).build();
  }

  private static List<Request> changes(FakeServer server) {
    return server.received().stream().filter(Request::hasMemberChange).toList();
  }

  @Test
  void shouldListTheMembersWithTheirRolesAndAckedOps() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, r) -> FakeServer.reply(ch, ok(r, threeVoters(2)
            .addMembers(learner(4, 40)).setChangeInProgress(true)
            .setChange("learner 4 not yet promoted"), 95)));
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      Membership m = client.membership().members();
      assertTrue(server.received().get(0).hasListMembers());
      assertEquals(client.clientId(), server.received().get(0).getClientId(), "a read: no session needed");
      assertEquals(List.of(), server.sessionRequests());
      assertEquals(2, m.epoch());
      assertEquals(32, m.startView());
      assertEquals(95, m.op());
      assertTrue(m.changeInProgress());
      assertEquals("learner 4 not yet promoted", m.change());
      assertEquals(List.of(1, 2, 3), m.voters().stream().map(Member::id).toList());
      assertEquals(new Member(4, "127.0.0.1:7304", "127.0.0.1:7404", MemberRole.LEARNER, 40), m.member(4).orElseThrow());
      assertFalse(m.member(5).isPresent());
    }
  }

  @Test
  void shouldSendEachChangeAsAWriteOfTheSessionAndParseTheNewMembership() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, r) -> FakeServer.reply(ch, ok(r, threeVoters(3), 120)));
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      MembershipClient members = client.membership();
      assertEquals(3, members.addLearner(4, "10.0.0.4:7301", "10.0.0.4:7401", 2).epoch());
      assertEquals(120, members.promote(4, 2).op());
      members.removeMember(1, 0);
      members.replaceMember(2, 5, 7);
      List<MemberChange> sent = changes(server).stream().map(Request::getMemberChange).toList();
      assertEquals(List.of(
          MemberChange.newBuilder().setKind(MemberChange.Kind.ADD_LEARNER).setId(4).setClientAddress("10.0.0.4:7301")
              .setPeerAddress("10.0.0.4:7401").setExpectedEpoch(2).build(),
          MemberChange.newBuilder().setKind(MemberChange.Kind.PROMOTE).setId(4).setExpectedEpoch(2).build(),
          MemberChange.newBuilder().setKind(MemberChange.Kind.REMOVE).setId(1).build(),
          MemberChange.newBuilder().setKind(MemberChange.Kind.REPLACE).setId(5).setReplacedId(2).setExpectedEpoch(7)
              .build()), sent);
      for (Request r : changes(server)) {
        assertEquals(client.sessionId(), r.getClientId(), "a change is a write of the session");
      }
      assertEquals(1, server.sessionRequests().stream().filter(Request::hasRegisterSession).count());
    }
  }

  @Test
  void shouldRefuseBadArgumentsBeforeSendingAnything() throws Exception {
    try (FakeServer server = FakeServer.start();
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      MembershipClient members = client.membership();
      assertThrows(IllegalArgumentException.class, () -> members.promote(0, 0));
      assertThrows(IllegalArgumentException.class, () -> members.removeMember(256, 0));
      assertThrows(IllegalArgumentException.class, () -> members.addLearner(4, "no-port", "h:1", 0));
      assertThrows(IllegalArgumentException.class, () -> members.addLearner(4, "h:1", "h:1", -1));
      assertThrows(IllegalArgumentException.class, () -> members.replaceMember(2, 2, 0));
      assertEquals(List.of(), server.received());
    }
  }

  @Test
  void shouldReportARefusedChangeAsNotExecuted() throws Exception {
    AtomicInteger n = new AtomicInteger();
    try (FakeServer server = FakeServer.start((s, ch, r) -> FakeServer.reply(ch, n.getAndIncrement() == 0
            ? refused(r, "change in progress: learner 4 not yet promoted")
            // A dedicated status a newer server may answer: still a refusal of the change.
            : Response.newBuilder().setRequestId(r.getRequestId()).setStatusValue(42).setError("epoch is 3, not 2")
                .build()));
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      MemberChangeRefusedException e = assertThrows(MemberChangeRefusedException.class,
          () -> client.membership().removeMember(3, 0));
      assertEquals("change in progress: learner 4 not yet promoted", e.reason());
      assertTrue(e.getMessage().contains("not executed"), e.getMessage());
      MemberChangeRefusedException e2 = assertThrows(MemberChangeRefusedException.class,
          () -> client.membership().promote(4, 2));
      assertEquals("epoch is 3, not 2", e2.reason());
      assertEquals(2, changes(server).size(), "a refusal is final: not retried");
    }
  }

  @Test
  void shouldReportAChangeWithoutAnAnswerAsAnUnknownOutcome() throws Exception {
    try (FakeServer server = FakeServer.start(FakeServer::hold);
        ChoirClient client = clientFor(server, Duration.ofMillis(1_200))) {
      ChoirTimeoutException e = assertThrows(ChoirTimeoutException.class, () -> client.membership().removeMember(3, 0));
      assertTrue(e.getMessage().contains("outcome is unknown"), e.getMessage());
      assertFalse(changes(server).isEmpty());
    }
  }

  @Test
  void shouldReportAConnectionLostAfterSendingAsAnUnknownOutcomeNeverAsNotExecuted() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, r) -> {
          if (r.hasMemberChange()) {
            ch.close(); // every attempt reaches the replica, and no answer ever comes back
          } else {
            FakeServer.answer(s, ch, r);
          }
        });
        ChoirClient client = clientFor(server, Duration.ofMillis(1_500))) {
      ChoirException e = assertThrows(ChoirException.class, () -> client.membership().addLearner(4, "h:1", "h:2", 0));
      assertInstanceOf(ChoirTimeoutException.class, e, e.toString());
      assertTrue(e.getMessage().contains("outcome is unknown"), e.getMessage());
      assertTrue(changes(server).size() > 1, "retried meanwhile");
      assertEquals(1, changes(server).stream().map(Request::getRequestId).distinct().count(), "with one request id");
    }
  }

  @Test
  void shouldReportARefusedRetryAfterAnAttemptThatMayHaveExecutedAsUnknownNeverAsNotExecuted() throws Exception {
    // The first attempt reaches the primary (it may be in the log) and its connection is lost; the
    // primary refuses the retry as "change in progress" (its checks come before its duplicate check):
    // the change may well commit, so "not executed" would be a lie.
    AtomicInteger n = new AtomicInteger();
    try (FakeServer server = FakeServer.start((s, ch, r) -> {
          if (!r.hasMemberChange()) {
            FakeServer.answer(s, ch, r);
          } else if (n.getAndIncrement() == 0) {
            ch.close();
          } else {
            FakeServer.reply(ch, refused(r, "change in progress: configuration entry at op 120 not applied yet"));
          }
        });
        ChoirClient client = clientFor(server, Duration.ofSeconds(5))) {
      ChoirException e = assertThrows(ChoirException.class, () -> client.membership().promote(4, 0));
      assertInstanceOf(ChoirTimeoutException.class, e, e.toString());
      assertTrue(e.getMessage().contains("outcome is unknown") && e.getMessage().contains("change in progress"),
          e.getMessage());
      assertEquals(2, changes(server).size());
    }
  }

  @Test
  void shouldRetryAChangeAfterALostConnectionWithTheSameRequestId() throws Exception {
    AtomicInteger n = new AtomicInteger();
    try (FakeServer server = FakeServer.start((s, ch, r) -> {
          if (r.hasMemberChange() && n.getAndIncrement() == 0) {
            ch.close(); // the change may have reached the log: the client must resend the same request
          } else {
            FakeServer.reply(ch, ok(r, threeVoters(4), 130));
          }
        });
        ChoirClient client = clientFor(server, Duration.ofSeconds(5))) {
      assertEquals(4, client.membership().promote(4, 3).epoch());
      List<Request> sent = changes(server);
      assertEquals(2, sent.size());
      assertEquals(sent.get(0), sent.get(1), "the same request: client id, request id and change");
    }
  }

  /** A primary whose learner 4 acks `step` more ops per poll, up to op 100; it refuses an early promote. */
  private static final class CatchingUp {
    final AtomicLong acked = new AtomicLong();
    final long step;
    final List<Request> order = new CopyOnWriteArrayList<>();

    CatchingUp(long step) {
      this.step = step;
    }

    void onRequest(FakeServer s, Channel ch, Request r) {
      order.add(r);
      MembershipInfo.Builder withLearner = threeVoters(2).addMembers(learner(4, acked.get())).setChangeInProgress(true);
      if (r.hasListMembers()) {
        acked.set(Math.min(100, acked.get() + step));
        FakeServer.reply(ch, ok(r, threeVoters(2).addMembers(learner(4, acked.get())).setChangeInProgress(true), 100));
        return;
      }
      switch (r.getMemberChange().getKind()) {
        case ADD_LEARNER -> FakeServer.reply(ch, ok(r, withLearner, 60));
        case PROMOTE, REPLACE -> FakeServer.reply(ch, acked.get() < 100 ? refused(r, "learner 4 has op 40 of 100")
            : ok(r, threeVoters(3).addMembers(voter(4, 100)), 101));
        default -> FakeServer.reply(ch, refused(r, "unexpected"));
      }
    }

  }

  @Test
  void shouldAddAMemberByWaitingForTheLearnerToCatchUpAndThenPromotingIt() throws Exception {
    CatchingUp primary = new CatchingUp(30);
    List<CatchUpProgress> progress = new CopyOnWriteArrayList<>();
    try (FakeServer server = FakeServer.start(primary::onRequest);
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      Membership m = client.membership().addMember(4, "127.0.0.1:7304", "127.0.0.1:7404", 2, Duration.ofSeconds(10),
          progress::add);
      assertEquals(MemberRole.VOTER, m.member(4).orElseThrow().role());
      assertEquals(3, m.epoch());
      List<String> order = primary.order.stream()
          .map(r -> r.hasListMembers() ? "list" : r.getMemberChange().getKind().name()).toList();
      assertEquals(List.of("ADD_LEARNER", "list", "list", "list", "list", "PROMOTE"), order);
      assertEquals(List.of(30L, 60L, 90L, 100L), progress.stream().map(CatchUpProgress::ackedOp).toList());
      assertTrue(progress.stream().allMatch(p -> p.targetOp() == 100 && p.learnerId() == 4));
      assertTrue(progress.get(3).caughtUp());
      assertFalse(progress.get(2).caughtUp());
      assertEquals(2, primary.order.get(5).getMemberChange().getExpectedEpoch(), "the epoch the add was made in");
    }
  }

  @Test
  void shouldReplaceAVoterByAddingTheNewMemberWaitingAndReplacing() throws Exception {
    CatchingUp primary = new CatchingUp(100);
    try (FakeServer server = FakeServer.start(primary::onRequest);
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      client.membership().replaceMember(1, 4, "127.0.0.1:7304", "127.0.0.1:7404", 0, Duration.ofSeconds(10), null);
      List<Request> sent = primary.order.stream().filter(Request::hasMemberChange).toList();
      assertEquals(2, sent.size());
      assertEquals(MemberChange.newBuilder().setKind(MemberChange.Kind.REPLACE).setId(4).setReplacedId(1).build(),
          sent.get(1).getMemberChange());
    }
  }

  @Test
  void shouldGiveUpWithoutPromotingWhenTheLearnerDoesNotCatchUpInTime() throws Exception {
    CatchingUp primary = new CatchingUp(0);
    try (FakeServer server = FakeServer.start(primary::onRequest);
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      LearnerNotCaughtUpException e = assertThrows(LearnerNotCaughtUpException.class, () -> client.membership()
          .addMember(4, "127.0.0.1:7304", "127.0.0.1:7404", 0, Duration.ofMillis(700), null));
      assertEquals(4, e.learnerId());
      assertEquals(0, e.ackedOp());
      assertEquals(100, e.targetOp());
      assertTrue(e.getMessage().contains("was added") && e.getMessage().contains("not promoted"), e.getMessage());
      assertEquals(1, primary.order.stream().filter(Request::hasMemberChange).count(), "no promotion was sent");
      assertTrue(primary.order.stream().filter(Request::hasListMembers).count() >= 3, "it polled meanwhile");
    }
  }

  @Test
  void shouldSayTheLearnerWasAddedWhenItsPromotionIsRefused() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, r) -> FakeServer.reply(ch, r.hasListMembers()
            ? ok(r, threeVoters(2).addMembers(learner(4, 100)), 100)
            : r.getMemberChange().getKind() == MemberChange.Kind.ADD_LEARNER ? ok(r, threeVoters(2), 60)
            : refused(r, "would leave no majority: replica 3 has op 10 of 100")));
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      MemberChangeRefusedException e = assertThrows(MemberChangeRefusedException.class, () -> client.membership()
          .addMember(4, "127.0.0.1:7304", "127.0.0.1:7404", 0, Duration.ofSeconds(5), null));
      assertTrue(e.getMessage().startsWith("learner 4 was added, but the primary refused promoting"), e.getMessage());
      assertEquals("would leave no majority: replica 3 has op 10 of 100", e.reason());
    }
  }

  @Test
  void shouldReadTheEpochMembersAndOwnRoleFromStatus() throws Exception {
    try (FakeServer server = FakeServer.start((s, ch, r) -> FakeServer.reply(ch, Response.newBuilder()
            .setRequestId(r.getRequestId()).setStatus(Status.OK).setReplicaStatus(ReplicaStatus.newBuilder().setId(4)
                .setRole("backup").setEpoch(5).addMembers(voter(1, 0))
                .addMembers(learner(4, 0))
                .setMemberRole(LEARNER)).build()));
        ChoirClient client = clientFor(server, Duration.ofSeconds(3))) {
      ReplicaInfo info = client.status(server.address()).info();
      assertEquals(5, info.epoch());
      assertEquals(MemberRole.LEARNER, info.memberRole());
      assertEquals(List.of(1, 4), info.members().stream().map(Member::id).toList());
      assertEquals(MemberRole.VOTER, info.members().get(0).role());
    }
  }
}
