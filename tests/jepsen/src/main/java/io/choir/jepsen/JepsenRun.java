package io.choir.jepsen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.CheckResult;
import io.choir.checker.Checker;
import io.choir.checker.History;
import io.choir.client.ChoirClient;
import io.choir.client.ReadConsistency;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
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
 *   <li>run the workload ({@link RegisterWorkload}, {@link SetWorkload}, {@link WatchWorkload} or {@link
 *       LeaseWorkload}) and the nemesis for the time
 *       limit;
 *   <li>heal everything (resume, restart, delete the nftables rules), wait for the replicas to recover;
 *   <li>final reads: register: every key through the primary; set: a linearizable scan of every element
 *       through the primary, then, once the replicas converged, a sequential scan of each replica;
 *   <li>check: register: linearizability per key (UNKNOWN is not a pass), garbage reads and convergence
 *       (same applied number and checksum everywhere); set: the set checker and convergence;
 *   <li>write the report folder and remove the containers.
 * </ol>
 */
public final class JepsenRun {
  private static final Logger log = LoggerFactory.getLogger(JepsenRun.class);

  /** WORKLOADS are the workloads a run can drive. */
  public static final List<String> WORKLOADS = List.of("register", "set", "watch", "lease");

  /**
   * Options of a run. {@code register} holds the workload's concurrency, rate and timeout for both
   * workloads (the set workload takes them through {@link SetWorkload.Settings#from}). {@code tls}: the
   * clients use TLS with a client certificate and the replicas check it against an access file
   * ({@link ClusterTls}); false runs them in plaintext ({@code --plaintext}).
   */
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
      String command,
      boolean tls) {
    /** Options checks what it can without Docker. */
    public Options {
      Objects.requireNonNull(workload, "workload");
      if (!WORKLOADS.contains(workload)) {
        throw new IllegalArgumentException("unknown workload '" + workload + "'; known: " + String.join(", ", WORKLOADS));
      }
      if (timeLimit.isNegative() || timeLimit.isZero()) {
        throw new IllegalArgumentException("time limit must be positive");
      }
      serverSettings = Map.copyOf(serverSettings);
      Nemeses.parse(nemesis, nodes); // fails early on unknown names
      if (workload.equals("set")) {
        SetWorkload.Settings.from(register); // fails early on bounds the set workload adds
      }
    }

    /**
     * defaults for {@code nodes} nodes under {@code nemesis} for {@code timeLimit}; TLS on unless the system
     * property {@code choir.jepsen.tls} is false.
     */
    public static Options defaults(int nodes, String nemesis, Duration timeLimit, long seed) {
      return new Options(nodes, "register", nemesis, timeLimit, seed, RegisterWorkload.Settings.defaults(),
          NemesisSchedule.Timing.defaults(), Path.of(System.getProperty("choir.jepsen.reports", "target/jepsen")),
          System.getProperty("choir.jepsen.image", "choir:latest"), Map.of(), Duration.ofSeconds(60),
          Duration.ofSeconds(120), "", !"false".equalsIgnoreCase(System.getProperty("choir.jepsen.tls", "true")));
    }

    /** withWorkload is these options with another workload. */
    public Options withWorkload(String name) {
      return new Options(nodes, name, nemesis, timeLimit, seed, register, timing, reportBase, image, serverSettings,
          recoveryTimeout, checkTimeout, command, tls);
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
    String runId = dir.getFileName().toString().toLowerCase(Locale.ROOT);
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
    run.put("tls", o.tls());
    run.put("startedAt", Instant.now().toString());
    run.put("replay", replayCommand(o));
    if (!o.command().isEmpty()) {
      run.put("command", o.command());
    }
    ObjectNode ws = run.putObject("workloadSettings");
    if (isSet(o)) {
      SetWorkload.Settings set = SetWorkload.Settings.from(o.register());
      ws.put("processes", set.processes());
      ws.put("prefix", SetWorkload.PREFIX);
      ws.put("pageLimit", set.pageLimit());
      ws.put("maxAdds", set.maxAdds());
    } else {
      ws.put("keys", o.register().keys());
      ws.put("threadsPerKey", o.register().threadsPerKey());
      ws.put("maxOpsPerKey", o.register().maxOpsPerKey());
      ws.put("maxProcessesPerKey", o.register().maxProcessesPerKey());
    }
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
      ClusterSettings cs = new ClusterSettings(o.nodes(), o.image(), runId, o.serverSettings(), "-Xms64m -Xmx256m",
          Duration.ofSeconds(90)).withTls(o.tls());
      cluster = Cluster.start(cs);
      run.put("subnet", cluster.subnet());
      out.println("cluster up: " + StatusRound.describe(cluster.status()));
      Cluster c = cluster;
      recorder = new Recorder(dir.resolve("history.jsonl")); // time 0 of the history: the workload starts
      Workload workload = switch (o.workload()) {
        case "set" -> new SetRun(o, c, recorder);
        case "watch" -> new WatchLeaseRuns.WatchRun(o, c, recorder);
        case "lease" -> new WatchLeaseRuns.LeaseRun(o, c, recorder);
        default -> new RegisterRun(o, c, recorder);
      };
      NemesisRunner nemesis = new NemesisRunner(c, recorder, plan, faults);

      long start = System.nanoTime();
      workload.start();
      nemesis.start();
      long end = start + o.timeLimit().toNanos();
      for (long left = end - System.nanoTime(); left > 0; left = end - System.nanoTime()) {
        Thread.sleep(Math.max(1, Math.min(10_000, (left + 999_999) / 1_000_000)));
        out.printf("  %5.1f s: %s%n", (System.nanoTime() - start) / 1e9, workload.progress());
      }
      nemesis.stop();
      workload.stop();

      String healed = Nemeses.healAll(c);
      recorder.nemesis(NemesisEvent.HEAL, "heal-all", Targets.names(c), healed);
      out.println("healed: " + healed);
      Readiness ready = Readiness.await(c, c.nodes(), c.nodes().size(), o.recoveryTimeout());
      run.put("readyAfterHeal", ready.describe());
      run.set("healthAfterHeal", Json.MAPPER.valueToTree(Readiness.health(c, c.nodes())));
      out.println("after the heal: " + ready.describe());
      Convergence recovery = Convergence.await(c, o.recoveryTimeout());
      run.put("recoveryMillis", recovery.waitedMillis());
      run.put("recovered", recovery.converged());
      out.println((recovery.converged() ? "recovered after " : "NOT recovered after ") + recovery.waitedMillis() + " ms"
          + (recovery.converged() ? "" : ": " + recovery.problem()));

      String reader = c.primary().map(Cluster.Node::name).orElse("n1");
      String read = workload.finalReads(reader);
      run.put("finalReads", read);
      out.println("final reads: " + read);
      Convergence fin = Convergence.await(c, Duration.ofSeconds(30));
      out.println("convergence: " + (fin.converged() ? "ok" : fin.problem()));
      if (fin.converged()) {
        String replicas = workload.replicaReads();
        if (!replicas.isEmpty()) {
          run.put("replicaReads", replicas);
          out.println("replica reads: " + replicas);
        }
      }

      History history = recorder.history();
      out.println("checking " + history.invocations().size() + " operations on " + history.keys().size() + " keys...");
      linJson = workload.check(checkers, out);
      checkers.put("convergence", fin.toJson());
    } catch (RuntimeException e) {
      log.error("run {} failed", runId, e);
      run.put("error", e.toString());
      checkers.put("run", Results.unknown("the run did not complete: " + e));
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
      checkers.put("run", Results.unknown("no checker ran"));
    }
    History history = recorder.history();
    ObjectNode results = Results.build(run, checkers, Results.stats(history), recorder.nemesisEvents());
    Report.write(dir, history, recorder.nemesisEvents(), results, linJson);
    Report.linkLatest(dir);
    Outcome outcome = new Outcome(results, dir);
    out.println("valid: " + outcome.verdict() + "  (" + dir.toAbsolutePath().resolve("index.html") + ")");
    return outcome;
  }

  private static boolean isSet(Options o) {
    return o.workload().equals("set");
  }

  /**
   * Workload is what execute needs of a workload: run it, read the final state once healed, and check
   * what was recorded, putting its checkers' entries in the map.
   */
  interface Workload {
    void start();

    void stop() throws InterruptedException;

    /** progress is one line while it runs. */
    String progress();

    /** finalReads reads the final state through {@code reader}; returns a one-line account. */
    String finalReads(String reader) throws InterruptedException;

    /** replicaReads reads each replica's own state once they converged; returns an account or "". */
    String replicaReads() throws InterruptedException;

    /** check runs the workload's checkers into {@code checkers}; returns linearizability.json or null. */
    String check(Map<String, ObjectNode> checkers, PrintStream out);
  }

  /** RegisterRun: linearizability per key, garbage reads. */
  private static final class RegisterRun implements Workload {
    private final Options o;
    private final Recorder recorder;
    private final RegisterWorkload workload;

    RegisterRun(Options o, Cluster c, Recorder recorder) {
      this.o = o;
      this.recorder = recorder;
      this.workload = new RegisterWorkload(o.register(), recorder, Targets.names(c),
          name -> RegisterWorkload.Client.of(c.client(c.node(name), o.register().requestTimeout())), o.seed());
    }

    @Override
    public void start() {
      workload.start();
    }

    @Override
    public void stop() throws InterruptedException {
      workload.stop();
    }

    @Override
    public String progress() {
      return workload.keys().size() + " keys so far";
    }

    @Override
    public String finalReads(String reader) {
      int keys = workload.keys().size();
      int read = workload.finalReads(reader, 10, Duration.ofSeconds(60));
      return read + " of " + keys + " keys";
    }

    @Override
    public String replicaReads() {
      return "";
    }

    @Override
    public String check(Map<String, ObjectNode> checkers, PrintStream out) {
      History history = recorder.history();
      CheckResult lin = Checker.check(history, o.checkTimeout());
      checkers.put("linearizable", Results.linearizable(lin));
      out.println("linearizable: " + lin);
      GarbageReads garbage = GarbageReads.check(history);
      checkers.put("garbage-reads", garbage.toJson());
      out.println("garbage reads: " + garbage.summary());
      return lin.toJson();
    }
  }

  /** SetRun: final scans through the primary and of each replica, the set checker. */
  private static final class SetRun implements Workload {
    private final Cluster cluster;
    private final Recorder recorder;
    private final SetWorkload workload;
    private final Duration timeout;

    SetRun(Options o, Cluster c, Recorder recorder) {
      this.cluster = c;
      this.recorder = recorder;
      this.timeout = o.register().requestTimeout();
      this.workload = new SetWorkload(SetWorkload.Settings.from(o.register()), recorder, Targets.names(c),
          name -> SetWorkload.Client.of(c.client(c.node(name), timeout)), o.seed());
    }

    @Override
    public void start() {
      workload.start();
    }

    @Override
    public void stop() throws InterruptedException {
      workload.stop();
    }

    @Override
    public String progress() {
      return workload.elementsDrawn() + " elements so far";
    }

    @Override
    public String finalReads(String reader) throws InterruptedException {
      try (SetWorkload.Client client = SetWorkload.Client.of(cluster.client(cluster.node(reader), timeout))) {
        boolean ok = workload.read(reader, client, ReadConsistency.LINEARIZABLE, Duration.ofSeconds(60));
        return describe(ok ? "linearizable scan through " + reader : "no linearizable scan succeeded in 60 s");
      }
    }

    @Override
    public String replicaReads() throws InterruptedException {
      List<String> failed = new ArrayList<>();
      for (Cluster.Node n : cluster.nodes()) {
        // a client that knows only this replica: a sequential read is served from its own applied state
        ChoirClient only = cluster.clientBuilder(List.of(n.endpoint())).requestTimeout(timeout)
            .readConsistency(ReadConsistency.SEQUENTIAL).eventLoopThreads(1).build();
        try (SetWorkload.Client client = SetWorkload.Client.of(only)) {
          if (!workload.read(n.name(), client, ReadConsistency.SEQUENTIAL, Duration.ofSeconds(10))) {
            failed.add(n.name());
          }
        }
      }
      return "sequential scan of " + cluster.nodes().size() + " replicas"
          + (failed.isEmpty() ? "" : ", failed on " + String.join(",", failed));
    }

    private String describe(String what) {
      List<SetRead> reads = recorder.setReads();
      SetRead last = reads.isEmpty() ? null : reads.get(reads.size() - 1);
      // the checker's Outcome by its full name: JepsenRun.Outcome (a run's results) takes the short one
      return what + (last != null && last.outcome() == io.choir.checker.Outcome.OK
          ? ": " + last.elements().size() + " elements in " + last.pages() + " pages" : "")
          + " (" + reads.size() + " attempts)";
    }

    @Override
    public String check(Map<String, ObjectNode> checkers, PrintStream out) {
      SetChecker.Result set = SetChecker.check(recorder.history(), recorder.setReads(), SetWorkload.PREFIX);
      checkers.put("set", set.toJson());
      out.println("set: " + Results.show(Results.valid(set.verdict())) + ": " + set.summary());
      return null;
    }
  }

  static String replayCommand(Options o) {
    return "tests/jepsen/run.sh --nodes " + o.nodes() + " --workload " + o.workload() + " --nemesis "
        + (o.nemesis().isBlank() ? "none" : o.nemesis()) + " --time-limit " + o.timeLimit().toSeconds()
        + " --seed " + o.seed() + (o.tls() ? "" : " --plaintext");
  }
}
