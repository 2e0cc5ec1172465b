package io.choir.client;

import io.choir.client.spi.ClientScheduler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * CatchUp waits, on the client's own clock and timers, for a new learner to catch up with the
 * primary: it reads the membership every {@link #POLL_INTERVAL_MS} and is done when the learner's
 * acked op has reached the primary's op of that answer (and the op of the learner's AddLearner entry),
 * less at most {@link #SLACK_OPS}, or the learner is a voter already. It gives up with {@link LearnerNotCaughtUpException} when the
 * wait's deadline passes, or at once when the membership cannot be read at all (no permission, a
 * server that does not know the request). Acked ops come from the primary only; the polls go where the
 * client's writes go, which after the AddLearner write is the primary.
 */
final class CatchUp {
  private static final Logger log = LoggerFactory.getLogger(CatchUp.class);

  /** Time between two reads of the membership. */
  static final long POLL_INTERVAL_MS = 200;

  /**
   * The most ops a learner may be behind the primary's op and count as caught up (a few still in
   * flight under load), and never more than a 32nd of the log: less than the primary's own check
   * allows before a promotion (a batch, and a 16th of the log), so a learner caught up here is not
   * refused as behind there.
   */
  static final long SLACK_OPS = 16;

  /** The learner's acked op that counts as caught up with target. */
  static long caughtUpAt(long target) {
    return target - Math.min(SLACK_OPS, target / 32);
  }

  private final ClientScheduler scheduler;
  private final Supplier<CompletableFuture<Membership>> poll;
  private final int learnerId;
  private final long floorOp;
  private final Consumer<CatchUpProgress> progress;
  private final long startNs;
  private final long deadlineNs;
  private final long timeoutMs;
  private final String notDone;
  private final CompletableFuture<Membership> done = new CompletableFuture<>();
  // Written by one poll's completion at a time (each poll starts after the last one ended).
  private volatile Membership last;
  private volatile long lastAcked;
  private volatile long lastTarget;
  private volatile Throwable lastError;

  private CatchUp(ClientScheduler scheduler, Supplier<CompletableFuture<Membership>> poll, Membership added,
      int learnerId, long timeoutMs, Consumer<CatchUpProgress> progress, String notDone) {
    this.notDone = notDone;
    this.scheduler = scheduler;
    this.poll = poll;
    this.learnerId = learnerId;
    this.floorOp = added.op();
    this.progress = progress;
    this.timeoutMs = timeoutMs;
    this.startNs = scheduler.nanoTime();
    this.deadlineNs = startNs + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    this.last = added;
    this.lastTarget = added.op();
  }

  /**
   * Waits for learnerId to catch up.
   *
   * @param added the membership the AddLearner answered (its op is the entry's)
   * @param notDone what was not done when the wait gives up ("it was not promoted: ...")
   * @return the membership of the poll that saw it caught up
   */
  static CompletableFuture<Membership> await(ClientScheduler scheduler, Supplier<CompletableFuture<Membership>> poll,
      Membership added, int learnerId, long timeoutMs, Consumer<CatchUpProgress> progress, String notDone) {
    CatchUp c = new CatchUp(scheduler, poll, added, learnerId, timeoutMs, progress, notDone);
    c.pollOnce();
    return c.done;
  }

  private void pollOnce() {
    CompletableFuture<Membership> f;
    try {
      f = poll.get();
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    f.whenComplete(this::onAnswer);
  }

  private void onAnswer(Membership m, Throwable error) {
    long now = scheduler.nanoTime();
    long elapsedMs = TimeUnit.NANOSECONDS.toMillis(now - startNs);
    if (error != null) {
      Throwable cause = Futures.unwrap(error);
      lastError = cause;
      if (cause instanceof PermissionDeniedException || cause instanceof InvalidRequestException
          || cause instanceof TlsException) {
        giveUp("the membership could not be read (" + cause.getMessage() + ")");
        return;
      }
    } else {
      last = m;
      Member learner = m.member(learnerId).orElse(null);
      long acked = learner == null ? 0 : learner.ackedOp();
      long target = Math.max(floorOp, m.op());
      boolean caughtUp = learner != null
          && (learner.role() == MemberRole.VOTER || (acked > 0 && acked >= caughtUpAt(target)));
      lastAcked = acked;
      lastTarget = target;
      report(new CatchUpProgress(learnerId, acked, target, elapsedMs, caughtUp));
      if (caughtUp) {
        log.atInfo().setMessage("learner caught up").addKeyValue("learner", learnerId).addKeyValue("acked_op", acked)
            .addKeyValue("target_op", target).addKeyValue("elapsed_ms", elapsedMs).log();
        done.complete(m);
        return;
      }
    }
    if (now >= deadlineNs) {
      giveUp("it had not caught up within " + timeoutMs + " ms");
      return;
    }
    // The last poll is at the deadline itself, so the wait is never cut short by the interval.
    long delayNs = Math.min(TimeUnit.MILLISECONDS.toNanos(POLL_INTERVAL_MS), deadlineNs - now);
    try {
      scheduler.schedule(this::pollOnce, delayNs);
    } catch (RejectedExecutionException e) {
      lastError = e;
      giveUp("the client was closed while it caught up");
    }
  }

  private void report(CatchUpProgress p) {
    if (progress == null) {
      return;
    }
    try {
      progress.accept(p);
    } catch (RuntimeException e) {
      log.atWarn().setMessage("the catch-up progress callback failed").addKeyValue("learner", learnerId)
          .setCause(e).log();
    }
  }

  private void giveUp(String why) {
    done.completeExceptionally(new LearnerNotCaughtUpException("learner " + learnerId + " was added, but " + why
        + " (acked op " + lastAcked + " of " + lastTarget + "); " + notDone, learnerId, lastAcked, lastTarget, last, lastError));
  }
}
