package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.choir.client.ChoirClient;
import io.choir.client.Member;
import io.choir.client.MemberRole;
import io.choir.client.MemberChangeRefusedException;
import io.choir.client.Membership;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * MembershipProcessTest (issue 12 item 3) changes the membership of real replica processes on loopback
 * while a closed-loop writer writes: replicas 4 and 5 start as joiners (join: true, see docs/design.md
 * "Membership", "Starting a new replica") and are added one at a time (client addMember: a learner,
 * then promoted) to 5 voters, then replicas 1 and 2 are removed one at a time, leaving 3, 4 and 5.
 * Every acknowledged write is read back at the end through the new members; the membership and each
 * member's status (epoch, members) are printed, and so is the longest gap between two acknowledged
 * writes during the changes.
 */
class MembershipProcessTest {
  /** The block of 16 ports ProcessCluster reserves: 3 clients, 3 peers, multicast, then the joiners'. */
  private static final int JOINER_CLIENT_OFFSET = 8;
  private static final int JOINER_PEER_OFFSET = 10;
  private static final Duration CATCH_UP = Duration.ofSeconds(60);

  @TempDir Path dir;
  private ProcessCluster cluster;
  private final List<ReplicaProcess> joiners = new ArrayList<>();

  @AfterEach
  void stop() {
    joiners.forEach(ReplicaProcess::close);
    if (cluster != null) {
      cluster.close();
    }
  }

  @Test
  void shouldGoFromThreeToFiveToThreeVotersUnderWrites() throws Exception {
    cluster = new ProcessCluster(dir, "membership", ClusterKeyFile.yaml(dir));
    cluster.startAll();
    List<String> all = new ArrayList<>(cluster.endpoints());
    all.add(clientAddress(4));
    all.add(clientAddress(5));
    try (ChoirClient admin = cluster.client(Duration.ofSeconds(5))) {
      cluster.awaitConverged(admin, Duration.ofSeconds(30));
    }
    startJoiner(4, List.of(1, 2, 3));
    try (ChoirClient admin = client(all, Duration.ofSeconds(10));
        ChoirClient writes = client(all, Duration.ofSeconds(15))) {
      ClosedLoopWriter writer = new ClosedLoopWriter(writes, "m/", 1_000_000);
      writer.start();
      awaitAcks(writer, 50, Duration.ofSeconds(30));
      long changesFrom = System.nanoTime();
      Membership m = admin.membership().addMember(4, clientAddress(4), peerAddress(4), 0, CATCH_UP, null);
      print("added 4", m);
      startJoiner(5, List.of(1, 2, 3, 4));
      m = admin.membership().addMember(5, clientAddress(5), peerAddress(5), 0, CATCH_UP, null);
      print("added 5", m);
      assertEquals(List.of(1, 2, 3, 4, 5), voterIds(m));
      m = removeOnceCaughtUp(admin, 1);
      print("removed 1", m);
      m = removeOnceCaughtUp(admin, 2);
      print("removed 2", m);
      long changesTo = System.nanoTime();
      awaitAcks(writer, writer.acks() + 50, Duration.ofSeconds(30));
      writer.finish();
      assertEquals(List.of(3, 4, 5), voterIds(m));
      System.out.printf("membership changes 3 -> 5 -> 3 voters took %d ms; longest gap between two"
          + " acknowledged writes during them: %d ms; %d writes acknowledged, %d failed %s; %s%n",
          TimeUnit.NANOSECONDS.toMillis(changesTo - changesFrom),
          TimeUnit.NANOSECONDS.toMillis(writer.longestGapNs(changesFrom, changesTo)), writer.acks(),
          writer.errors.get(), writer.errorKinds(), Load.now());
      try (ChoirClient newMembers = client(List.of(clientAddress(4), clientAddress(5)), Duration.ofSeconds(10))) {
        int checked = ClosedLoopWriter.assertAllPresent(newMembers, "m/", writer.acked);
        System.out.println(checked + " acknowledged writes read back through replicas 4 and 5");
        Membership last = newMembers.membership().members();
        print("final, as replica 4 or 5 lists it", last);
        assertEquals(List.of(3, 4, 5), voterIds(last));
      }
      for (String ep : List.of(cluster.endpoint(3), clientAddress(4), clientAddress(5))) {
        ReplicaStatusResult s = admin.status(ep);
        assertTrue(s.isOk(), "status of " + ep);
        System.out.println("status " + ep + ": role " + s.info().role() + ", epoch " + s.info().epoch()
            + ", members " + s.info().members().stream().map(Member::id).toList() + ", view " + s.info().view()
            + ", applied " + s.info().applied());
      }
    }
  }

  @Test
  void shouldRetireAVoterReplacedWhileItWasCutOffWithMulticast() throws Exception {
    retireAVoterReplacedWhileCutOff("");
  }

  @Test
  void shouldRetireAVoterReplacedWhileItWasCutOffWithUnicast() throws Exception {
    retireAVoterReplacedWhileCutOff("peer_transport: unicast\n");
  }

  /**
   * Replica 3 is cut off from every other replica while a majority replaces it by joiner 4; once the
   * cut heals, 3 must learn that it was removed and retire (it hears the new epoch by multicast, or is
   * told by its old members; either way it fetches a state transfer, which an old member must serve it),
   * rather than stay a voter of the old epoch.
   */
  private void retireAVoterReplacedWhileCutOff(String transportYaml) throws Exception {
    cluster = new ProcessCluster(dir, "retire", transportYaml + ClusterKeyFile.yaml(dir));
    cluster.startAll();
    List<String> all = new ArrayList<>(cluster.endpoints());
    all.add(clientAddress(4));
    try (ChoirClient admin = client(all, Duration.ofSeconds(10))) {
      cluster.awaitConverged(admin, Duration.ofSeconds(30));
      startJoiner(4, List.of(1, 2, 3));
      for (int i = 0; i < 20; i++) {
        admin.put("r/" + i, "v" + i);
      }
      cluster.cut(3, List.of(1, 2, 4));
      for (int id : List.of(1, 2, 4)) {
        cluster.cut(id, List.of(3));
      }
      Membership m = admin.membership().replaceMember(3, 4, clientAddress(4), peerAddress(4), 0, CATCH_UP, null);
      print("replaced 3 by 4 while 3 was cut off", m);
      assertEquals(List.of(1, 2, 4), voterIds(m));
      admin.put("r/after", "x");
      ReplicaStatusResult cutOff = admin.status(cluster.endpoint(3));
      assertTrue(cutOff.isOk() && cutOff.info().memberRole() == MemberRole.VOTER && cutOff.info().epoch() < m.epoch(),
          "cut off, replica 3 does not know yet: " + cutOff);

      long healed = System.nanoTime();
      for (int id : List.of(1, 2, 3, 4)) {
        cluster.cut(id, List.of());
      }
      ReplicaInfo retired = awaitRetired(admin, cluster.endpoint(3), m.epoch(), Duration.ofSeconds(30));
      System.out.printf("replica 3 retired %d ms after the heal (epoch %d, role %s, told_former_members at 1: %d)%n",
          TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - healed), retired.epoch(), retired.role(),
          ProcessCluster.counter(cluster.status(admin, 1), "told_former_members"));
      assertEquals("x", admin.get("r/after").orElseThrow().valueAsString());
    }
  }

  /** Polls endpoint's status until it says RETIRED in epoch (or later), or fails after timeout. */
  private static ReplicaInfo awaitRetired(ChoirClient c, String endpoint, long epoch, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    ReplicaStatusResult last = null;
    while (System.nanoTime() < deadline) {
      last = c.status(endpoint);
      if (last.isOk() && last.info().memberRole() == MemberRole.RETIRED && last.info().epoch() >= epoch) {
        return last.info();
      }
      TimeUnit.MILLISECONDS.sleep(100); // polling status: no event to wait on from outside
    }
    fail("replica at " + endpoint + " did not retire within " + timeout + ": " + last);
    return null;
  }

  /**
   * Removes id, as an operator would: right after a switch the new epoch's primary has heard no
   * acknowledgement yet, so it refuses a removal that would leave no majority caught up (not executed);
   * ask again until it accepts (printing how many refusals that took) or the deadline passes.
   */
  private static Membership removeOnceCaughtUp(ChoirClient admin, int id) throws Exception {
    long deadline = System.nanoTime() + CATCH_UP.toNanos();
    int refused = 0;
    while (true) {
      try {
        Membership m = admin.membership().removeMember(id, 0);
        System.out.println("removing " + id + " was refused " + refused + " time(s) before it was accepted");
        return m;
      } catch (MemberChangeRefusedException e) {
        refused++;
        assertTrue(System.nanoTime() < deadline && e.reason().contains("would leave no majority"),
            "removing " + id + ": " + e.reason());
        TimeUnit.MILLISECONDS.sleep(100); // the refusal is an answer: nothing to wait on but time
      }
    }
  }

  private static ChoirClient client(List<String> endpoints, Duration timeout) {
    return ChoirClient.builder().endpoints(endpoints).requestTimeout(timeout).build();
  }

  private static List<Integer> voterIds(Membership m) {
    return m.voters().stream().map(Member::id).sorted().toList();
  }

  private static void print(String what, Membership m) {
    System.out.println(what + ": epoch " + m.epoch() + ", voters " + voterIds(m) + ", members "
        + m.members().stream().map(x -> x.id() + "=" + x.role()).toList());
  }

  private int base() {
    return cluster.peerPort(1) - cluster.size();
  }

  private String clientAddress(int id) {
    return "127.0.0.1:" + (base() + JOINER_CLIENT_OFFSET + id - 4);
  }

  private String peerAddress(int id) {
    return "127.0.0.1:" + (base() + JOINER_PEER_OFFSET + id - 4);
  }

  /**
   * Starts replica id as a joiner: replica 3's configuration with its own id, data folder and fault
   * file, replicas the current voters plus itself, and join: true.
   */
  private void startJoiner(int id, List<Integer> voters) throws Exception {
    String yaml = Files.readString(dir.resolve("node3.yaml"));
    StringBuilder members = new StringBuilder("replicas:\n");
    for (int v : voters) {
      String client = v <= 3 ? cluster.endpoint(v) : clientAddress(v);
      String peer = v <= 3 ? "127.0.0.1:" + cluster.peerPort(v) : peerAddress(v);
      members.append("  - id: ").append(v).append("\n    client: ").append(client).append("\n    peer: ")
          .append(peer).append('\n');
    }
    members.append("  - id: ").append(id).append("\n    client: ").append(clientAddress(id))
        .append("\n    peer: ").append(peerAddress(id)).append('\n');
    String text = yaml.replaceFirst("(?s)replicas:\n.*?(?=data_dir:)", members.toString())
        .replace("replica_id: 3", "replica_id: " + id)
        .replace("node3", "node" + id)
        .replace("faults3", "faults" + id)
        + "join: true\n";
    Path file = dir.resolve("node" + id + ".yaml");
    Files.writeString(file, text);
    Files.writeString(dir.resolve("faults" + id), "");
    int port = Integer.parseInt(clientAddress(id).substring(clientAddress(id).lastIndexOf(':') + 1));
    ReplicaProcess r = new ReplicaProcess(file, dir.resolve("node" + id + ".log"), port, List.of("-Xmx512m"));
    joiners.add(r);
    r.start();
  }

  private static void awaitAcks(ClosedLoopWriter w, int acks, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (w.acks() < acks) {
      assertTrue(System.nanoTime() < deadline, "only " + w.acks() + " of " + acks + " writes acknowledged in "
          + timeout + "; errors " + w.errorKinds());
      TimeUnit.MILLISECONDS.sleep(20); // polling the writer's count; no event to wait on
    }
  }
}
