package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Short versions of the harness's scenarios against real replica containers (Docker and the image
 * {@code choir.jepsen.image}, default choir:latest, are needed: these run only in the {@code jepsen}
 * profile). Each must come out valid: linearizable on every key and converged after healing.
 *
 * <p>Each scenario has a fixed default seed so CI replays the same nemesis plan; {@code
 * -Dchoir.jepsen.seed=N} runs another, {@code -Dchoir.jepsen.seconds=N} changes the time limit. The
 * report of each run is under target/jepsen/&lt;timestamp&gt;/.
 */
class JepsenScenariosTest {

  private static JepsenRun.Outcome run(int nodes, String nemesis, long defaultSeconds, long defaultSeed)
      throws Exception {
    long seed = Long.getLong("choir.jepsen.seed", defaultSeed);
    long seconds = Long.getLong("choir.jepsen.seconds", defaultSeconds);
    JepsenRun.Options o = JepsenRun.Options.defaults(nodes, nemesis, Duration.ofSeconds(seconds), seed);
    JepsenRun.Outcome outcome = JepsenRun.execute(o, System.out);
    assertTrue(outcome.valid(), "valid: " + outcome.verdict() + " (seed " + seed + "); report "
        + outcome.dir().toAbsolutePath().resolve("index.html") + "\n" + outcome.results().path("checkers"));
    return outcome;
  }

  /** A minority (1 of 3, primary or not) cut off from the majority, again and again, while clients write. */
  @Test
  void minorityPartitionDuringWrites() throws Exception {
    run(3, "partition-halves", 60, 11); // seed 11 cuts off n3, n1, n2, n3 in turn
  }

  /** kill -9 of whichever replica is primary, restarted with its data, while clients write. */
  @Test
  void killOfThePrimary() throws Exception {
    run(3, "kill-primary", 60, 7);
  }
}
