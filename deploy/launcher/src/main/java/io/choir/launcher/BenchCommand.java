package io.choir.launcher;

import io.choir.bench.engine.BenchOptions;
import io.choir.bench.engine.BenchRunner;
import io.choir.bench.engine.ChoirDriver;
import io.choir.cli.SecurityOptions;
import io.choir.client.ReadConsistency;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * BenchCommand is `choir bench`: a closed-loop load against a cluster with HdrHistogram latencies, a
 * progress line, a text summary and a report folder (result.json, latency.png, throughput.png,
 * index.html).
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = {"Closed-loop benchmark: N clients each issue their next put/get when the previous one"
        + " completes; prints throughput and p50/p90/p99/p99.9 and writes result.json and plots."})
final class BenchCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;
  @Mixin BenchOptions options = new BenchOptions();
  @Mixin SecurityOptions security = new SecurityOptions();

  @Option(names = {"-e", "--endpoints"}, paramLabel = "HOST:PORT,...",
      description = "Replica client addresses (default: $CHOIR_ENDPOINTS or 127.0.0.1:7301).")
  String endpoints;

  @Option(names = "--timeout-ms", paramLabel = "MS", defaultValue = "10000",
      description = "Budget of one operation, retries included. Default: ${DEFAULT-VALUE}")
  long timeoutMs;

  @Option(names = "--connections", paramLabel = "N",
      description = "ChoirClient instances (connections per replica) the clients share (default: min(clients, 4)).")
  Integer connections;

  @Option(names = "--sequential", description = "Sequential reads instead of linearizable ones.")
  boolean sequential;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    String e = endpoints;
    if (e == null || e.isBlank()) {
      e = System.getenv().getOrDefault("CHOIR_ENDPOINTS", "127.0.0.1:7301");
    }
    List<String> list = Arrays.stream(e.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    int conns = connections != null ? connections : Math.max(1, Math.min(options.clients, 4));
    if (conns < 1 || options.clients < 1) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--clients and --connections must be at least 1");
    }
    int perClient = Math.max(64, 2 * ((options.clients + conns - 1) / conns));
    ChoirDriver driver;
    try {
      driver = new ChoirDriver(list, conns, perClient, Duration.ofMillis(timeoutMs),
          sequential ? ReadConsistency.SEQUENTIAL : ReadConsistency.LINEARIZABLE, security::apply, security.tls());
    } catch (IllegalArgumentException ex) {
      err.println("choir bench: " + ex.getMessage());
      err.flush();
      return BenchRunner.EXIT_USAGE;
    }
    return BenchRunner.run(options, driver, out, err);
  }
}
