package io.choir.bench.engine;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * ProgressLine prints one line per tick on stderr: elapsed time, phase, ops/s, p50 and p99 of the
 * interval, errors and operations in flight. On a terminal it rewrites one line in place.
 */
public final class ProgressLine implements BenchEngine.Listener {
  private final PrintWriter err;
  private final boolean inPlace;

  public ProgressLine(PrintWriter err, boolean inPlace) {
    this.err = err;
    this.inPlace = inPlace;
  }

  static String format(BenchEngine.Tick t) {
    boolean empty = t.histogram().getTotalCount() == 0;
    return String.format(Locale.ROOT, "[%5.0fs] %-7s %,9.0f ops/s  p50 %8.3f ms  p99 %8.3f ms  errors %d  in flight %d",
        t.elapsedSeconds(), t.warmup() ? "warmup" : "measure", t.opsPerSecond(),
        empty ? 0.0 : t.histogram().getValueAtPercentile(50) / 1000.0,
        empty ? 0.0 : t.histogram().getValueAtPercentile(99) / 1000.0, t.errors(), t.inFlight());
  }

  @Override
  public void onTick(BenchEngine.Tick t) {
    if (inPlace) {
      err.print("\r" + format(t) + "   ");
    } else {
      err.println(format(t));
    }
    err.flush();
  }

  /** Ends the line being rewritten. */
  public void finish() {
    if (inPlace) {
      err.println();
      err.flush();
    }
  }
}
