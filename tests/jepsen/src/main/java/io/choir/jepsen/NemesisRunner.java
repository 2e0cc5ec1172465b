package io.choir.jepsen;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * NemesisRunner executes a {@link NemesisSchedule} against a cluster on its own thread, recording each
 * fault's start and stop (and any fault that could not be injected) in the history.
 */
public final class NemesisRunner {
  private static final Logger log = LoggerFactory.getLogger(NemesisRunner.class);

  private final Cluster cluster;
  private final Recorder recorder;
  private final NemesisSchedule schedule;
  private final Map<String, Nemesis> faults;
  private final Thread thread;
  private volatile boolean stopping;
  private long startNanos;

  /** NemesisRunner for {@code schedule}, whose fault names must all be in {@code faults}. */
  public NemesisRunner(Cluster cluster, Recorder recorder, NemesisSchedule schedule, List<Nemesis> faults) {
    this.cluster = cluster;
    this.recorder = recorder;
    this.schedule = schedule;
    this.faults = faults.stream().collect(Collectors.toMap(Nemesis::name, n -> n, (a, b) -> a));
    for (NemesisSchedule.Step s : schedule.steps()) {
      if (!this.faults.containsKey(s.fault())) {
        throw new IllegalArgumentException("schedule names " + s.fault() + ", which is not among the faults");
      }
    }
    this.thread = new Thread(this::run, "nemesis");
    this.thread.setDaemon(true);
  }

  /** start begins the schedule now (its times count from here). */
  public void start() {
    startNanos = System.nanoTime();
    thread.start();
  }

  /** stop ends the schedule (within 100 ms): the fault in progress, if any, is stopped; waits for the thread. */
  public void stop() throws InterruptedException {
    stopping = true; // not an interrupt: it could break a Docker call half-way
    thread.join(TimeUnit.SECONDS.toMillis(120));
  }

  private void run() {
    for (NemesisSchedule.Step step : schedule.steps()) {
      if (!sleepUntil(step.atMillis())) {
        return;
      }
      Nemesis nemesis = faults.get(step.fault());
      Nemesis.Active active;
      try {
        active = nemesis.start(cluster, new Random(step.seed()));
      } catch (Exception e) {
        log.warn("nemesis {} could not start: {}", step.fault(), e.toString());
        recorder.nemesis(NemesisEvent.ERROR, step.fault(), List.of(), "could not start: " + e);
        continue;
      }
      recorder.nemesis(NemesisEvent.START, step.fault(), active.nodes(), active.detail());
      log.info("nemesis start {} on {}: {}", step.fault(), active.nodes(), active.detail());
      sleepUntil(step.atMillis() + step.holdMillis());
      try {
        active.stop();
        String detail = stopDetail(active);
        recorder.nemesis(NemesisEvent.STOP, step.fault(), active.nodes(), detail);
        log.info("nemesis stop {} on {}: {}", step.fault(), active.nodes(), detail);
      } catch (Exception e) {
        log.warn("nemesis {} could not stop: {}", step.fault(), e.toString());
        recorder.nemesis(NemesisEvent.ERROR, step.fault(), active.nodes(), "could not stop (the final heal will): " + e);
      }
      if (stopping) {
        return;
      }
    }
  }

  private static String stopDetail(Nemesis.Active active) {
    try {
      String d = active.stopDetail();
      return d == null || d.isBlank() ? "stopped" : d;
    } catch (RuntimeException e) {
      return "stopped (no detail: " + e + ")";
    }
  }

  /** sleepUntil sleeps until {@code offsetMillis} after the start; false when stopped first. */
  private boolean sleepUntil(long offsetMillis) {
    long until = startNanos + TimeUnit.MILLISECONDS.toNanos(offsetMillis);
    while (!stopping) {
      long left = until - System.nanoTime();
      if (left <= 0) {
        return true;
      }
      try {
        TimeUnit.NANOSECONDS.sleep(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return false;
  }
}
