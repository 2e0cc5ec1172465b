package io.choir.jepsen;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Run is the harness's command line: one run of a workload under a nemesis, with a report. Exit code 0
 * when every checker says valid, 1 when one says invalid, 3 when the verdict is unknown (a checker ran
 * out of time, or the run broke), 2 for a usage error.
 *
 * <pre>
 * tests/jepsen/run.sh --nodes 5 --nemesis partition-halves,kill-primary --time-limit 120 --seed 42
 * </pre>
 */
@Command(name = "run.sh", mixinStandardHelpOptions = true, sortOptions = false,
    description = "Runs Choir replica containers under a nemesis while clients record a history, then checks it"
        + " (register: linearizability per key, garbage reads, convergence; set: lost/unexpected/duplicated"
        + " elements, convergence) and writes a report under --report-dir/<timestamp>/ (and `latest`). Needs"
        + " Docker and the image (deploy/docker/build-image.sh).",
    footer = {"", "Nemeses: partition-one, partition-primary, partition-halves, partition-ring (5 nodes),",
        "partition-bridge (5 nodes), partition-primary-oneway, multicast-cut, multicast-loss-5|20|50,",
        "repair-path-cut, repair-path-cut-all, duplicate, kill-one, kill-primary, kill-minority, kill-all,",
        "restart-all, pause-one, pause-primary, pause-backup, pause-one-short, pause-primary-short, disk-full,",
        "disk-full-primary (disk-full* need root: each replica's data is a loop-mounted ext2 on the host),",
        "member-replace (3 or 5 nodes: a cut-off voter replaced by a fresh replica);",
        "groups: none, all, partitions, kills (kill-* and restart-all), pauses, multicast, repair,",
        "network (partitions, multicast, repair, duplicate), disk, membership (member-replace).",
        "Exit: 0 valid, 1 invalid, 3 unknown (or the run broke), 2 usage."})
public final class Run implements Callable<Integer> {
  @Option(names = "--nodes", defaultValue = "3", description = "replicas: 3 or 5 (default ${DEFAULT-VALUE})")
  int nodes;

  @Option(names = "--workload", defaultValue = "register",
      description = "register (read/write/CAS per key), set (unique adds, final scans), watch (watchers through the faults) or lease (expiry timing) (default ${DEFAULT-VALUE})")
  String workload;

  @Option(names = "--nemesis", defaultValue = "partition-halves,kill-primary",
      description = "comma-separated faults, see below (default ${DEFAULT-VALUE})")
  String nemesis;

  @Option(names = "--time-limit", defaultValue = "60", description = "seconds of workload + nemesis (default ${DEFAULT-VALUE})")
  long timeLimitSeconds;

  @Option(names = "--seed", description = "seed of the nemesis schedule and the op mix (default: random, printed)")
  Long seed;

  @Option(names = "--keys", defaultValue = "2",
      description = "keys worked on at once; set: processes = keys x threads-per-key (default ${DEFAULT-VALUE})")
  int keys;

  @Option(names = "--threads-per-key", defaultValue = "5", description = "processes per key at once, <= 10 (default ${DEFAULT-VALUE})")
  int threadsPerKey;

  @Option(names = "--ops-per-key", defaultValue = "200", description = "invocations per key before a fresh key, <= 200 (default ${DEFAULT-VALUE})")
  int opsPerKey;

  @Option(names = "--rate", defaultValue = "100", description = "target ops/s over all workers, 0 = as fast as possible (default ${DEFAULT-VALUE})")
  double rate;

  @Option(names = "--request-timeout-ms", defaultValue = "2000", description = "client timeout; a write past it is info (default ${DEFAULT-VALUE})")
  long requestTimeoutMs;

  @Option(names = "--fault-seconds", defaultValue = "6-12", description = "how long each fault holds, min-max (default ${DEFAULT-VALUE})")
  String faultSeconds;

  @Option(names = "--quiet-seconds", defaultValue = "4-8", description = "pause between faults, min-max (default ${DEFAULT-VALUE})")
  String quietSeconds;

  @Option(names = "--server-setting", description = "extra server setting key=value (repeatable), e.g. election_timeout_ms=800")
  Map<String, String> serverSettings = new LinkedHashMap<>();

  @Option(names = "--check-timeout", defaultValue = "120", description = "seconds the linearizability checker may take (default ${DEFAULT-VALUE})")
  long checkTimeoutSeconds;

  @Option(names = "--report-dir", defaultValue = "target/jepsen", description = "where run folders go (default ${DEFAULT-VALUE})")
  Path reportDir;

  @Option(names = "--image", defaultValue = "choir:latest", description = "server image (default ${DEFAULT-VALUE})")
  String image;

  @Option(names = "--plaintext",
      description = "clients without TLS (the replicas accept plaintext clients by name); default: TLS with a"
          + " client certificate of the run's own CA, checked against an access file")
  boolean plaintext;

  @Option(names = "--cleanup", description = "remove every harness container and network (label choir.jepsen=true), then exit")
  boolean cleanup;

  @Override
  public Integer call() throws Exception {
    try {
      Docker.checkEnvironment();
    } catch (IllegalStateException e) {
      System.err.println("run.sh: " + e.getMessage());
      return 2;
    }
    if (cleanup) {
      System.out.println("removed " + Docker.removeStale(true) + " container(s)/network(s)");
      return 0;
    }
    long s = seed != null ? seed : new SecureRandom().nextLong();
    Map<String, Object> server = new LinkedHashMap<>();
    serverSettings.forEach((k, v) -> server.put(k, v.matches("-?\\d+") ? (Object) Long.parseLong(v) : v));
    Duration[] fault = range(faultSeconds, "--fault-seconds");
    Duration[] quiet = range(quietSeconds, "--quiet-seconds");
    JepsenRun.Options o;
    try {
      o = new JepsenRun.Options(nodes, workload, nemesis, Duration.ofSeconds(timeLimitSeconds), s,
          new RegisterWorkload.Settings(keys, threadsPerKey, opsPerKey, 10, rate, Duration.ofMillis(requestTimeoutMs)),
          new NemesisSchedule.Timing(quiet[0], quiet[1], fault[0], fault[1]), reportDir, image, server,
          Duration.ofSeconds(60), Duration.ofSeconds(checkTimeoutSeconds), String.join(" ", args), !plaintext);
    } catch (IllegalArgumentException e) {
      throw new CommandLine.ParameterException(new CommandLine(new Run()), e.getMessage(), e);
    }
    JepsenRun.Outcome outcome = JepsenRun.execute(o, System.out);
    return switch (outcome.verdict()) {
      case "true" -> 0;
      case "false" -> 1;
      default -> 3;
    };
  }

  private static Duration[] range(String text, String option) {
    String[] p = text.split("-");
    try {
      double lo = Double.parseDouble(p[0].trim());
      double hi = p.length > 1 ? Double.parseDouble(p[1].trim()) : lo;
      if (lo < 0 || hi < lo) {
        throw new NumberFormatException();
      }
      return new Duration[] {Duration.ofMillis((long) (lo * 1000)), Duration.ofMillis((long) (hi * 1000))};
    } catch (RuntimeException e) {
      throw new CommandLine.ParameterException(new CommandLine(new Run()), option + " must be SECONDS or MIN-MAX, got " + text);
    }
  }

  private static String[] args = new String[0];

  /** main runs the command and exits with its code. */
  public static void main(String[] argv) {
    System.setProperty("java.awt.headless", "true");
    args = argv.clone();
    int code = new CommandLine(new Run()).execute(argv);
    System.exit(code);
  }
}
