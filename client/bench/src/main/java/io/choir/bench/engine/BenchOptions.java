package io.choir.bench.engine;

import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import picocli.CommandLine.Option;

/**
 * BenchOptions are the workload and output flags every benchmark driver shares (picocli mixin), so
 * `choir bench` and the etcd driver take the same command line.
 */
public final class BenchOptions {
  @Option(names = {"-c", "--clients"}, paramLabel = "N", defaultValue = "16",
      description = "Closed-loop clients (operations in flight). Default: ${DEFAULT-VALUE}")
  public int clients;

  @Option(names = {"-d", "--duration"}, paramLabel = "S", defaultValue = "30",
      description = "Measured seconds. Default: ${DEFAULT-VALUE}")
  public int duration;

  @Option(names = "--warmup", paramLabel = "S", defaultValue = "5",
      description = "Seconds run first and left out of the results. Default: ${DEFAULT-VALUE}")
  public int warmup;

  @Option(names = "--value-size", paramLabel = "B", defaultValue = "100",
      description = "Bytes per written value. Default: ${DEFAULT-VALUE}")
  public int valueSize;

  @Option(names = "--write-ratio", paramLabel = "R", defaultValue = "1.0",
      description = "Share of writes, 0..1 (the rest are reads). Default: ${DEFAULT-VALUE}")
  public double writeRatio;

  @Option(names = "--keys", paramLabel = "N", defaultValue = "100000",
      description = "Size of the key space (keys drawn uniformly). Default: ${DEFAULT-VALUE}")
  public int keys;

  @Option(names = "--seed", paramLabel = "N",
      description = "Seed of the key and value choice (default: random, printed).")
  public Long seed;

  @Option(names = "--out", paramLabel = "DIR",
      description = "Folder for result.json, latency.png, throughput.png, index.html"
          + " (default: bench-results/<timestamp>-<target>).")
  public Path out;

  @Option(names = "--rate", paramLabel = "OPS", defaultValue = "0",
      description = "Pace all clients together to OPS operations per second (latency from each one's"
          + " scheduled time); 0: closed loop, as fast as answers come. Default: ${DEFAULT-VALUE}")
  public double rate;

  @Option(names = "--tick", paramLabel = "S", defaultValue = "1",
      description = "Seconds per point of the time series and per progress line (each line's p50 and p99"
          + " are of that interval's operations: --tick 60 gives the p99 of every minute)."
          + " Default: ${DEFAULT-VALUE}")
  public int tick = 1;

  @Option(names = "--json", description = "Print the result JSON on stdout (the summary goes to stderr).")
  public boolean json;

  @Option(names = "--no-progress", description = "No progress line on stderr.")
  public boolean noProgress;

  /** The workload, with the seed chosen now when none was given. */
  public BenchConfig config() {
    if (seed == null) {
      seed = System.nanoTime() & 0xFFFFFFFFL;
    }
    return new BenchConfig(clients, Duration.ofSeconds(duration), Duration.ofSeconds(warmup), valueSize,
        writeRatio, keys, seed, Duration.ofSeconds(tick)).withRate(rate);
  }

  /** The output folder: --out, or bench-results/yyyyMMdd-HHmmss-target. */
  public Path outDir(String target) {
    if (out != null) {
      return out;
    }
    return Path.of("bench-results",
        LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")) + "-" + target);
  }
}
