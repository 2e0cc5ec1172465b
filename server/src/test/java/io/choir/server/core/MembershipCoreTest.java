package io.choir.server.core;

import static io.choir.server.core.CoreKit.HB;
import static io.choir.server.core.CoreKit.MS;
import static io.choir.server.core.CoreKit.T;
import static io.choir.server.core.CoreKit.add;
import static io.choir.server.core.CoreKit.kind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.ListMembers;
import io.choir.proto.MemberChange;
import io.choir.proto.MemberRole;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipCoreTest: membership changes while serving (DESIGN.md "Membership"; VR Revisited section
 * 7), one rule per test, on a CoreCluster whose replicas 1..3 are the bootstrap voters and 4 (and 5) are
 * joiners with empty state.
 */
class MembershipCoreTest {
  private static final long BASE2 = Membership.epochBase(2);
  private long requestIds = 1000;

  private static CoreCluster cluster(int n) {
    CoreCluster c = new CoreCluster(n, id -> CoreKit.config(id, 3));
    c.tickAll(1);
    return c;
  }

  private Response change(CoreCluster c, int at, MemberChange.Builder change) {
    long id = ++requestIds;
    int before = c.replies.size();
    c.step(at, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id).setMemberChange(change).build()));
    c.step(at, new Event.Tick());
    c.run(20 * MS, MS);
    return c.replies.subList(before, c.replies.size()).stream().filter(r -> r.getRequestId() == id)
        .findFirst().orElse(null);
  }

  private void writes(CoreCluster c, int at, int count) {
    for (int i = 0; i < count; i++) {
      c.write(at, 0, ++requestIds, "k" + requestIds);
    }
    c.run(20 * MS, MS);
  }

  @Test
  void shouldSendTheLogToAnAddedLearnerButNeverCountIt() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    Response r = change(c, 1, add(4));
    assertEquals(Status.OK, r.getStatus(), r.toString());
    writes(c, 1, 2);
    assertEquals(c.cores[1].commitOp(), c.cores[4].appliedOp(), "the learner has the log");
    assertEquals(MemberRole.LEARNER, c.cores[4].memberRole());
    assertEquals(List.of(1, 2, 3, 4), c.cores[1].membership().memberIds());

    // The learner's acknowledgements never commit anything: with both backups silent, nothing does.
    long commit = c.cores[1].commitOp();
    c.dropSent = (from, s) -> (from == 2 || from == 3)
        && (s.type() == MessageType.PREPARE_OK || s.type() == MessageType.HEARTBEAT_OK);
    c.write(1, 0, ++requestIds, "lonely");
    c.run(20 * MS, MS);
    assertEquals(commit, c.cores[1].commitOp(), "only voters count toward the quorum");
  }

  @Test
  void shouldPromoteACaughtUpLearnerByOneEpochChangeWithoutAViewChange() {
    CoreCluster c = cluster(4);
    writes(c, 1, 3);
    change(c, 1, add(4));
    long changesBefore = c.cores[2].counters().viewChangesStarted;

    Response r = change(c, 1, kind(MemberChange.Kind.PROMOTE, 4));

    assertEquals(Status.OK, r.getStatus(), r.toString());
    for (int id = 1; id <= 4; id++) {
      assertEquals(2, c.cores[id].membership().epoch(), "replica " + id);
      assertEquals(BASE2, c.cores[id].view(), "the new epoch's first view, the old primary's: replica " + id);
      assertEquals(ReplicaCore.Mode.NORMAL, c.cores[id].mode());
      assertEquals(MemberRole.VOTER, c.cores[id].memberRole());
    }
    assertTrue(c.cores[1].isPrimary());
    assertEquals(changesBefore, c.cores[2].counters().viewChangesStarted, "no view change");
    long commit = c.cores[1].commitOp();
    writes(c, 1, 2);
    assertEquals(commit + 2, c.cores[1].commitOp(), "writes commit in the new epoch");
    assertEquals(c.cores[1].checksum(), c.cores[4].checksum());
  }

  @Test
  void shouldAssignNoOpAfterAnEpochChangeUntilTheSwitch() {
    CoreCluster c = cluster(3);
    writes(c, 1, 2);
    // Backups acknowledge nothing for now: the EpochChange stays uncommitted.
    c.drop = s -> s.type() == MessageType.PREPARE_OK || s.type() == MessageType.HEARTBEAT_OK;
    long id = ++requestIds;
    c.step(1, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id)
        .setMemberChange(kind(MemberChange.Kind.REMOVE, 3)).build()));
    c.step(1, new Event.Tick());
    long n = c.cores[1].lastOp();
    c.write(1, 0, ++requestIds, "waits");
    c.write(1, 0, ++requestIds, "waits too");
    assertEquals(n, c.cores[1].lastOp(), "no op follows the EpochChange in its epoch");
    assertEquals(2, c.cores[1].queuedWrites());

    c.drop = s -> false;
    c.run(3 * HB, MS);

    assertEquals(2, c.cores[1].membership().epoch());
    assertEquals(n + 2, c.cores[1].commitOp(), "the waiting writes are served in the new epoch");
    long okAfter = c.replies.stream().filter(r -> r.getStatus() == Status.OK && r.getVersion() > n).count();
    assertEquals(2, okAfter);
  }

  @Test
  void shouldRefuseChangesThatCannotBeMadeAndExecuteNothing() {
    CoreCluster c = cluster(5);
    writes(c, 1, 2);
    long last = c.cores[1].lastOp();
    assertEquals(Status.INVALID, change(c, 1, kind(MemberChange.Kind.PROMOTE, 4)).getStatus(), "unknown id");
    assertEquals(Status.INVALID, change(c, 1, add(2)).getStatus(), "already a member");
    assertEquals(Status.INVALID, change(c, 1, add(4).setClientAddress("r2:7000")).getStatus(), "address clash");
    assertEquals(Status.CAS_FAILED, change(c, 1, add(4).setExpectedEpoch(7)).getStatus(), "expected epoch");
    assertEquals(last, c.cores[1].lastOp(), "nothing was logged");

    assertEquals(Status.OK, change(c, 1, add(4)).getStatus());
    Response second = change(c, 1, add(5));
    assertEquals(Status.INVALID, second.getStatus());
    assertTrue(second.getError().startsWith("change in progress"), second.getError());
  }

  @Test
  void shouldRefuseAChangeThatLeavesNoMajorityOfTheNewVotersCaughtUpAndAlive() {
    CoreCluster c = cluster(3);
    writes(c, 1, 2);
    c.dropFrom = 3;
    c.run(2 * T, 10 * MS);
    writes(c, 1, 5);

    Response r = change(c, 1, kind(MemberChange.Kind.REMOVE, 2));

    assertEquals(Status.INVALID, r.getStatus());
    assertTrue(r.getError().startsWith("would leave no majority: replica 3"), r.getError());
    assertEquals(1, c.cores[1].membership().epoch());
  }

  @Test
  void shouldRefuseToPromoteALearnerThatHasNotCaughtUp() {
    CoreCluster c = cluster(4);
    change(c, 1, add(4));
    c.dropFrom = 4;
    c.run(2 * T, 10 * MS);
    writes(c, 1, 50);

    Response r = change(c, 1, kind(MemberChange.Kind.PROMOTE, 4));

    assertEquals(Status.INVALID, r.getStatus());
    assertTrue(r.getError().startsWith("learner 4 has not caught up"), r.getError());
  }

  @Test
  void shouldRetireARemovedVoterThatThenNeitherServesNorVotes() {
    CoreCluster c = cluster(3);
    writes(c, 1, 2);
    assertEquals(Status.OK, change(c, 1, kind(MemberChange.Kind.REMOVE, 3)).getStatus());
    assertEquals(MemberRole.RETIRED, c.cores[3].memberRole());
    assertEquals(List.of(1, 2), c.cores[1].membership().voterIds());

    long view = c.cores[3].view();
    c.dropSent = (from, s) -> from != 3; // it hears nothing: a voter would have asked for a view change
    c.run(6 * T, 20 * MS);
    assertEquals(view, c.cores[3].view(), "a retired replica asks for no view change");
    assertEquals(0, c.cores[3].counters().preVotesStarted);
    c.write(3, 0, ++requestIds, "at the retired one");
    Status answer = c.replies.get(c.replies.size() - 1).getStatus();
    assertTrue(answer == Status.NOT_PRIMARY || answer == Status.UNAVAILABLE, "no client service: " + answer);
  }

  @Test
  void shouldDropMessagesOfAnOlderEpochAndCountThem() {
    CoreCluster c = cluster(4);
    change(c, 1, add(4));
    change(c, 1, kind(MemberChange.Kind.PROMOTE, 4));
    long last = c.cores[2].lastOp();
    long dropped = c.cores[2].counters().droppedOldEpoch;

    c.inject(2, new Event.Peer(1, 0, MessageType.PREPARE, Prepare.newBuilder().setFirstOp(last + 1)
        .addEntries(CoreKit.entry(last + 1, 0, "old", "x")).setCommit(last + 1).build()));

    assertEquals(dropped + 1, c.cores[2].counters().droppedOldEpoch);
    assertEquals(last, c.cores[2].lastOp());
  }

  @Test
  void shouldBringALaggardThatHasTheEpochChangeOverByTheOldPrimarysCommit() {
    CoreCluster c = cluster(3);
    writes(c, 1, 2);
    // Replica 3 gets every entry, but hears of no commit in epoch 1 past op 2.
    long n = c.cores[1].lastOp() + 1;
    boolean[] cut = {true};
    c.drop = s -> cut[0] && s.to() != 1 && Membership.epochOfView(s.view()) == 1 && commitOf(s) >= n;
    assertEquals(Status.OK, change(c, 1, kind(MemberChange.Kind.REMOVE, 2)).getStatus());
    assertEquals(1, c.cores[3].membership().epoch(), "3 has the entry but not its commit");
    assertEquals(n, c.cores[3].lastOp());

    cut[0] = false;
    c.run(4 * HB, MS);

    assertEquals(2, c.cores[3].membership().epoch());
    assertEquals(c.cores[1].view(), c.cores[3].view());
    assertEquals(0, c.cores[3].counters().stateTransfers, "no state transfer needed");
  }

  private static long commitOf(Effects.Send s) {
    if (s.body() instanceof Heartbeat h) {
      return h.getCommit();
    }
    return s.body() instanceof Prepare p ? p.getCommit() : -1;
  }

  @Test
  void shouldHaveANewPrimaryWhoseLogHoldsAnUncommittedEpochChangeCommitItAndSwitch() {
    CoreCluster c = cluster(3);
    c.serveStateTransfers = true;
    writes(c, 1, 2);
    // The backups persist the EpochChange, but their acknowledgements never reach the primary.
    c.dropSent = (from, s) -> from != 1 && (s.type() == MessageType.PREPARE_OK || s.type() == MessageType.HEARTBEAT_OK);
    long id = ++requestIds;
    c.step(1, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id)
        .setMemberChange(kind(MemberChange.Kind.REMOVE, 3)).build()));
    c.step(1, new Event.Tick());
    long n = c.cores[1].lastOp();
    assertEquals(n, c.cores[2].lastOp());
    assertEquals(1, c.cores[1].membership().epoch(), "not committed");

    c.dropSent = (from, s) -> false;
    c.dropFrom = 1;
    c.run(6 * T, 10 * MS);

    for (int r = 2; r <= 3; r++) {
      assertEquals(2, c.cores[r].membership().epoch(), "replica " + r + " committed the EpochChange and switched");
      Entry e = c.logged(r, n);
      assertTrue(e.hasEpochChange());
      assertEquals(null, c.logged(r, n + 1), "nothing after it in the old epoch");
    }
    c.dropFrom = 0;
    c.run(6 * T, 10 * MS);
    assertEquals(2, c.cores[1].membership().epoch(), "the deposed primary catches up into the new epoch");
    int primary = c.primary();
    assertTrue(primary == 1 || primary == 2, "a voter of epoch 2 leads: " + primary);
    long commit = c.cores[primary].commitOp();
    writes(c, primary, 1);
    assertEquals(commit + 1, c.cores[primary].commitOp());
    assertEquals(MemberRole.RETIRED, c.cores[3].memberRole());
  }

  @Test
  void shouldListTheMembersAtAnyReplica() {
    CoreCluster c = cluster(4);
    change(c, 1, add(4));
    long id = ++requestIds;
    c.step(3, new Event.ClientRequest(id, Request.newBuilder().setRequestId(id)
        .setListMembers(ListMembers.getDefaultInstance()).build()));
    Response r = c.replies.get(c.replies.size() - 1);
    assertEquals(Status.OK, r.getStatus());
    assertEquals(1, r.getMembership().getEpoch());
    assertEquals(List.of(MemberRole.VOTER, MemberRole.VOTER, MemberRole.VOTER, MemberRole.LEARNER),
        r.getMembership().getMembersList().stream().map(m -> m.getRole()).toList());
    assertTrue(r.getMembership().getChangeInProgress(), "a learner not yet promoted");
  }

  @Test
  void shouldResumeARestartInTheEpochItsStateHolds() {
    CoreConfig config = CoreKit.config(2, 3);
    Membership m = new Membership(2, config.bootstrapMembership().voters(), List.of(), BASE2 + 1);
    Entry e = CoreKit.entry(1, 0, "a", "b");
    ReplicaCore core = new ReplicaCore(config, new RecoveredState(0, 0, true, false, false, 1, 0, 2, List.of()), m);
    assertEquals(BASE2 + 1, core.view(), "the switch's view, though the view record was older");
    assertEquals(2, core.membership().epoch());
    assertFalse(e.hasEpochChange());
  }
}
