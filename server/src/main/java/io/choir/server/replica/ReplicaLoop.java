package io.choir.server.replica;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.Effects;
import io.choir.server.core.Event;
import io.choir.server.core.ReplicaCore;
import io.choir.server.net.ClientConnections;
import io.choir.server.net.PeerSink;
import io.choir.server.net.PeerTransport;
import io.choir.server.net.RequestSink;
import io.choir.server.storage.Storage;
import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ReplicaLoop is the one thread that owns the {@link ReplicaCore} (STYLE.md habit 3). Other threads hand
 * it events: Netty's event loops client requests (bounded: event_queue_capacity queued requests at
 * most, beyond that the edge answers BUSY), the storage stage Persisted and Applied events (bounded by
 * the flow-control window, never dropped). It drains a burst of events, steps each, steps a Tick, then
 * carries out the effects: storage tasks, reads on the read pool, replies grouped per connection.
 */
final class ReplicaLoop implements RequestSink, PeerSink, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ReplicaLoop.class);
  private static final int MAX_BURST = 4096;

  private final ReplicaCore core;
  private final StorageStage storage;
  private final ClientConnections connections;
  private final ExecutorService readPool;
  private final Function<Request, Response> reader;
  private final Function<Request, Response> statusHandler;
  private final LongSupplier clock;
  private final int eventQueueCapacity;
  private final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();
  private final AtomicInteger queuedRequests = new AtomicInteger();
  private final AtomicInteger queuedPeerMessages = new AtomicInteger();
  private volatile PeerTransport transport;
  private volatile Storage logReader;
  private volatile int maxDatagramBytes = 1400;
  private volatile java.util.function.IntConsumer stateTransfer = from -> { };
  /** Durably records the view (synced, on this thread) and the last normal view (on the storage thread). */
  private volatile java.util.function.LongConsumer viewStore = v -> { };
  private volatile LastNormalViewStore lastNormalViewStore = (v, caughtUp) -> { };

  /** Records the last normal view and, when caughtUp, clears the catching-up marker in the same write. */
  interface LastNormalViewStore {
    void store(long lastNormalView, boolean caughtUp);
  }

  void setViewStores(java.util.function.LongConsumer view, LastNormalViewStore lastNormalView) {
    this.viewStore = view;
    this.lastNormalViewStore = lastNormalView;
  }
  private final Thread thread;
  private volatile boolean running = true;
  private volatile String unavailableReason;
  private volatile boolean idle = true;
  private volatile long view;

  private record Incoming(long connectionId, Request request) {}

  ReplicaLoop(ReplicaCore core, StorageStage storage, ClientConnections connections,
      ExecutorService readPool, Function<Request, Response> reader,
      Function<Request, Response> statusHandler, LongSupplier clock, int eventQueueCapacity) {
    this.core = core;
    this.storage = storage;
    this.connections = connections;
    this.readPool = readPool;
    this.reader = reader;
    this.statusHandler = statusHandler;
    this.clock = clock;
    this.eventQueueCapacity = eventQueueCapacity;
    this.thread = new Thread(this::run, "choir-replica");
    this.thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  @Override
  public boolean offer(long connectionId, Request request) {
    if (queuedRequests.incrementAndGet() > eventQueueCapacity) {
      queuedRequests.decrementAndGet();
      return false;
    }
    queue.add(new Incoming(connectionId, request));
    return true;
  }

  /** Connects the peer side: where sends go, where resends are read from, who fetches state. */
  void attachPeers(PeerTransport transport, Storage logReader, int maxDatagramBytes,
      java.util.function.IntConsumer stateTransfer) {
    this.transport = transport;
    this.logReader = logReader;
    this.maxDatagramBytes = maxDatagramBytes;
    this.stateTransfer = stateTransfer;
  }

  @Override
  public boolean offerPeer(int from, long view, MessageType type, MessageLite body) {
    if (queuedPeerMessages.incrementAndGet() > eventQueueCapacity) {
      queuedPeerMessages.decrementAndGet();
      return false;
    }
    queue.add(new Event.Peer(from, view, type, body));
    return true;
  }

  /** Hands an internal event (from the storage stage) to the loop; never refused. */
  void post(Event event) {
    queue.add(event);
  }

  /** From now on every request is answered UNAVAILABLE with reason (shutdown or a fatal error). */
  void refuseAll(String reason) {
    unavailableReason = reason;
  }

  private void run() {
    Effects effects = new Effects();
    List<Object> burst = new ArrayList<>();
    long nextTickNs = Long.MAX_VALUE;
    // Apply whatever the log holds beyond the applied number (restart) before serving.
    core.step(new Event.Tick(), clock.getAsLong(), effects);
    nextTickNs = execute(effects);
    while (running) {
      try {
        long now = clock.getAsLong();
        long waitNs = nextTickNs == Long.MAX_VALUE ? TimeUnit.MILLISECONDS.toNanos(100) : nextTickNs - now;
        Object first = waitNs > 0 ? queue.poll(waitNs, TimeUnit.NANOSECONDS) : queue.poll();
        if (first != null) {
          burst.add(first);
          queue.drainTo(burst, MAX_BURST - 1);
        }
        now = clock.getAsLong();
        effects.clear();
        for (Object o : burst) {
          if (o instanceof Incoming in) {
            queuedRequests.decrementAndGet();
            handleRequest(in, now, effects);
          } else {
            if (o instanceof Event.Peer) {
              queuedPeerMessages.decrementAndGet();
            }
            core.step((Event) o, now, effects);
          }
        }
        burst.clear();
        core.step(new Event.Tick(), now, effects);
        nextTickNs = execute(effects);
        view = core.view();
        idle = core.appliedOp() == core.lastOp() && core.queuedWrites() == 0 && core.pendingReads() == 0;
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

  private void handleRequest(Incoming in, long now, Effects effects) {
    String reason = unavailableReason;
    if (reason != null) {
      effects.replies.add(new Effects.Reply(in.connectionId(), Response.newBuilder()
          .setRequestId(in.request().getRequestId()).setStatus(Status.UNAVAILABLE).setError(reason).build()));
      return;
    }
    if (in.request().getOpCase() == Request.OpCase.STATUS) {
      effects.replies.add(new Effects.Reply(in.connectionId(), statusHandler.apply(in.request())));
      return;
    }
    core.step(new Event.ClientRequest(in.connectionId(), in.request()), now, effects);
  }

  private long execute(Effects effects) {
    if (effects.persistView) {
      viewStore.accept(effects.view); // synced, before any message of the view
    }
    if (effects.truncateLogAfter >= 0) {
      storage.truncateLogAfter(effects.truncateLogAfter);
    }
    if (!effects.persist.isEmpty()) {
      storage.persist(effects.persist, effects.logEpoch);
    }
    if (effects.persistLastNormalView) {
      long lnv = effects.lastNormalView;
      boolean caughtUp = effects.caughtUp;
      storage.run(() -> lastNormalViewStore.store(lnv, caughtUp)); // after the log writes it vouches for
    }
    PeerTransport t = transport;
    if (t != null) {
      for (Effects.Send send : effects.sends) {
        t.send(send.to(), send.view(), send.type(), send.body());
      }
    }
    if (!effects.apply.isEmpty()) {
      storage.apply(effects.apply);
    }
    if (effects.truncateLogBefore > 0) {
      storage.truncateLogBefore(effects.truncateLogBefore);
    }
    for (Effects.Retransmit r : effects.retransmits) {
      try {
        readPool.execute(() -> resendFromLog(r));
      } catch (RejectedExecutionException e) {
        // shutting down: the replica will NACK again
      }
    }
    if (effects.stateTransferFrom > 0) {
      stateTransfer.accept(effects.stateTransferFrom);
    }
    for (Effects.Read read : effects.reads) {
      try {
        readPool.execute(() -> connections.send(read.connectionId(), reader.apply(read.request())));
      } catch (RejectedExecutionException e) {
        connections.send(read.connectionId(), Response.newBuilder().setRequestId(read.request().getRequestId())
            .setStatus(Status.UNAVAILABLE).setError("replica is shutting down").build());
      }
    }
    if (!effects.replies.isEmpty()) {
      Map<Long, List<Response>> byConnection = new HashMap<>();
      for (Effects.Reply r : effects.replies) {
        byConnection.computeIfAbsent(r.connectionId(), k -> new ArrayList<>()).add(r.response());
      }
      byConnection.forEach(connections::send);
    }
    if (effects.pauseIntake != null) {
      connections.setIntakePaused(effects.pauseIntake);
    }
    return effects.nextTickNs;
  }

  /** Reads entries no longer in the core's memory from the log and resends them (read pool). */
  private void resendFromLog(Effects.Retransmit r) {
    PeerTransport t = transport;
    Storage s = logReader;
    if (t == null || s == null) {
      return;
    }
    long next = Math.max(r.fromOp(), s.firstLogOp());
    long left = r.maxBytes();
    while (next <= r.toOp() && left > 0) {
      List<Entry> chunk = s.readLog(next, r.toOp(), (int) Math.min(1 << 20, left));
      if (chunk.isEmpty()) {
        return;
      }
      for (Prepare.Builder p : ReplicaCore.packPrepares(chunk, maxDatagramBytes)) {
        t.send(r.to(), r.view(), MessageType.PREPARE, p.setCommit(r.commit()).build());
      }
      for (Entry e : chunk) {
        left -= e.getSerializedSize();
      }
      next = chunk.get(chunk.size() - 1).getOp() + 1;
    }
  }

  /** The core's view after the last burst (any thread). */
  long view() {
    return view;
  }

  /** True when, after the last burst, every admitted write was applied and no read waits. */
  boolean idle() {
    return idle && queue.isEmpty();
  }

  /** Stops the loop thread (after the current burst). */
  @Override
  public void close() {
    running = false;
    thread.interrupt();
    try {
      thread.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
