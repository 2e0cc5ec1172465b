package io.choir.client;

import com.google.protobuf.ByteString;
import io.choir.client.spi.ClientTransport;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.WatchEvent.Kind;
import io.choir.proto.WatchEvents;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ClientWatch is one {@link Watch}: a thread of its own that connects to a replica (its own
 * connection, through the client's transport, so TLS and the token apply), sends the Watch request,
 * and delivers the events of its Responses to the listener, in order, each once. When the connection
 * is lost, the replica cuts the watch off or its events arrive faster than the listener takes them, it
 * connects to the next endpoint and sends the watch again from {@link #nextRevision()}: the last
 * delivered revision + 1. Events below it (a replica's retry after a resume) are dropped, so none is
 * delivered twice; the replica refuses a start it no longer keeps, so none is skipped. A compacted
 * refusal ends the watch only once every endpoint in turn has refused the same revision.
 *
 * <p>Threads: the transport's I/O threads only enqueue (a bounded queue; when full the connection is
 * closed and the watch resumes later, so a slow listener never grows memory); the watch thread does
 * the rest.
 */
final class ClientWatch implements Watch {
  private static final Logger log = LoggerFactory.getLogger(ClientWatch.class);
  /** Responses queued between the I/O thread and the watch thread; beyond, the connection is dropped. */
  static final int QUEUE_RESPONSES = 1024;
  private static final AtomicInteger THREADS = new AtomicInteger();

  /** One Response, or the close of a connection (response null), of connection number generation. */
  private record Item(long generation, Response response) {}

  private final ClientTransport transport;
  private final List<Endpoint> endpoints;
  private final WatchOptions options;
  private final WatchListener listener;
  private final long connectTimeoutMs;
  private final long maxBackoffMs;
  private final Random random;
  private final Runnable onEnd;
  private final BlockingQueue<Item> inbox = new ArrayBlockingQueue<>(QUEUE_RESPONSES);
  private final AtomicLong closedGeneration = new AtomicLong(-1);
  private final Thread thread;
  private volatile long nextRevision;
  private volatile boolean closed;
  private volatile boolean ended;
  private volatile ClientTransport.Connection connection;
  private long generation;
  /** The revision the last compacted refusals were for, and how many endpoints in a row refused it. */
  private long compactedRevision = -1;
  private int compactedRefusals;

  ClientWatch(ClientTransport transport, List<Endpoint> endpoints, WatchOptions options, WatchListener listener,
      long connectTimeoutMs, long attemptTimeoutMs, Random random, Runnable onEnd) {
    this.transport = transport;
    this.endpoints = List.copyOf(endpoints);
    this.options = options;
    this.listener = listener;
    this.connectTimeoutMs = connectTimeoutMs;
    this.maxBackoffMs = Backoff.capMs(attemptTimeoutMs);
    this.random = random;
    this.onEnd = onEnd;
    this.nextRevision = options.startRevision();
    this.thread = new Thread(this::run, "choir-watch-" + THREADS.incrementAndGet());
    thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  @Override
  public long nextRevision() {
    return nextRevision;
  }

  @Override
  public boolean isActive() {
    return !closed && !ended;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    ClientTransport.Connection c = connection;
    if (c != null) {
      c.close();
    }
    thread.interrupt();
    if (Thread.currentThread() != thread) {
      try {
        thread.join(TimeUnit.SECONDS.toMillis(2));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    onEnd.run();
  }

  private void run() {
    int index = random.nextInt(endpoints.size());
    int retries = 0;
    try {
      while (!closed && !ended) {
        Endpoint endpoint = endpoints.get(index);
        boolean progressed;
        try {
          progressed = serve(endpoint);
        } catch (RuntimeException e) {
          // A transport's failure (a close racing the channel's own) must not end the thread unseen:
          // the watch goes on elsewhere, from nextRevision.
          log.atDebug().addKeyValue("endpoint", endpoint).addKeyValue("reason", String.valueOf(e))
              .log("watch: the connection failed; resuming elsewhere");
          progressed = false;
        }
        if (closed || ended) {
          break;
        }
        index = (index + 1) % endpoints.size(); // any replica serves a watch: try the next one
        retries = progressed ? 1 : retries + 1;
        Thread.sleep(Backoff.delayMs(retries, maxBackoffMs, random));
      }
    } catch (InterruptedException e) {
      // closed
    } finally {
      ClientTransport.Connection c = connection;
      if (c != null) {
        c.close();
      }
      if (!closed) {
        onEnd.run();
      }
    }
  }

  /**
   * Watches on endpoint until the connection is lost, the replica ends the watch or the watch is
   * closed; returns whether the replica accepted it (a reason to retry soon).
   */
  private boolean serve(Endpoint endpoint) throws InterruptedException {
    long gen = ++generation;
    ClientTransport.Connection c;
    try {
      c = transport.connect(endpoint.host(), endpoint.port(), new ClientTransport.Listener() {
        @Override
        public void onResponse(Response response) {
          if (closedGeneration.get() >= gen) {
            return; // dropped after an overflow: nothing after a lost response may be delivered
          }
          if (!inbox.offer(new Item(gen, response))) {
            // The listener is behind: drop this connection; the watch resumes from what it delivered.
            closedGeneration.set(gen);
            ClientTransport.Connection open = connection;
            if (open != null) {
              open.close();
            }
          }
        }

        @Override
        public void onClosed() {
          closedGeneration.set(gen);
          inbox.offer(new Item(gen, null));
        }
      }).get(connectTimeoutMs + 1000, TimeUnit.MILLISECONDS);
    } catch (ExecutionException | TimeoutException | RuntimeException e) {
      log.atDebug().addKeyValue("endpoint", endpoint).addKeyValue("reason", String.valueOf(e))
          .log("watch: cannot connect");
      return false;
    }
    connection = c;
    if (closed) {
      c.close();
      return false;
    }
    long requestId = gen;
    Request.Builder watch = Request.newBuilder().setRequestId(requestId);
    watch.getWatchBuilder().setKey(ByteString.copyFrom(options.keyBytes())).setPrefix(options.isPrefix())
        .setStartRevision(nextRevision).setPrevValue(options.prevValue());
    c.write(watch.build());
    boolean accepted = false;
    try {
      while (!closed) {
        Item item = inbox.poll(100, TimeUnit.MILLISECONDS);
        if (item == null) {
          if (closedGeneration.get() >= gen) {
            return accepted;
          }
          continue;
        }
        if (item.generation() != gen) {
          continue; // of an earlier connection, already left
        }
        Response r = item.response();
        if (r == null) {
          return accepted;
        }
        if (r.getRequestId() != requestId) {
          continue;
        }
        if (r.getStatus() != Status.OK) {
          if (!refused(endpoint, r)) {
            return accepted; // elsewhere, from nextRevision
          }
          ended = true;
          return accepted;
        }
        if (!accepted) {
          accepted = true;
          if (nextRevision == 0) {
            nextRevision = r.getWatchEvents().getStartRevision();
          }
        }
        deliver(r.getWatchEvents());
      }
      return accepted;
    } finally {
      c.close();
    }
  }

  /** Delivers the events at or above nextRevision, then moves it past them. */
  private void deliver(WatchEvents events) {
    long from = nextRevision;
    for (var e : events.getEventsList()) {
      if (e.getRevision() < from || closed) {
        continue;
      }
      WatchEvent event = new WatchEvent(e.getRevision(), e.getKind() == Kind.DELETE ? WatchEvent.Kind.DELETE
          : WatchEvent.Kind.PUT, e.getKey().toByteArray(), e.getValue().toByteArray(),
          e.getHasPrev() ? e.getPrevValue().toByteArray() : null, e.getPrevVersion());
      try {
        listener.onEvent(event);
      } catch (RuntimeException ex) {
        log.atWarn().setCause(ex).addKeyValue("watch", options).addKeyValue("revision", e.getRevision())
            .log("a watch listener threw; the watch goes on");
      }
      nextRevision = Math.max(nextRevision, e.getRevision() + 1);
    }
  }

  /**
   * Handles a refusal or a cut off: true when it ends the watch for good (the listener is told), false
   * when the watch should resume elsewhere.
   */
  private boolean refused(Endpoint endpoint, Response r) {
    ChoirException error;
    if (r.getWatchEvents().getCompacted()) {
      // One replica no longer keeping the revision (a restarted one keeps only what it applied since)
      // does not mean none does: the watch ends only when every endpoint, in turn, has refused it.
      if (compactedRevision != nextRevision) {
        compactedRevision = nextRevision;
        compactedRefusals = 0;
      }
      if (++compactedRefusals < endpoints.size()) {
        log.atInfo().addKeyValue("endpoint", endpoint).addKeyValue("next_revision", nextRevision)
            .addKeyValue("oldest_revision", r.getWatchEvents().getOldestRevision())
            .log("watch: compacted on this replica; trying the next");
        return false;
      }
      error = new WatchCompactedException(r.getError(), r.getWatchEvents().getOldestRevision());
    } else {
      switch (r.getStatus()) {
        case PERMISSION_DENIED -> error = new PermissionDeniedException(r.getError(), -1);
        case INVALID, TOO_LARGE -> error = new InvalidRequestException(r.getError());
        case BUSY -> error = new BusyException(r.getError());
        default -> {
          log.atInfo().addKeyValue("endpoint", endpoint).addKeyValue("status", r.getStatus())
              .addKeyValue("reason", r.getError()).addKeyValue("next_revision", nextRevision)
              .log("watch: the replica ended it; resuming elsewhere");
          return false;
        }
      }
    }
    if (!closed) {
      try {
        listener.onError(error);
      } catch (RuntimeException ex) {
        log.atWarn().setCause(ex).log("a watch listener's onError threw");
      }
    }
    return true;
  }
}
