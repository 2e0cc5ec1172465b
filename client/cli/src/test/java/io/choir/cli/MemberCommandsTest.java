package io.choir.cli;

import static io.choir.proto.MemberRole.LEARNER;
import static io.choir.proto.MemberRole.RETIRED;
import static io.choir.proto.MemberRole.VOTER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.choir.proto.MemberChange;
import io.choir.proto.MemberRole;
import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/**
 * `choir member ...` and the membership part of `choir status` against a scripted fake replica: the
 * output (a table, or JSON parsed back with Jackson), the requests sent, and the exit codes: 2 with the
 * reason for a refused change, 3 "outcome unknown" for a change without an answer, 3 for a learner that
 * did not catch up.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MemberCommandsTest {
  /** One run of the command line: exit code, stdout, stderr. */
  record Run(int code, String out, String err) {
    JsonNode json() throws Exception {
      return ClientOptions.json().readTree(out);
    }
  }

  private static Run run(ScriptedReplica replica, String... args) {
    CommandLine cl = Choir.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    List<String> all = new ArrayList<>(List.of(args));
    all.add("--endpoints=" + replica.address());
    if (all.stream().noneMatch(a -> a.startsWith("--timeout-ms"))) {
      all.add("--timeout-ms=3000");
    }
    int code = cl.execute(all.toArray(String[]::new));
    return new Run(code, out.toString(), err.toString());
  }

  private static MemberStatus member(int id, MemberRole role, long acked) {
    return MemberStatus.newBuilder().setId(id).setClientAddress("127.0.0.1:" + (7300 + id))
        .setPeerAddress("127.0.0.1:" + (7400 + id)).setRole(role).setAckedOp(acked).build();
  }

  private static MembershipInfo.Builder voters(long epoch, int... ids) {
    MembershipInfo.Builder m = MembershipInfo.newBuilder().setEpoch(epoch).setStartView(epoch * 16);
    for (int id : ids) {
      m.addMembers(member(id, VOTER, 100));
    }
    return m;
  }

  private static Response ok(Request r, MembershipInfo.Builder m, long op) {
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setMembership(m).setOp(op).build();
  }

  private static Response refused(Request r, String why) {
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.INVALID).setError(why).build();
  }

  private static List<String> kinds(ScriptedReplica replica) {
    return replica.received().stream()
        .map(r -> r.hasListMembers() ? "list" : r.hasMemberChange() ? r.getMemberChange().getKind().name()
            : r.getOpCase().name())
        .toList();
  }

  /** A primary with voters 1 2 3 whose learner 4 acks `step` more ops per list, up to op 100. */
  private static Function<Request, Response> catchingUp(long step) {
    AtomicLong acked = new AtomicLong();
    return r -> {
      if (r.hasListMembers()) {
        acked.set(Math.min(100, acked.get() + step));
        return ok(r, voters(2, 1, 2, 3).addMembers(member(4, LEARNER, acked.get())).setChangeInProgress(true)
            .setChange("learner 4 not yet promoted"), 100);
      }
      return switch (r.getMemberChange().getKind()) {
        case ADD_LEARNER -> ok(r, voters(2, 1, 2, 3).addMembers(member(4, LEARNER, 0)).setChangeInProgress(true), 60);
        case PROMOTE -> ok(r, voters(3, 1, 2, 3, 4), 101);
        case REPLACE -> ok(r, voters(3, 4, 2, 3).addMembers(member(1, RETIRED, 0)), 101);
        default -> refused(r, "unexpected");
      };
    };
  }

  @Test
  void shouldListTheMembersAsATable() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(r -> ok(r, voters(2, 1, 2, 3)
        .addMembers(member(4, LEARNER, 40)).setChangeInProgress(true).setChange("learner 4 not yet promoted"), 100))) {
      Run run = run(replica, "member", "list");
      assertEquals(Choir.EXIT_OK, run.code(), run.err());
      List<String> lines = run.out().lines().toList();
      assertEquals("epoch 2 (from view 32): voters 1 2 3; learners 4", lines.get(0));
      assertTrue(lines.get(1).matches("\\s+ID ROLE\\s+CLIENT\\s+PEER\\s+ACKED_OP"), lines.get(1));
      assertTrue(lines.get(5).matches("\\s+4 learner\\s+127.0.0.1:7304\\s+127.0.0.1:7404\\s+40"), lines.get(5));
      assertEquals("change in progress: learner 4 not yet promoted", lines.get(6));
      assertEquals(List.of("list"), kinds(replica));
    }
  }

  @Test
  void shouldListTheMembersAsJson() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(r -> ok(r, voters(2, 1, 2, 3), 100))) {
      Run run = run(replica, "member", "list", "--json");
      assertEquals(Choir.EXIT_OK, run.code(), run.err());
      JsonNode json = run.json();
      assertTrue(json.get("ok").asBoolean());
      assertEquals(2, json.get("epoch").asLong());
      assertEquals(32, json.get("start_view").asLong());
      assertEquals(false, json.get("change_in_progress").asBoolean());
      assertEquals(3, json.get("members").size());
      JsonNode first = json.get("members").get(0);
      assertEquals(1, first.get("id").asInt());
      assertEquals("voter", first.get("role").asText());
      assertEquals("127.0.0.1:7301", first.get("client_address").asText());
      assertEquals("127.0.0.1:7401", first.get("peer_address").asText());
      assertEquals(100, first.get("acked_op").asLong());
    }
  }

  @Test
  void shouldAddAMemberShowingItsProgressUntilItIsPromoted() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(catchingUp(25))) {
      Run run = run(replica, "member", "add", "4", "--client", "127.0.0.1:7304", "--peer", "127.0.0.1:7404",
          "--expect-epoch", "2", "--json");
      assertEquals(Choir.EXIT_OK, run.code(), run.err());
      assertEquals(List.of("ADD_LEARNER", "list", "list", "list", "list", "PROMOTE"), kinds(replica));
      MemberChange add = replica.received().get(0).getMemberChange();
      assertEquals(MemberChange.newBuilder().setKind(MemberChange.Kind.ADD_LEARNER).setId(4)
          .setClientAddress("127.0.0.1:7304").setPeerAddress("127.0.0.1:7404").setExpectedEpoch(2).build(), add);
      assertEquals(ScriptedReplica.SESSION_ID, replica.received().get(0).getClientId());
      assertTrue(run.err().contains("learner 4 catching up: acked op 25 of 100"), run.err());
      assertTrue(run.err().contains("learner 4 caught up: acked op 100 of 100"), run.err());
      JsonNode json = run.json();
      assertEquals(3, json.get("epoch").asLong());
      assertEquals("voter", json.get("members").get(3).get("role").asText());
    }
  }

  @Test
  void shouldOnlyAddALearnerWithLearnerOnly() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(catchingUp(0))) {
      Run run = run(replica, "member", "add", "4", "--client", "127.0.0.1:7304", "--peer", "127.0.0.1:7404",
          "--learner-only");
      assertEquals(Choir.EXIT_OK, run.code(), run.err());
      assertEquals(List.of("ADD_LEARNER"), kinds(replica));
      assertTrue(run.out().contains("learners 4"), run.out());
    }
  }

  @Test
  void shouldExitTwoWithTheReasonWhenTheChangeIsRefused() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(r -> refused(r, "change in progress: learner 4 not yet promoted"))) {
      Run run = run(replica, "member", "remove", "3");
      assertEquals(Choir.EXIT_USAGE, run.code());
      assertEquals(1, run.err().lines().count(), run.err());
      assertTrue(run.err().startsWith("choir: refused: the primary refused removing member 3; it was not executed:"
          + " change in progress: learner 4 not yet promoted"), run.err());
      Run json = run(replica, "member", "remove", "3", "--json");
      assertEquals(Choir.EXIT_USAGE, json.code());
      assertEquals("refused", json.json().get("error").asText());
      assertEquals("change in progress: learner 4 not yet promoted", json.json().get("reason").asText());
    }
  }

  @Test
  void shouldExitThreeWithOutcomeUnknownWhenAChangeGetsNoAnswer() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(r -> null)) {
      Run run = run(replica, "member", "promote", "4", "--timeout-ms=1000");
      assertEquals(Choir.EXIT_UNAVAILABLE, run.code());
      assertEquals(1, run.err().lines().count(), run.err());
      assertTrue(run.err().startsWith("choir: outcome unknown: check `choir member list`"), run.err());
      Run json = run(replica, "member", "promote", "4", "--timeout-ms=1000", "--json");
      assertEquals(Choir.EXIT_UNAVAILABLE, json.code());
      assertEquals("outcome_unknown", json.json().get("error").asText());
      Run list = run(replica, "member", "list", "--timeout-ms=1000");
      assertEquals(Choir.EXIT_UNAVAILABLE, list.code());
      assertTrue(list.err().startsWith("choir: timeout: "), "a read is a plain timeout: " + list.err());
    }
  }

  @Test
  void shouldExitThreeWhenTheLearnerDoesNotCatchUpInTime() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(catchingUp(0))) {
      Run run = run(replica, "member", "add", "4", "--client", "127.0.0.1:7304", "--peer", "127.0.0.1:7404",
          "--timeout", "1", "--json");
      assertEquals(Choir.EXIT_UNAVAILABLE, run.code(), run.err());
      JsonNode json = run.json();
      assertEquals("not_caught_up", json.get("error").asText());
      assertEquals(4, json.get("learner").asInt());
      assertEquals(100, json.get("target_op").asLong());
      assertTrue(json.get("message").asText().contains("was added"), json.toString());
      assertTrue(kinds(replica).stream().noneMatch("PROMOTE"::equals), kinds(replica).toString());
    }
  }

  @Test
  void shouldReplaceByAddingTheNewMemberFirstOrDirectlyWithoutAddresses() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(catchingUp(100))) {
      Run run = run(replica, "member", "replace", "1", "4", "--client", "127.0.0.1:7304", "--peer", "127.0.0.1:7404");
      assertEquals(Choir.EXIT_OK, run.code(), run.err());
      assertTrue(run.out().startsWith("epoch 3 (from view 48): voters 4 2 3; retired 1"), run.out());
      Run direct = run(replica, "member", "replace", "1", "4", "--expect-epoch", "2");
      assertEquals(Choir.EXIT_OK, direct.code(), direct.err());
      assertEquals(List.of("ADD_LEARNER", "list", "REPLACE", "REPLACE"), kinds(replica));
      assertEquals(MemberChange.newBuilder().setKind(MemberChange.Kind.REPLACE).setId(4).setReplacedId(1)
          .setExpectedEpoch(2).build(), replica.received().get(3).getMemberChange());
    }
  }

  @Test
  void shouldRefuseAnAddWithoutAddressesAsAUsageError() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(catchingUp(0))) {
      assertEquals(Choir.EXIT_USAGE, run(replica, "member", "add", "4", "--client", "127.0.0.1:7304").code());
      assertEquals(Choir.EXIT_USAGE, run(replica, "member", "add", "4", "--client", "nohost", "--peer", "h:1").code());
      assertEquals(Choir.EXIT_USAGE, run(replica, "member").code());
      assertEquals(List.of(), replica.received());
    }
  }

  @Test
  void shouldShowTheEpochTheMembersTheWatchersAndTheLeasesInStatus() throws Exception {
    try (ScriptedReplica replica = new ScriptedReplica(r -> Response.newBuilder().setRequestId(r.getRequestId())
        .setStatus(Status.OK).setReplicaStatus(ReplicaStatus.newBuilder().setId(1).setRole("primary")
            .setView((1L << 48) + 3).setEpoch(2).addMembers(member(1, VOTER, 9)).addMembers(member(2, VOTER, 9))
            .addMembers(member(4, LEARNER, 7))
            .setMemberRole(VOTER).setWatchers(3).setLeases(2).setLeaseKeys(5)).build())) {
      Run text = run(replica, "status");
      assertEquals(Choir.EXIT_OK, text.code(), text.err());
      List<String> lines = text.out().lines().toList();
      assertTrue(lines.get(0).contains(" MEMBER  EPOCH  VIEW"), lines.get(0));
      assertTrue(lines.get(1).matches(".*primary\\s+voter\\s+2\\s+3 .*"), "the view within its epoch: " + lines.get(1));
      assertTrue(lines.get(0).contains(" WATCH LEASES/KEYS "), lines.get(0));
      assertTrue(lines.get(1).matches(".* 3 +2/5 +\\d+ -$"), "watchers, leases/keys: " + lines.get(1));
      assertEquals("members (epoch 2, as replica 1 knows them): voters 1 2; learners 4", lines.get(2));
      JsonNode json = run(replica, "status", "--json").json().get(0);
      assertEquals(2, json.get("epoch").asLong());
      assertEquals((1L << 48) + 3, json.get("view").asLong(), "the whole number");
      assertEquals(3, json.get("view_in_epoch").asLong());
      assertEquals("voter", json.get("member_role").asText());
      assertEquals(3, json.get("members").size());
      assertEquals("learner", json.get("members").get(2).get("role").asText());
      assertEquals(7, json.get("members").get(2).get("acked_op").asLong());
      assertEquals(3, json.get("watchers").asLong());
      assertEquals(2, json.get("leases").asLong());
      assertEquals(5, json.get("lease_keys").asLong());
    }
  }
}
