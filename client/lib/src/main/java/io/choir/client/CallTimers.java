package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import java.util.Random;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * CallTimers keeps the timers of the {@link Dispatcher}'s calls on the {@link ClientScheduler}: one
 * timer per call for its deadline and its current attempt's timeout, and the backoff before a retry.
 */
final class CallTimers {
  private final Dispatcher dispatcher;
  private final ClientScheduler scheduler;
  private final Router router;
  private final Random random;
  private final long attemptTimeoutNs;
  private final long backoffCapMs;

  CallTimers(Dispatcher dispatcher, ClientScheduler scheduler, Router router, Random random, long attemptTimeoutMs) {
    this.dispatcher = dispatcher;
    this.scheduler = scheduler;
    this.router = router;
    this.random = random;
    this.attemptTimeoutNs = TimeUnit.MILLISECONDS.toNanos(attemptTimeoutMs);
    this.backoffCapMs = Backoff.capMs(attemptTimeoutMs);
  }

  /** Schedules the next attempt of call after the backoff, unless the deadline comes first. */
  void scheduleRetry(Call call, Endpoint failed) {
    int retry;
    synchronized (call) {
      if (call.isFinished()) {
        return;
      }
      retry = ++call.retries;
    }
    long delayNs = TimeUnit.MILLISECONDS.toNanos(Backoff.delayMs(retry, backoffCapMs, random));
    if (scheduler.nanoTime() + delayNs >= call.deadlineNs) {
      return; // the deadline fires first and reports what happened so far
    }
    ClientScheduler.Timer task = schedule(call, () -> dispatcher.sendAttempt(call, router.retryTarget(failed)), delayNs);
    synchronized (call) {
      if (!call.isFinished()) {
        call.retryTask = task;
      } else if (task != null) {
        task.cancel();
      }
    }
  }

  /**
   * Sets the call's one timer to the earlier of its deadline and its current attempt's timeout. With no
   * attempt under way it is set one attempt timeout from now, which is never later than the timeout of
   * an attempt that starts later; so the timer may fire early (and is set again), never late.
   */
  void arm(Call call) {
    long nowNs = scheduler.nanoTime();
    long dueNs;
    synchronized (call) {
      if (call.isFinished()) {
        return;
      }
      dueNs = call.deadlineNs;
      if (call.pinned == null) {
        long attemptStart = call.attemptStartNs != 0 ? call.attemptStartNs : nowNs;
        dueNs = Math.min(dueNs, attemptStart + attemptTimeoutNs);
      }
    }
    ClientScheduler.Timer timer = schedule(call, () -> onTimer(call), Math.max(0, dueNs - nowNs));
    synchronized (call) {
      if (!call.isFinished()) {
        call.timer = timer;
        return;
      }
    }
    if (timer != null) {
      timer.cancel();
    }
  }

  private void onTimer(Call call) {
    if (call.isFinished()) {
      return;
    }
    long nowNs = scheduler.nanoTime();
    if (nowNs - call.deadlineNs >= 0) {
      dispatcher.onDeadline(call);
      return;
    }
    int timedOut = -1;
    synchronized (call) {
      if (call.pinned == null && call.attemptStartNs != 0 && nowNs - call.attemptStartNs >= attemptTimeoutNs) {
        timedOut = call.attempt;
      }
    }
    if (timedOut >= 0) {
      dispatcher.onAttemptTimeout(call, timedOut, nowNs);
    }
    arm(call);
  }

  private ClientScheduler.Timer schedule(Call call, Runnable task, long delayNs) {
    try {
      return scheduler.schedule(task, delayNs);
    } catch (RejectedExecutionException e) {
      dispatcher.finish(call, null, new UnavailableException("client closed", e));
      return null;
    }
  }
}
