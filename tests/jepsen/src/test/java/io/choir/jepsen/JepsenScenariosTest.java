package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The CI suite of the harness: short versions of its scenarios against real replica containers (Docker
 * and the image {@code choir.jepsen.image}, default choir:latest, are needed: these run only in the
 * {@code jepsen} profile, which the README's test command runs). Each must come out valid: linearizable
 * on every key, no garbage reads, converged after healing. The last one runs a deliberately broken server
 * and must come out invalid: proof that the harness can fail.
 *
 * <p>Each scenario has a fixed default seed so CI replays the same nemesis plan; {@code
 * -Dchoir.jepsen.seed=N} runs another, {@code -Dchoir.jepsen.seconds=N} changes the time limit. The
 * clients use TLS with a client certificate (and the replicas an access file) unless {@code
 * -Dchoir.jepsen.tls=false}. The
 * report of each run is under target/jepsen/&lt;timestamp&gt;/ (its path is printed). The same runs from
 * the command line: {@code tests/jepsen/run.sh --nemesis kill-primary --time-limit 45 --seed 7}.
 */
class JepsenScenariosTest {
  private static final long SECONDS = 45;

  private static JepsenRun.Outcome execute(int nodes, String nemesis, long defaultSeed, Map<String, Object> server)
      throws Exception {
    return execute("register", nodes, nemesis, defaultSeed, server);
  }

  private static JepsenRun.Outcome execute(String workload, int nodes, String nemesis, long defaultSeed,
      Map<String, Object> server) throws Exception {
    long seed = Long.getLong("choir.jepsen.seed", defaultSeed);
    long seconds = Long.getLong("choir.jepsen.seconds", SECONDS);
    JepsenRun.Options d = JepsenRun.Options.defaults(nodes, nemesis, Duration.ofSeconds(seconds), seed);
    JepsenRun.Options o = new JepsenRun.Options(d.nodes(), workload, d.nemesis(), d.timeLimit(), d.seed(),
        d.register(), d.timing(), d.reportBase(), d.image(), server, d.recoveryTimeout(), d.checkTimeout(),
        "JepsenScenariosTest " + workload + " " + nemesis + " seed " + seed, d.tls());
    return JepsenRun.execute(o, System.out);
  }

  private static void valid(int nodes, String nemesis, long defaultSeed) throws Exception {
    valid("register", nodes, nemesis, defaultSeed);
  }

  private static void valid(String workload, int nodes, String nemesis, long defaultSeed) throws Exception {
    JepsenRun.Outcome outcome = execute(workload, nodes, nemesis, defaultSeed, Map.of());
    assertTrue(outcome.valid(), "valid: " + outcome.verdict() + " (" + workload + ") under " + nemesis + "; report "
        + outcome.dir().toAbsolutePath().resolve("index.html") + "\n" + outcome.results().path("checkers"));
  }

  /** A minority (1 of 3, primary or not) cut off from the majority, again and again, while clients write. */
  @Test
  void minorityPartitionDuringWrites() throws Exception {
    valid(3, "partition-halves", 11);
  }

  /** kill -9 of whichever replica is primary, restarted with its data, while clients write. */
  @Test
  void killOfThePrimary() throws Exception {
    valid(3, "kill-primary", 7);
  }

  /** Every replica drops 20% of the multicast it receives: NACK repair must fill every gap. */
  @Test
  void multicastLoss20() throws Exception {
    valid(3, "multicast-loss-20", 3);
  }

  /** A backup frozen (docker pause) for longer than the election timeout, then resumed. */
  @Test
  void backupPausedPastTheElectionTimeout() throws Exception {
    valid(3, "pause-backup", 5);
  }

  /** Every replica killed (kill -9) or stopped cleanly at once, then started again: nothing acknowledged is lost. */
  @Test
  void restartOfAllNodes() throws Exception {
    valid(3, "kill-all,restart-all", 13);
  }

  /** The others stop hearing the primary while it still hears them (a one-way cut). */
  @Test
  void primaryCutOffOneWay() throws Exception {
    valid(3, "partition-primary-oneway", 17);
  }

  /** The set workload (unique adds, final reads) while a minority is cut off or the primary is killed. */
  @Test
  void setWorkloadUnderPartitionsAndKills() throws Exception {
    valid("set", 3, "partition-halves,kill-primary", 19);
  }

  /**
   * The watch workload: watchers of the prefix and of single keys, some started from a past revision,
   * follow the writes while the primary is killed or a minority cut off; the watch checker (no gap, no
   * duplicate, every watcher agrees, final state) must pass.
   */
  @Test
  void watchesAcrossFailovers() throws Exception {
    valid("watch", 3, "kill-primary,partition-halves", 41);
  }

  /**
   * The lease workload: leases of 3 s granted, kept alive, revoked or left to expire while the primary is
   * paused past the election timeout or killed; the lease checker (never early, late by at most the
   * documented bound widened by overlapping faults, every key gone at the end on every replica) must pass.
   */
  @Test
  void leasesUnderFaults() throws Exception {
    valid("lease", 3, "pause-primary,kill-primary", 37);
  }

  /**
   * A voter (any, the primary too) cut off while alive, and one more node with it, replaced by a fresh
   * replica (join: true) through the bare majority of 5 left. Valid, converged over the new voters, at
   * least one replacement completed (the nemesis records its result in the history, so a change that
   * never happens fails the test), no removed node served a stale read after the heal, and every removed
   * node retired once it was reachable again.
   */
  @Test
  void aCutOffVoterIsReplacedByANewReplica() throws Exception {
    JepsenRun.Outcome outcome = execute(5, "member-replace", 29, Map.of());
    String where = "; report " + outcome.dir().toAbsolutePath().resolve("index.html");
    List<String> results = new ArrayList<>();
    outcome.results().path("nemesis").forEach(e -> {
      if (e.path("fault").asText().equals("member-replace") && !e.path("f").asText().equals(NemesisEvent.START)) {
        results.add(e.path("value").asText());
      }
    });
    System.out.println("member-replace results: " + results);
    assertTrue(outcome.valid(), "valid: " + outcome.verdict() + " under member-replace" + where + "\n"
        + outcome.results().path("checkers") + "\n" + results);
    assertTrue(results.stream().anyMatch(r -> r.startsWith("replaced ")), "no replacement completed: " + results + where);
    assertTrue(results.stream().noneMatch(r -> r.contains("STALE READ")), "a removed node served a stale read: "
        + results + where);
    assertTrue(results.stream().noneMatch(r -> r.contains("NOT RETIRED")), "a removed node did not retire after"
        + " the heal: " + results + where);
  }

  /**
   * With {@code test_break_protocol: commit-alone} the primary acknowledges a write once it alone has it on
   * disk; cut off from the others, it acknowledges writes that the majority's next view never sees. The
   * verdict must be invalid (false, not unknown): proof that the harness can fail.
   */
  @Test
  void aBrokenServerIsCaught() throws Exception {
    JepsenRun.Outcome outcome = execute(3, "partition-primary", 23, Map.of("test_break_protocol", "commit-alone"));
    assertEquals("false", outcome.verdict(), "a primary that acknowledges writes alone must be caught; report "
        + outcome.dir().toAbsolutePath().resolve("index.html") + "\n" + outcome.results().path("checkers"));
  }
}
