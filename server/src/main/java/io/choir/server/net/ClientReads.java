package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.proto.wire.FrameDecoder;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Function;

/**
 * ClientReads executes the reads the core released for client connections, under the reply bounds of
 * {@link ClientConnections} (its class comment): a read whose key the state holds in memory is answered
 * on the connection's event loop, the others run on the read pool, and a read that has no room under the
 * bounds waits in its connection's deferred reads, in order. Per-connection state is owned by the
 * connection's event loop; replies go out through {@link ClientConnections}' write.
 */
final class ClientReads {
  /** Most reads one read-pool task runs (the replies of a task go out in one flush). */
  static final int MAX_READS_PER_TASK = 32;
  /** Most reads answered from memory on the event loop in one go, before the loop turns to other work. */
  static final int MAX_READS_FROM_MEMORY = 256;

  private final ClientConnections connections;
  private final ClientConnections.Limits limits;
  private final ReplyBudget replyBudget;
  private final Executor readPool;
  private final Function<Request, Response> reader;
  private final Function<Request, Response> memoryReader;
  private final Counter repliesDropped;
  private final Counter readsDeferred;
  private final Counter readsFromMemory;
  private final Counter readsNotInMemory;

  ClientReads(ClientConnections connections, ReplyBudget replyBudget, Executor readPool,
      Function<Request, Response> reader, Function<Request, Response> memoryReader, MeterRegistry metrics) {
    this.connections = connections;
    this.limits = connections.limits();
    this.replyBudget = replyBudget;
    this.readPool = readPool;
    this.reader = reader;
    this.memoryReader = memoryReader;
    this.repliesDropped = metrics.counter("choir.replies.dropped");
    this.readsDeferred = metrics.counter("choir.client_reads.deferred");
    this.readsFromMemory = metrics.counter("choir.client_reads.from_memory");
    this.readsNotInMemory = metrics.counter("choir.client_reads.not_in_memory");
  }

  /**
   * Executes a read the core released for connectionId (any thread): on the read pool as soon as the
   * connection's reply bytes allow it, in the order the core released them. Reads that arrive while the
   * event loop has not yet taken the earlier ones join them: one event-loop task per burst, not per read.
   */
  void read(ClientConnection c, Request request) {
    c.arrivingReads.add(request);
    if (c.takingReads.compareAndSet(false, true)) {
      try {
        c.channel.eventLoop().execute(() -> takeArrivingReads(c));
      } catch (RejectedExecutionException shuttingDown) {
        int dropped = 0;
        while (c.arrivingReads.poll() != null) {
          dropped++;
        }
        repliesDropped.increment(dropped);
      }
    }
  }

  /**
   * Answers the reads that arrived whose key the state holds in memory at once, in one write, and moves
   * the others into the connection's deferred reads; then starts what may start (event loop).
   *
   * <p>A read answered from memory (RocksDB's memtables and block cache, see
   * {@link io.choir.server.storage.StateStore#getIfInMemory}) costs no hand-off to the read pool and
   * back, which cost more than the read. Its reply may overtake replies of earlier reads still on the
   * pool: every read in flight is concurrent with the others, and the client matches replies by request
   * id. The reply bounds apply as on the pool: nothing is answered from memory while a deferred read
   * waits for room (needBytes), and after the first reply that finds no room the rest of the burst is
   * deferred without being computed.
   */
  private void takeArrivingReads(ClientConnection c) {
    c.takingReads.set(false); // before taking: a read added after this is taken here or by a new task
    int taken = 0;
    List<Response> ready = null;
    long readyBytes = 0;
    boolean full = false;
    for (Request r = c.arrivingReads.poll(); r != null; r = c.arrivingReads.poll()) {
      if (!c.channel.isActive()) {
        repliesDropped.increment();
        continue;
      }
      Response reply = full || (ready != null && ready.size() >= MAX_READS_FROM_MEMORY) ? null : fromMemory(c, r);
      if (reply != null) {
        long bytes = FrameDecoder.LENGTH_BYTES + reply.getSerializedSize();
        ReplyBudget.Room room = replyBudget.tryReserve(c, bytes);
        if (room == ReplyBudget.Room.YES) {
          if (ready == null) {
            ready = new ArrayList<>();
          }
          ready.add(reply);
          readyBytes += bytes;
          continue;
        }
        full = true; // as on the pool: dropped, computed again when there is room
        if (c.deferredReads.isEmpty()) {
          c.needBytes = bytes; // it is first in line: not computed again before there is room for it
        }
      }
      c.deferredReads.add(r);
      taken++;
    }
    if (ready != null) {
      readsFromMemory.increment(ready.size());
      connections.write(c, ready, readyBytes);
    }
    startReads(c);
    // Those of them that could not start at once wait for the connection's replies to drain.
    readsDeferred.increment(Math.min(taken, c.deferredReads.size()));
  }

  /** The answer to r from memory, or null when it needs the pool or c's reply bounds say wait (event loop). */
  private Response fromMemory(ClientConnection c, Request r) {
    if (c.needBytes > 0 || c.replyBytes.get() >= limits.maxReplyBytesPerConnection() || replyBudget.overTotal(c)) {
      return null;
    }
    Response reply;
    try {
      reply = memoryReader.apply(r);
    } catch (RuntimeException e) {
      reply = null; // the pool reads it again and reports what fails
    }
    if (reply == null) {
      readsNotInMemory.increment();
    }
    return reply;
  }

  /**
   * Starts c's deferred reads while its bounds allow (event loop): those that may start now go to the
   * read pool together, at most {@link #MAX_READS_PER_TASK} per task, and their replies come back in
   * one event-loop task and one flush.
   */
  void startReads(ClientConnection c) {
    while (!c.deferredReads.isEmpty() && c.channel.isActive() && mayStartRead(c)) {
      int room = Math.min(MAX_READS_PER_TASK, limits.maxReadsPerConnection() - c.readsRunning);
      List<Request> group = new ArrayList<>(Math.min(room, c.deferredReads.size()));
      while (group.size() < room && !c.deferredReads.isEmpty()) {
        group.add(c.deferredReads.poll());
      }
      c.readsRunning += group.size();
      try {
        readPool.execute(() -> runReads(c, group));
      } catch (RejectedExecutionException e) {
        c.readsRunning -= group.size();
        for (Request r : group) {
          connections.reply(c, Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.UNAVAILABLE)
              .setError("replica overloaded or shutting down: the read pool refused the read").build());
        }
      }
    }
    if (!c.deferredReads.isEmpty() && replyBudget.overTotal(c)) {
      replyBudget.waitForTotal(c);
    }
  }

  /**
   * On the read pool: computes the replies of group in order and reserves their bytes before they are
   * handed to the event loop. The first reply that finds no room under the bounds is dropped and it and
   * the reads after it are deferred again (first in line) until the connection's or the replica's
   * replies drain: computing it again costs a read, holding it would cost the memory the bounds are for.
   */
  private void runReads(ClientConnection c, List<Request> group) {
    List<Response> ready = new ArrayList<>(group.size());
    long readyBytes = 0;
    long needBytes = 0;
    ReplyBudget.Room room = ReplyBudget.Room.YES;
    for (Request r : group) {
      Response reply;
      try {
        reply = reader.apply(r);
      } catch (RuntimeException e) {
        reply = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.UNAVAILABLE)
            .setError("read failed: " + e.getMessage()).build();
      }
      long bytes = FrameDecoder.LENGTH_BYTES + reply.getSerializedSize();
      room = replyBudget.tryReserve(c, bytes);
      if (room != ReplyBudget.Room.YES) {
        needBytes = bytes;
        break;
      }
      ready.add(reply);
      readyBytes += bytes;
    }
    List<Request> again = group.subList(ready.size(), group.size());
    long written = readyBytes;
    long need = needBytes;
    ReplyBudget.Room last = room;
    connections.onLoop(c, () -> {
      c.readsRunning -= group.size();
      if (!ready.isEmpty()) {
        c.needBytes = 0;
        connections.write(c, ready, written);
      }
      if (again.isEmpty()) {
        startReads(c); // those deferred behind this group's (max_reads_per_connection) may start now
        return;
      }
      if (!c.channel.isActive()) { // closed meanwhile: its deferred reads were dropped, these are too
        repliesDropped.increment(again.size());
        return;
      }
      readsDeferred.increment(again.size());
      c.needBytes = need;
      for (int i = again.size() - 1; i >= 0; i--) {
        c.deferredReads.addFirst(again.get(i));
      }
      if (last == ReplyBudget.Room.NOT_IN_TOTAL) {
        replyBudget.waitForTotal(c);
      }
      startReads(c);
    }, group.size());
  }

  /** Whether c's first deferred read may be handed to the read pool now (event loop). */
  private boolean mayStartRead(ClientConnection c) {
    long mine = c.replyBytes.get();
    return c.readsRunning < limits.maxReadsPerConnection()
        && mine < limits.maxReplyBytesPerConnection()
        && (mine == 0 || mine + c.needBytes <= limits.maxReplyBytesPerConnection())
        && !replyBudget.overTotal(c);
  }
}
