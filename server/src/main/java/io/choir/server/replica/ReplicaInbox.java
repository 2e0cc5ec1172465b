package io.choir.server.replica;

import com.google.protobuf.MessageLite;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.server.core.Event;
import io.choir.server.net.PeerSink;
import io.choir.server.net.RequestSink;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * ReplicaInbox is what the other threads share with the {@link ReplicaLoop}: the one queue they hand
 * it events through, and the view the loop published after its last burst. Client requests (from
 * Netty's event loops) and peer messages (from the transport) are bounded, event_queue_capacity queued
 * of each: beyond that an offer is refused and the edge answers BUSY or drops the message; internal
 * events (the storage stage's Persisted and Applied, a state transfer's outcome) are never refused
 * (the flow-control window bounds them). It is built before everything that feeds it and before the
 * loop that drains it, so each of them gets it when it is built. Any thread.
 */
final class ReplicaInbox implements RequestSink, PeerSink {
  /** A client request as queued: the connection it came on and the request. */
  record Incoming(long connectionId, Request request) {}

  /** A task the loop runs between two events (a metrics snapshot); never refused. */
  record OnLoop(Runnable task) {}

  private final int eventQueueCapacity;
  private final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();
  private final AtomicInteger queuedRequests = new AtomicInteger();
  private final AtomicInteger queuedPeerMessages = new AtomicInteger();
  private volatile long view;

  /** An inbox of eventQueueCapacity requests and as many peer messages, the core being in view. */
  ReplicaInbox(int eventQueueCapacity, long view) {
    this.eventQueueCapacity = eventQueueCapacity;
    this.view = view;
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

  @Override
  public boolean offerPeer(int from, long view, MessageType type, MessageLite body) {
    if (queuedPeerMessages.incrementAndGet() > eventQueueCapacity) {
      queuedPeerMessages.decrementAndGet();
      return false;
    }
    queue.add(new Event.Peer(from, view, type, body));
    return true;
  }

  /** Hands an internal event (from the storage stage or a state transfer) to the loop; never refused. */
  void post(Event event) {
    queue.add(event);
  }

  /** Hands task to the loop, which runs it on its thread in its turn; never refused. */
  void runOnLoop(Runnable task) {
    queue.add(new OnLoop(task));
  }

  /** Client requests queued (any thread). */
  int queuedRequests() {
    return queuedRequests.get();
  }

  /** Peer messages queued (any thread). */
  int queuedPeerMessages() {
    return queuedPeerMessages.get();
  }

  /** The first queued item, waiting at most waitNs for one (0 or less: not at all); null when none came. */
  Object poll(long waitNs) throws InterruptedException {
    return waitNs > 0 ? queue.poll(waitNs, TimeUnit.NANOSECONDS) : queue.poll();
  }

  /** Moves at most max more queued items to burst. */
  void drainTo(List<Object> burst, int max) {
    queue.drainTo(burst, max);
  }

  /** Frees the place of item (an {@link Incoming}, an {@link OnLoop} or an {@link Event}) under its bound: the loop took it. */
  void taken(Object item) {
    if (item instanceof Incoming) {
      queuedRequests.decrementAndGet();
    } else if (item instanceof Event.Peer) {
      queuedPeerMessages.decrementAndGet();
    }
  }

  boolean isEmpty() {
    return queue.isEmpty();
  }

  /** The core's view after the loop's last burst (any thread). */
  long view() {
    return view;
  }

  /** Publishes the core's view after a burst (the loop's thread). */
  void publishView(long view) {
    this.view = view;
  }
}
