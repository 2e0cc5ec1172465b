package io.choir.bench;

import io.choir.bench.engine.BenchOptions;
import io.choir.bench.engine.BenchRunner;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.maintenance.StatusResponse;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * EtcdBench runs the benchmark of `choir bench` (same engine, same flags) against an etcd cluster:
 * {@code java -cp ... io.choir.bench.EtcdBench --endpoints http://127.0.0.1:2379 --clients 64 ...}.
 */
@Command(name = "etcd-bench", mixinStandardHelpOptions = true,
    description = "Closed-loop benchmark of etcd's KV API (jetcd), with the engine and flags of `choir bench`.")
public final class EtcdBench implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;
  @Mixin BenchOptions options = new BenchOptions();

  @Option(names = {"-e", "--endpoints"}, paramLabel = "URL,...", defaultValue = "http://127.0.0.1:2379",
      description = "etcd client URLs. Default: ${DEFAULT-VALUE}")
  String endpoints;

  @Option(names = "--timeout-ms", paramLabel = "MS", defaultValue = "10000",
      description = "Budget of one operation. Default: ${DEFAULT-VALUE}")
  long timeoutMs;

  @Option(names = "--connections", paramLabel = "N",
      description = "jetcd clients (gRPC channels) the workers share (default: min(clients, 4)).")
  Integer connections;

  @Option(names = "--leader-only", description = "Send everything to the current leader's endpoint"
      + " (no forwarding by followers).")
  boolean leaderOnly;

  @Option(names = "--serializable", description = "Serializable (local, possibly stale) reads instead of linearizable ones.")
  boolean serializable;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    List<String> list = Arrays.stream(endpoints.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    if (leaderOnly) {
      list = List.of(leader(list));
      err.println("etcd-bench: leader is " + list.get(0));
    }
    int conns = connections != null ? connections : Math.max(1, Math.min(options.clients, 4));
    if (conns < 1) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--connections must be at least 1");
    }
    return BenchRunner.run(options, new EtcdDriver(list, conns, Duration.ofMillis(timeoutMs), serializable), out, err);
  }

  /** The endpoint of the member that is leader, asked of every endpoint in turn. */
  static String leader(List<String> endpoints) throws Exception {
    for (String e : endpoints) {
      try (Client c = Client.builder().endpoints(e).build()) {
        StatusResponse s = c.getMaintenanceClient().statusMember(e).get(5, TimeUnit.SECONDS);
        if (s.getLeader() == s.getHeader().getMemberId()) {
          return e;
        }
      } catch (ExecutionException | TimeoutException ex) {
        // ask the next one
      }
    }
    throw new IllegalStateException("no endpoint of " + endpoints + " is the leader");
  }

  public static void main(String[] args) {
    System.setProperty("java.awt.headless", "true");
    System.exit(new CommandLine(new EtcdBench())
        .setExitCodeExceptionMapper(t -> t instanceof CommandLine.ParameterException ? 2 : 4)
        .execute(args));
  }
}
