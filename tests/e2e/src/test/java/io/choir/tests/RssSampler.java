package io.choir.tests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * RssSampler reads the resident memory (VmRSS of /proc/PID/status) of some processes every
 * {@link #PERIOD_MS} on its own thread and keeps each one's peak, so a test can bound what an attack
 * made a replica hold. A process that is gone is skipped.
 */
final class RssSampler implements AutoCloseable {
  /** Sampling period: an allocation burst that lasts less than this can be missed, which only favours the server. */
  static final long PERIOD_MS = 50;

  private final List<Long> pids;
  private final Map<Long, Long> peakKib = new ConcurrentHashMap<>();
  private final Thread thread;
  private volatile boolean running = true;

  RssSampler(List<Long> pids) {
    this.pids = List.copyOf(pids);
    this.thread = new Thread(this::run, "rss-sampler");
    this.thread.setDaemon(true);
    this.thread.start();
  }

  private void run() {
    while (running) {
      for (long pid : pids) {
        long kib = rssKib(pid);
        if (kib > 0) {
          peakKib.merge(pid, kib, Math::max);
        }
      }
      try {
        TimeUnit.MILLISECONDS.sleep(PERIOD_MS); // sampling: /proc gives no event on a change of RSS
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  /** A process's VmRSS in KiB, or 0 when it is gone or does not say. */
  static long rssKib(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(pid), "status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
      }
    } catch (IOException | NumberFormatException gone) {
      return 0;
    }
    return 0;
  }

  /** Each process's peak RSS in MiB so far, in the order given. */
  Map<Long, Long> peakMib() {
    Map<Long, Long> out = new LinkedHashMap<>();
    for (long pid : pids) {
      out.put(pid, peakKib.getOrDefault(pid, 0L) / 1024);
    }
    return out;
  }

  @Override
  public void close() {
    running = false;
    thread.interrupt();
    try {
      thread.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
