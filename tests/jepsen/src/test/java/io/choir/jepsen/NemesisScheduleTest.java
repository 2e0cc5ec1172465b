package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The schedule is a pure function of the seed: a run is replayed with --seed. */
class NemesisScheduleTest {
  private static final List<String> FAULTS = List.of("partition-one", "kill-primary", "multicast-loss-20");

  @Test
  void sameSeedGivesTheSamePlan() {
    NemesisSchedule a = NemesisSchedule.plan(42, FAULTS, Duration.ofSeconds(120), NemesisSchedule.Timing.defaults());
    NemesisSchedule b = NemesisSchedule.plan(42, FAULTS, Duration.ofSeconds(120), NemesisSchedule.Timing.defaults());
    assertEquals(a, b);
    assertEquals(a.describe(), b.describe());
    assertFalse(a.steps().isEmpty());
  }

  @Test
  void anotherSeedGivesAnotherPlan() {
    NemesisSchedule a = NemesisSchedule.plan(1, FAULTS, Duration.ofSeconds(120), NemesisSchedule.Timing.defaults());
    NemesisSchedule b = NemesisSchedule.plan(2, FAULTS, Duration.ofSeconds(120), NemesisSchedule.Timing.defaults());
    assertNotEquals(a.steps(), b.steps());
  }

  @Test
  void faultsDoNotOverlapAndEndBeforeTheTimeLimit() {
    for (long seed = 0; seed < 200; seed++) {
      NemesisSchedule s = NemesisSchedule.plan(seed, FAULTS, Duration.ofSeconds(60), NemesisSchedule.Timing.defaults());
      long previousEnd = 0;
      for (NemesisSchedule.Step step : s.steps()) {
        assertTrue(step.atMillis() >= previousEnd + 4000, "quiet period of at least 4 s before " + step);
        assertTrue(step.holdMillis() >= 6000 && step.holdMillis() <= 12000, step.toString());
        assertTrue(FAULTS.contains(step.fault()));
        previousEnd = step.atMillis() + step.holdMillis();
      }
      assertTrue(previousEnd <= 60_000, "ends within the limit: " + s.describe());
    }
  }

  @Test
  void noFaultsNoSteps() {
    NemesisSchedule s = NemesisSchedule.plan(7, List.of(), Duration.ofSeconds(60), NemesisSchedule.Timing.defaults());
    assertTrue(s.steps().isEmpty());
    assertTrue(s.describe().contains("no faults"));
  }
}
