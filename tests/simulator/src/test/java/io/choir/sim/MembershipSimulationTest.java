package io.choir.sim;

import static org.junit.jupiter.api.Assertions.fail;

import io.choir.sim.MembershipDriver.Step;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MembershipSimulationTest runs the whole replica process on simulated time (the simulator's loss,
 * duplication, reordering, partitions and crashes) while the membership grows from 3 to 5 voters and
 * shrinks back to 3: replicas 4 and 5 start empty as joiners, each is added as a learner and promoted
 * once it has caught up, then replicas 1 and 2 (the first primary among them) are removed, with the
 * clients' workload going on (DESIGN.md "Membership"). Every seed is printed and replays with
 * -Dchoir.sim.membership.seed. Checked: the simulator's invariants (the acknowledgement check counting
 * the voters of each op's epoch) and linearizability, and while it runs one membership per epoch on
 * every replica and one primary per view ({@link MembershipDriver}); printed: the epoch switches and
 * their unavailability (simulated time from the request that made the epoch change to the first
 * commit in the new epoch). The replacement plans are in {@link MembershipReplacementSimulationTest}.
 */
class MembershipSimulationTest {
  @Test
  void shouldGrowFromThreeToFiveVotersAndShrinkToThreeWhileServingUnderFaults() {
    MembershipRuns.Outcome o = new MembershipRuns("3 -> 5 -> 3 voters", "membership", "MembershipSimulationTest", 5, 3,
        2, false, seed -> List.of(Step.add(4), Step.promote(4), Step.add(5), Step.promote(5), Step.remove(1),
        Step.remove(2))).run();
    if (!o.failures().isEmpty()) {
      fail(String.join("\n", o.failures()));
    }
  }
}
