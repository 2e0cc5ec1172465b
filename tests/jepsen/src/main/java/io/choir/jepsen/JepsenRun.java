package io.choir.jepsen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.CheckResult;
import io.choir.checker.Checker;
import io.choir.checker.History;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * JepsenRun is one run of the harness, start to verdict:
 *
 * <ol>
 *   <li>plan the nemesis schedule from the seed (printed, so {@code --seed} replays it);
 *   <li>start the cluster (removing what dead runs left behind);
 *   <li>run the workload and the nemesis for the time limit;
 *   <li>heal everything (resume, restart, delete the nftables rules), wait for the replicas to recover;
 *   <li>final reads of every key;
 *   <li>check: linearizability per key (UNKNOWN is not a pass) and convergence (same applied number and
 *       checksum everywhere);
 *   <li>write the report folder and remove the containers.
 * </ol>
 */
public final class JepsenRun {
  private static final Logger log = LoggerFactory.getLogger(JepsenRun.class);

  /** Options of a run. */
  public record Options(
      int nodes,
      String workload,
      String nemesis,
      Duration timeLimit,
      long seed,
      RegisterWorkload.Settings register,
      NemesisSchedule.Timing timing,
      Path reportBase,
      String image,
      Map<String, Object> serverSettings,
      Duration recoveryTimeout,
      Duration checkTimeout,
      String command) {
    /** Options checks what it can without Docker. */
    public Options {
      Objects.requireNonNull(workload, "workload");
      if (!workload.equals("register")) {
        throw new IllegalArgumentException("unknown workload '" + workload + "'; known: register");
      }
      if (timeLimit.isNegative() || timeLimit.isZero()) {
        throw new IllegalArgumentException("time limit must be positive");
      }
      serverSettings = Map.copyOf(serverSettings);
      Nemeses.parse(nemesis, nodes); // fails early on unknown names
    }

    /** defaults for {@code nodes} nodes under {@code nemesis} for {@code timeLimit}. */
    public static Options defaults(int nodes, String nemesis, Duration timeLimit, long seed) {
      return new Options(nodes, "register", nemesis, timeLimit, seed, RegisterWorkload.Settings.defaults(),
          NemesisSchedule.Timing.defaults(), Path.of(System.getProperty("choir.jepsen.reports", "target/jepsen")),
          System.getProperty("choir.jepsen.image", "choir:latest"), Map.of(), Duration.ofSeconds(60),
          Duration.ofSeconds(120), "");
    }
  }

  /**
   * Outcome of a run.
   *
   * @param results the content of results.json
   * @param dir the report folder
   */
  public record Outcome(JsonNode results, Path dir) {
    /** valid is true only when every checker said true. */
    public boolean valid() {
      return Results.isValid(results);
    }

    /** verdict is "true", "false" or "unknown". */
    public String verdict() {
      return Results.show(results.get("valid"));
    }
  }

  private JepsenRun() {}

  /** execute runs {@code o} and writes its report; progress goes to {@code out}. */
  public static Outcome execute(Options o, PrintStream out) throws IOException, InterruptedException {
    Docker.checkEnvironment();
    Path dir = Report.newRunDir(o.reportBase());
    String runId = dir.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
    List<Nemesis> faults = Nemeses.parse(o.nemesis(), o.nodes());
    NemesisSchedule plan = NemesisSchedule.plan(o.seed(), faults.stream().map(Nemesis::name).toList(), o.timeLimit(), o.timing());
    out.println("jepsen run " + runId + ": seed " + o.seed() + " (replay with --seed " + o.seed() + "), report in "
        + dir.toAbsolutePath());
    out.println(plan.describe());

    ObjectNode run = Json.MAPPER.createObjectNode();
    run.put("id", runId);
    run.put("seed", o.seed());
    run.put("nodes", o.nodes());
    run.put("workload", o.workload());
    run.put("nemesis", o.nemesis());
    run.put("timeLimitSeconds", o.timeLimit().toSeconds());
    run.put("image", o.image());
    run.put("startedAt", Instant.now().toString());
    run.put("replay", replayCommand(o));
    if (!o.command().isEmpty()) {
      run.put("command", o.command());
    }
    ObjectNode ws = run.putObject("workloadSettings");
    ws.put("keys", o.register().keys());
    ws.put("threadsPerKey", o.register().threadsPerKey());
    ws.put("maxOpsPerKey", o.register().maxOpsPerKey());
    ws.put("maxProcessesPerKey", o.register().maxProcessesPerKey());
    ws.put("opsPerSecond", o.register().opsPerSecond());
    ws.put("requestTimeoutMillis", o.register().requestTimeout().toMillis());
    if (!o.serverSettings().isEmpty()) {
      run.set("serverSettings", Json.MAPPER.valueToTree(o.serverSettings()));
    }

    // Ctrl-C or a kill of this JVM: remove the containers now rather than at the next run's start
    Thread cleanup = new Thread(() -> {
      try {
        Docker.removeRun(runId);
      } catch (RuntimeException e) {
        // the next run removes them (their owner pid is gone)
      }
    }, "jepsen-cleanup");
    Runtime.getRuntime().addShutdownHook(cleanup);

    Map<String, ObjectNode> checkers = new LinkedHashMap<>();
    Recorder recorder = null;
    Cluster cluster = null;
    String linJson = null;
    try {
      Cluster.Settings cs = new Cluster.Settings(o.nodes(), o.image(), runId, o.serverSettings(), "-Xms64m -Xmx256m",
          Duration.ofSeconds(90));
      cluster = Cluster.start(cs);
      run.put("subnet", cluster.subnet());
      out.println("cluster up: " + Cluster.describe(cluster.status()));
      Cluster c = cluster;
      recorder = new Recorder(dir.resolve("history.jsonl")); // time 0 of the history: the workload starts
      RegisterWorkload workload = new RegisterWorkload(o.register(), recorder, Nemeses.names(c),
          name -> RegisterWorkload.Client.of(c.client(c.node(name), o.register().requestTimeout())), o.seed());
      NemesisRunner nemesis = new NemesisRunner(c, recorder, plan, faults);

      long start = System.nanoTime();
      workload.start();
      nemesis.start();
      long end = start + o.timeLimit().toNanos();
      for (long left = end - System.nanoTime(); left > 0; left = end - System.nanoTime()) {
        Thread.sleep(Math.max(1, Math.min(10_000, (left + 999_999) / 1_000_000)));
        out.printf("  %5.1f s: %d keys so far%n", (System.nanoTime() - start) / 1e9, workload.keys().size());
      }
      nemesis.stop();
      workload.stop();

      String healed = Nemeses.healAll(c);
      recorder.nemesis(NemesisEvent.HEAL, "heal-all", Nemeses.names(c), healed);
      out.println("healed: " + healed);
      Convergence recovery = Convergence.await(c, o.recoveryTimeout());
      run.put("recoveryMillis", recovery.waitedMillis());
      run.put("recovered", recovery.converged());
      out.println((recovery.converged() ? "recovered after " : "NOT recovered after ") + recovery.waitedMillis() + " ms"
          + (recovery.converged() ? "" : ": " + recovery.problem()));

      String reader = c.primary().map(Cluster.Node::name).orElse("n1");
      int keys = workload.keys().size();
      int read = workload.finalReads(reader, 10, Duration.ofSeconds(60));
      run.put("finalReads", read + " of " + keys + " keys");
      out.println("final reads: " + read + " of " + keys + " keys");
      Convergence fin = Convergence.await(c, Duration.ofSeconds(30));
      checkers.put("convergence", fin.toJson());

      History history = recorder.history();
      out.println("checking " + history.invocations().size() + " operations on " + history.keys().size() + " keys...");
      CheckResult lin = Checker.check(history, o.checkTimeout());
      linJson = lin.toJson();
      checkers.put("linearizable", Results.linearizable(lin));
      out.println("linearizable: " + lin);
      out.println("convergence: " + (fin.converged() ? "ok" : fin.problem()));
    } catch (RuntimeException e) {
      log.error("run {} failed", runId, e);
      run.put("error", e.toString());
      ObjectNode failed = Json.MAPPER.createObjectNode();
      failed.put("valid", Results.UNKNOWN);
      failed.put("problem", "the run did not complete: " + e);
      checkers.put("run", failed);
    } finally {
      if (recorder == null) {
        recorder = new Recorder(dir.resolve("history.jsonl"));
      }
      recorder.close();
      if (cluster != null) {
        cluster.saveLogs(dir.resolve("nodes"));
        cluster.close();
      }
      try {
        Runtime.getRuntime().removeShutdownHook(cleanup);
      } catch (IllegalStateException e) {
        // already shutting down: the hook runs
      }
    }
    if (checkers.isEmpty()) {
      ObjectNode none = Json.MAPPER.createObjectNode();
      none.put("valid", Results.UNKNOWN);
      checkers.put("run", none);
    }
    History history = recorder.history();
    ObjectNode results = Results.build(run, checkers, Results.stats(history), recorder.nemesisEvents());
    Report.write(dir, history, recorder.nemesisEvents(), results, linJson);
    Report.linkLatest(dir);
    Outcome outcome = new Outcome(results, dir);
    out.println("valid: " + outcome.verdict() + "  (" + dir.toAbsolutePath().resolve("index.html") + ")");
    return outcome;
  }

  static String replayCommand(Options o) {
    return "tests/jepsen/run.sh --nodes " + o.nodes() + " --workload " + o.workload() + " --nemesis "
        + (o.nemesis().isBlank() ? "none" : o.nemesis()) + " --time-limit " + o.timeLimit().toSeconds()
        + " --seed " + o.seed();
  }
}
