package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.choir.sim.MembershipDriver.Step;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipReplacementSimulationTest runs the whole replica process on simulated time (loss,
 * duplication, reordering, partitions, crashes, the clients' workload) through three plans of
 * membership changes (DESIGN.md "Membership"): live voters replaced by joiners (REPLACE, 3 voters stay
 * 3); a voter crashed for good (the primary in even seeds, a backup in odd ones) replaced by a joiner
 * while the faults go on, the remaining majority serving meanwhile; and a single-voter bootstrap grown to
 * 3 and 5 voters and shrunk back to 3. Checked as {@link MembershipSimulationTest}: the simulator's
 * invariants (the acknowledgement check counting the voters of each op's epoch), linearizability, one
 * membership per epoch and one primary per view. Each prints its seeds, the seeds that completed the
 * plan, the switches and their unavailability; 30 seeds each, more with -Dchoir.sim.KEY.seeds, one
 * replayed with -Dchoir.sim.KEY.seed (KEY: replace, deadvoter, single).
 */
class MembershipReplacementSimulationTest {
  private static final String CLASS = "MembershipReplacementSimulationTest";

  @Test
  void shouldReplaceLiveVotersByJoinersWhileServingUnderFaults() {
    check(new MembershipRuns("3 voters, 1 and 2 replaced by 4 and 5", "replace",
        CLASS + "#shouldReplaceLiveVotersByJoinersWhileServingUnderFaults", 5, 3, 2, false,
        seed -> List.of(Step.add(4), Step.replace(1, 4), Step.add(5), Step.replace(2, 5))).run());
  }

  @Test
  void shouldReplaceAVoterCrashedForGoodWhileTheFaultsGoOn() {
    MembershipRuns.Outcome o = new MembershipRuns("a voter crashed for good, replaced by 4", "deadvoter",
        CLASS + "#shouldReplaceAVoterCrashedForGoodWhileTheFaultsGoOn", 4, 3, 2, true,
        seed -> List.of(Step.crashForGood(seed % 2 == 0), Step.add(4), Step.replace(0, 4))).run();
    check(o);
    assertTrue(o.afterCrashNs().size() > 0, "the remaining majority never committed after a crash for good");
  }

  @Test
  void shouldGrowFromOneToThreeToFiveVotersAndShrinkToThreeWhileServingUnderFaults() {
    check(new MembershipRuns("1 -> 3 -> 5 -> 3 voters", "single",
        CLASS + "#shouldGrowFromOneToThreeToFiveVotersAndShrinkToThreeWhileServingUnderFaults", 5, 1, 3, false,
        seed -> List.of(Step.add(2), Step.promote(2), Step.add(3), Step.promote(3), Step.add(4), Step.promote(4),
            Step.add(5), Step.promote(5), Step.remove(1), Step.remove(2))).run());
  }

  private static void check(MembershipRuns.Outcome o) {
    if (!o.failures().isEmpty()) {
      fail(String.join("\n", o.failures()));
    }
    assertTrue(o.completed() > 0, "no seed completed the plan");
  }
}
