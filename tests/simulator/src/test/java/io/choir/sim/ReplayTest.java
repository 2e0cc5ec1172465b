package io.choir.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * ReplayTest checks what every failing seed relies on: a seed replays event for event, whatever ran
 * before it in the same JVM (so a seed found in a batch of thousands replays alone). The run's history
 * (every invoke and completion, with its simulated time) and its statistics must be identical.
 */
class ReplayTest {
  @Test
  void shouldReplayTheSameRunFromTheSameSeedWhateverRanBefore() {
    long base = Long.getLong("choir.sim.base", 1L);
    for (long seed = base; seed < base + 12; seed++) {
      SimResult first = new Simulation(SimConfig.fromSeed(seed)).run();
      // Other runs in between: they change the JVM's state (identity hash codes, JIT, heap), not the run.
      for (long other = seed + 1000; other < seed + 1003; other++) {
        new Simulation(SimConfig.fromSeed(other)).run();
      }
      SimResult again = new Simulation(SimConfig.fromSeed(seed)).run();
      List<SimHistory.Rec> a = first.history().events;
      List<SimHistory.Rec> b = again.history().events;
      assertEquals(a.size(), b.size(), "seed " + seed + ": history length differs between two runs");
      for (int i = 0; i < a.size(); i++) {
        assertEquals(a.get(i), b.get(i), "seed " + seed + ": history event " + i + " differs between two runs");
      }
      assertEquals(first.stats(), again.stats(), "seed " + seed + ": statistics differ between two runs");
    }
  }
}
