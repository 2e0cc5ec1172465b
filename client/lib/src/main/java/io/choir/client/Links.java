package io.choir.client;

import io.choir.client.spi.ClientTransport;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Links keeps at most one connection per endpoint. It connects lazily on first use and again on the
 * first use after the connection was lost; concurrent callers share one connect attempt. A failed
 * connect is not remembered: pacing reconnects is the retry backoff's job. Bounded by the endpoints
 * the client knows (the configured ones and those replicas named in redirects).
 */
final class Links {
  private final ClientTransport transport;
  private final Dispatcher dispatcher;
  /** Read without the lock on the fast path (an open link); changed only under it. */
  private final ConcurrentHashMap<Endpoint, CompletableFuture<Link>> current = new ConcurrentHashMap<>();
  private volatile boolean closed; // written under this

  Links(ClientTransport transport, Dispatcher dispatcher) {
    this.transport = transport;
    this.dispatcher = dispatcher;
  }

  /** The open link to endpoint, or a connect in progress; fails with UnavailableException when it cannot connect. */
  CompletableFuture<Link> link(Endpoint endpoint) {
    CompletableFuture<Link> open = current.get(endpoint);
    if (!closed && open != null && open.isDone() && !open.isCompletedExceptionally() && open.getNow(null).isUsable()) {
      return open;
    }
    CompletableFuture<Link> next;
    Link link;
    synchronized (this) {
      if (closed) {
        return CompletableFuture.failedFuture(new UnavailableException("client closed"));
      }
      CompletableFuture<Link> existing = current.get(endpoint);
      if (existing != null && (!existing.isDone()
          || (!existing.isCompletedExceptionally() && existing.getNow(null).isUsable()))) {
        return existing;
      }
      next = new CompletableFuture<>();
      link = new Link(endpoint, dispatcher);
      current.put(endpoint, next);
    }
    CompletableFuture<ClientTransport.Connection> connect;
    try {
      connect = transport.connect(endpoint.host(), endpoint.port(), link);
    } catch (RuntimeException e) {
      connect = CompletableFuture.failedFuture(new UnavailableException("cannot connect to " + endpoint + ": " + e, e));
    }
    connect.whenComplete((connection, error) -> {
      if (error != null) {
        next.completeExceptionally(Futures.unwrap(error));
        return;
      }
      link.connected(connection);
      boolean closeNow;
      synchronized (this) {
        closeNow = closed; // read under the lock: close() either sees this link in the map or sets closed first
      }
      if (closeNow) {
        connection.close();
        next.completeExceptionally(new UnavailableException("client closed"));
      } else {
        next.complete(link);
      }
    });
    return next;
  }

  /** Closes every link and refuses further use. */
  void close() {
    List<CompletableFuture<Link>> all;
    synchronized (this) {
      closed = true;
      all = new ArrayList<>(current.values());
      current.clear();
    }
    for (CompletableFuture<Link> f : all) {
      f.thenAccept(Link::close);
    }
  }
}
