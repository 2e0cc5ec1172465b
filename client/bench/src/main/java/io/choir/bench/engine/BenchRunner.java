package io.choir.bench.engine;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;

/** BenchRunner runs one driver with the shared options and prints and writes the result. */
public final class BenchRunner {
  /** Exit codes as the choir command has them. */
  public static final int EXIT_OK = 0;
  public static final int EXIT_USAGE = 2;
  public static final int EXIT_UNAVAILABLE = 3;
  public static final int EXIT_ERROR = 4;

  private BenchRunner() {}

  /**
   * Runs the workload against driver (which it closes), prints the summary (or the JSON with --json)
   * and writes the report folder.
   *
   * @return 0, or 3 when no operation succeeded, 4 when the report could not be written
   */
  public static int run(BenchOptions options, BenchDriver driver, PrintWriter out, PrintWriter err) {
    BenchConfig config;
    try {
      config = options.config();
    } catch (IllegalArgumentException e) {
      err.println("bench: " + e.getMessage());
      err.flush();
      closeQuietly(driver, err);
      return EXIT_USAGE;
    }
    err.printf("bench: %s %s, %d clients, %d s + %d s warmup, %d-byte values, write ratio %s, %d keys, seed %d%n",
        driver.name(), driver.describe(), config.clients(), options.duration, options.warmup,
        config.valueSize(), config.writeRatio(), config.keys(), config.seed());
    err.flush();
    ProgressLine progress = new ProgressLine(err, System.console() != null && !options.json);
    BenchResult result;
    try {
      result = BenchEngine.run(driver, config, options.noProgress ? null : progress);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      err.println("bench: interrupted");
      return EXIT_ERROR;
    } finally {
      progress.finish();
      closeQuietly(driver, err);
    }
    Path dir = options.outDir(driver.name());
    int code = result.ops() == 0 ? EXIT_UNAVAILABLE : EXIT_OK;
    try {
      BenchReport.write(result, dir);
    } catch (IOException e) {
      err.println("bench: cannot write " + dir + ": " + e.getMessage());
      code = EXIT_ERROR;
    }
    if (options.json) {
      err.print(result.summary());
      out.println(BenchReport.json(result));
    } else {
      out.print(result.summary());
    }
    err.println("bench: results in " + dir.toAbsolutePath().normalize()
        + " (result.json, latency.png, throughput.png, index.html)");
    out.flush();
    err.flush();
    return code;
  }

  private static void closeQuietly(BenchDriver driver, PrintWriter err) {
    try {
      driver.close();
    } catch (RuntimeException e) {
      err.println("bench: closing " + driver.name() + ": " + e);
    }
  }
}
