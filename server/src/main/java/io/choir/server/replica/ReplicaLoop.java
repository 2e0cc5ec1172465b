package io.choir.server.replica;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.Effects;
import io.choir.server.core.Event;
import io.choir.server.core.ReplicaCore;
import io.choir.server.metrics.LoopMetrics;
import io.choir.server.net.LeaseReadGate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ReplicaLoop is the one thread that owns the {@link ReplicaCore} (STYLE.md habit 3), through the
 * {@link EffectExecutor} it shares with the simulator. Other threads hand it events through its
 * {@link ReplicaInbox}: Netty's event loops client requests (bounded: event_queue_capacity queued
 * requests at most, beyond that the edge answers BUSY) and peer messages (bounded the same way), the
 * storage stage Persisted and Applied events (bounded by the flow-control window, never dropped). It
 * drains a burst of events, steps each, steps a Tick and carries out the effects (EffectExecutor's
 * burst policy); with nothing queued it waits for the core's next timer, at most 100 ms.
 */
final class ReplicaLoop implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ReplicaLoop.class);
  private static final long MAX_WAIT_NS = TimeUnit.MILLISECONDS.toNanos(100);

  private final ReplicaInbox inbox;
  private final EffectExecutor executor;
  private final ReplicaCore core;
  private final Function<Request, Response> statusHandler;
  private final LongSupplier clock;
  private final LoopMetrics metrics;
  private final Thread thread;
  private volatile boolean running = true;
  private volatile String unavailableReason;
  private volatile boolean idle = true;
  private final LeaseReadGate leaseReads;

  ReplicaLoop(ReplicaInbox inbox, EffectExecutor executor, Function<Request, Response> statusHandler,
      LongSupplier clock, LoopMetrics metrics) {
    this(inbox, executor, statusHandler, clock, metrics, null);
  }

  /**
   * Like the constructor above, publishing the core's lease read windows to leaseReads (null: none) at
   * the end of every burst and telling the core, at the start of the next, how many reads it served.
   */
  ReplicaLoop(ReplicaInbox inbox, EffectExecutor executor, Function<Request, Response> statusHandler,
      LongSupplier clock, LoopMetrics metrics, LeaseReadGate leaseReads) {
    this.leaseReads = leaseReads;
    if (leaseReads != null) {
      executor.publishLeaseWindows(leaseReads::publish);
    }
    this.inbox = inbox;
    this.metrics = metrics;
    this.executor = executor;
    this.core = executor.core();
    this.statusHandler = statusHandler;
    this.clock = clock;
    this.thread = new Thread(this::run, "choir-replica");
    this.thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  /** From now on every request is answered UNAVAILABLE with reason (shutdown or a fatal error). */
  void refuseAll(String reason) {
    unavailableReason = reason;
    if (leaseReads != null) {
      leaseReads.close();
    }
  }

  private void run() {
    List<Object> burst = new ArrayList<>();
    // Apply whatever the log holds beyond the applied number (restart) before serving.
    executor.begin();
    long nextTickNs = executor.end(clock.getAsLong());
    while (running) {
      try {
        long now = clock.getAsLong();
        long waitNs = nextTickNs == Long.MAX_VALUE ? MAX_WAIT_NS : nextTickNs - now;
        Object first = inbox.poll(waitNs);
        if (first != null) {
          burst.add(first);
          inbox.drainTo(burst, EffectExecutor.MAX_BURST - 1);
        }
        now = clock.getAsLong();
        Effects effects = executor.begin();
        long servedOutside = leaseReads != null ? leaseReads.takeServed() : 0;
        long sequentialOutside = leaseReads != null ? leaseReads.takeSequentialServed() : 0;
        if (servedOutside > 0 || sequentialOutside > 0) {
          executor.step(new Event.LeaseReadsServed(servedOutside, sequentialOutside), now);
        }
        for (Object o : burst) {
          inbox.taken(o);
          if (o instanceof ReplicaInbox.Incoming in) {
            handleRequest(in, now, effects);
          } else if (o instanceof ReplicaInbox.OnLoop task) {
            runTask(task);
          } else {
            if (o instanceof Event.Peer p) {
              metrics.peerMessage(p.from(), now);
            }
            executor.step((Event) o, now);
          }
        }
        burst.clear();
        nextTickNs = executor.end(now);
        inbox.publishView(core.view());
        metrics.afterBurst(core, now);
        idle = core.appliedOp() == core.lastOp() && core.queuedWrites() == 0 && core.pendingReads() == 0;
        logPeerRejections(now);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      } catch (RuntimeException e) {
        // A broken invariant in the core: stop rather than risk diverging state (fail-stop).
        log.atError().setCause(e).log("replica core failed; refusing all requests");
        refuseAll("replica failed: " + e.getMessage());
        running = false;
      }
    }
  }

  /** Runs a task handed to the loop; its failure is its own, never the core's. */
  private static void runTask(ReplicaInbox.OnLoop task) {
    try {
      task.task().run();
    } catch (RuntimeException e) {
      log.atWarn().setCause(e).log("a task run on the replica loop failed");
    }
  }

  /** At most one log line per this interval about peer messages the core's checks dropped (issue 10). */
  private static final long PEER_REJECTION_LOG_INTERVAL_NS = TimeUnit.SECONDS.toNanos(10);
  private long peerRejectionsLogged;
  private long peerRejectionLoggedNs = Long.MIN_VALUE / 2;

  private void logPeerRejections(long nowNs) {
    long rejected = core.counters().peerRejected;
    if (rejected > peerRejectionsLogged && nowNs - peerRejectionLoggedNs >= PEER_REJECTION_LOG_INTERVAL_NS) {
      log.atWarn().addKeyValue("dropped", rejected - peerRejectionsLogged).addKeyValue("last", core.lastPeerRejection())
          .log("peer messages failed the core's checks and were dropped (status: peer_rejected_*)");
      peerRejectionsLogged = rejected;
      peerRejectionLoggedNs = nowNs;
    }
  }

  private void handleRequest(ReplicaInbox.Incoming in, long now, Effects effects) {
    String reason = unavailableReason;
    if (reason != null) {
      effects.reply(in.connectionId(), Response.newBuilder()
          .setRequestId(in.request().getRequestId()).setStatus(Status.UNAVAILABLE).setError(reason).build());
      return;
    }
    if (in.request().getOpCase() == Request.OpCase.STATUS) {
      effects.reply(in.connectionId(), statusHandler.apply(in.request()));
      return;
    }
    executor.step(new Event.ClientRequest(in.connectionId(), in.request()), now);
  }

  /** Why every request is refused (shutdown, a fatal error), or null while the loop serves (any thread). */
  String unavailableReason() {
    return unavailableReason;
  }

  /** True when, after the last burst, every admitted write was applied and no read waits. */
  boolean idle() {
    return idle && inbox.isEmpty();
  }

  /** Stops the loop thread (after the current burst). */
  @Override
  public void close() {
    running = false;
    if (leaseReads != null) {
      leaseReads.close();
    }
    thread.interrupt();
    try {
      thread.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
