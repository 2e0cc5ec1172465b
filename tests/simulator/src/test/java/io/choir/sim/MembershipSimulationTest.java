package io.choir.sim;

import static org.junit.jupiter.api.Assertions.fail;

import io.choir.proto.MemberChange;
import io.choir.proto.Request;
import io.choir.server.core.Event;
import io.choir.server.core.Membership;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * MembershipSimulationTest runs the whole replica process on simulated time (the simulator's loss,
 * duplication, reordering, partitions and crashes) while the membership grows from 3 to 5 voters and
 * shrinks back to 3: replicas 4 and 5 start empty as joiners, each is added as a learner and promoted
 * once it has caught up, then replicas 1 and 2 (the first primary among them) are removed, with the
 * clients' workload going on (DESIGN.md "Membership"). Every seed is printed and replays with
 * -Dchoir.sim.membership.seed. Checked: the simulator's invariants and linearizability, and while it runs
 * one membership per epoch on every replica and one primary per view; printed: the epoch switches and
 * their unavailability (simulated time from the request that made the epoch change to the
 * first commit in the new epoch).
 */
class MembershipSimulationTest {
  private static final long MS = 1_000_000L;

  @Test
  void shouldGrowFromThreeToFiveVotersAndShrinkToThreeWhileServingUnderFaults() {
    String one = System.getProperty("choir.sim.membership.seed", "");
    int count = Integer.getInteger("choir.sim.membership.seeds", 30);
    List<Long> seeds = new ArrayList<>();
    if (!one.isBlank()) {
      seeds.add(Long.parseLong(one.trim()));
    } else {
      for (long s = 1; s <= count; s++) {
        seeds.add(s);
      }
    }
    List<String> failures = new ArrayList<>();
    long switches = 0;
    long totalNs = 0;
    long worstNs = 0;
    int completed = 0;
    for (long seed : seeds) {
      System.out.println("membership simulation seed " + seed);
      SimConfig base = SimConfig.fromSeed(seed);
      SimConfig cfg = new SimConfig(seed, 5, base.clients(), base.keys(), base.opsPerClient() * 2, Math.min(base.lossRate(), 0.1),
          base.duplicateRate(), base.minDelayNs(), base.maxDelayNs(), base.faults(), base.faultPeriodNs(),
          base.logRetentionOps(), base.buffered(), base.maxClientSessions(), base.sessionTimeoutMs(), base.slowDisk(),
          base.faultPlan(), base.valueBytes(), base.maxInFlightBytes(), base.clientAttemptTimeoutMs(),
          base.clientRequestTimeoutMs());
      Driver driver = new Driver();
      SimResult r = new Simulation(cfg, 3, driver).run();
      List<String> problems = new ArrayList<>(r.violations());
      problems.addAll(driver.violations);
      problems.addAll(SimChecks.linearizability(r));
      if (!problems.isEmpty()) {
        failures.add("seed " + seed + " (" + cfg + "): " + String.join("; ", problems)
            + "\n  replay: mvn -pl tests/simulator test -Dtest=MembershipSimulationTest -Dchoir.sim.membership.seed=" + seed);
      }
      switches += driver.unavailableNs.size();
      for (long ns : driver.unavailableNs) {
        totalNs += ns;
        worstNs = Math.max(worstNs, ns);
      }
      if (driver.step == Driver.PLAN.length) {
        completed++;
      }
    }
    System.out.printf("membership simulation: %d seeds, %d went 3 -> 5 -> 3 voters, %d epoch switches measured,"
        + " unavailability mean %d ms, worst %d ms (simulated)%n", seeds.size(), completed, switches,
        switches == 0 ? 0 : totalNs / switches / MS, worstNs / MS);
    if (!failures.isEmpty()) {
      fail(String.join("\n", failures));
    }
  }

  /** Drives the plan from the run's events and checks the membership invariants as it goes. */
  private static final class Driver implements SimObserver {
    static final MemberChange.Builder[] PLAN = {
        MemberChange.newBuilder().setKind(MemberChange.Kind.ADD_LEARNER).setId(4)
            .setClientAddress(SimClientIo.address(4)).setPeerAddress("sim-peer-4"),
        MemberChange.newBuilder().setKind(MemberChange.Kind.PROMOTE).setId(4),
        MemberChange.newBuilder().setKind(MemberChange.Kind.ADD_LEARNER).setId(5)
            .setClientAddress(SimClientIo.address(5)).setPeerAddress("sim-peer-5"),
        MemberChange.newBuilder().setKind(MemberChange.Kind.PROMOTE).setId(5),
        MemberChange.newBuilder().setKind(MemberChange.Kind.REMOVE).setId(1),
        MemberChange.newBuilder().setKind(MemberChange.Kind.REMOVE).setId(2)};
    final List<String> violations = new ArrayList<>();
    final List<Long> unavailableNs = new ArrayList<>();
    int step;
    private long nextAskNs = 500 * MS;
    private long requestIds = 1L << 40;
    /** The promotion asked last (its time), and the epoch it must leave. */
    private long promotionAskedNs = -1;
    private long promotionFromEpoch;
    private long switchedCommit = -1;

    @Override
    public void afterEvent(Simulation sim) {
      long now = sim.clock.now();
      Map<Long, List<Integer>> voters = new HashMap<>();
      Map<Long, Integer> primaries = new HashMap<>();
      SimReplica primary = null;
      for (int id = 1; id <= 5; id++) {
        SimReplica node = sim.node(id);
        if (node.core == null || !node.up) {
          continue;
        }
        Membership m = node.core.membership();
        List<Integer> seen = voters.putIfAbsent(m.epoch(), m.voterIds());
        if (seen != null && !seen.equals(m.voterIds()) && violations.isEmpty()) {
          violations.add("epoch " + m.epoch() + " has voters " + seen + " and " + m.voterIds());
        }
        if (node.core.isPrimary()) {
          Integer other = primaries.putIfAbsent(node.core.view(), id);
          if (other != null && violations.isEmpty()) {
            violations.add("two primaries of view " + node.core.view() + ": " + other + " and " + id);
          }
          if (primary == null || node.core.view() > primary.core.view()) {
            primary = node;
          }
        }
      }
      if (primary == null) {
        return;
      }
      measure(primary, now);
      if (step < PLAN.length && done(primary.core.membership())) {
        step++;
      }
      if (step < PLAN.length && now >= nextAskNs) {
        nextAskNs = now + 200 * MS;
        MemberChange.Builder change = PLAN[step];
        if (change.getKind() != MemberChange.Kind.ADD_LEARNER && promotionAskedNs < 0) {
          promotionAskedNs = now;
          promotionFromEpoch = primary.core.membership().epoch();
        }
        long id = ++requestIds;
        // A connection the replica does not know: the answer is dropped, progress is read from the core.
        primary.post(new Event.ClientRequest(-1, Request.newBuilder().setRequestId(id).setMemberChange(change).build()));
      }
    }

    private boolean done(Membership m) {
      MemberChange.Builder c = PLAN[step];
      return switch (c.getKind()) {
        case ADD_LEARNER -> m.contains(c.getId());
        case REMOVE -> !m.contains(c.getId());
        default -> m.isVoter(c.getId());
      };
    }

    /** From the promotion's request to the first commit beyond the switch in the new epoch. */
    private void measure(SimReplica primary, long now) {
      if (promotionAskedNs < 0 || primary.core.membership().epoch() <= promotionFromEpoch) {
        return;
      }
      if (switchedCommit < 0) {
        switchedCommit = primary.core.commitOp();
      } else if (primary.core.commitOp() > switchedCommit) {
        unavailableNs.add(now - promotionAskedNs);
        promotionAskedNs = -1;
        switchedCommit = -1;
      }
    }
  }
}
