package io.choir.client;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;

/**
 * Connection is the one TCP connection this client keeps to one endpoint. It connects lazily on first
 * use and again on the first use after the connection was lost; concurrent callers share one connect
 * attempt. A failed connect is not remembered: pacing reconnects is the retry backoff's job.
 */
final class Connection {
  private final Endpoint endpoint;
  private final Bootstrap bootstrap;
  private CompletableFuture<Channel> channel; // guarded by this
  private boolean closed; // guarded by this

  Connection(Endpoint endpoint, Bootstrap bootstrap) {
    this.endpoint = endpoint;
    this.bootstrap = bootstrap;
  }

  Endpoint endpoint() {
    return endpoint;
  }

  /** The open channel, or a connect in progress; fails with UnavailableException when it cannot connect. */
  synchronized CompletableFuture<Channel> channel() {
    if (closed) {
      return CompletableFuture.failedFuture(new UnavailableException("client closed"));
    }
    CompletableFuture<Channel> current = channel;
    if (current != null) {
      if (!current.isDone()) {
        return current;
      }
      if (!current.isCompletedExceptionally() && current.getNow(null).isActive()) {
        return current;
      }
    }
    CompletableFuture<Channel> next = new CompletableFuture<>();
    channel = next;
    // Unresolved, so the name is resolved by Netty on the event loop rather than on the caller.
    ChannelFuture connect = bootstrap.connect(InetSocketAddress.createUnresolved(endpoint.host(), endpoint.port()));
    connect.addListener(f -> {
      if (f.isSuccess()) {
        boolean closeNow;
        synchronized (this) {
          closeNow = closed;
        }
        if (closeNow) {
          connect.channel().close();
          next.completeExceptionally(new UnavailableException("client closed"));
        } else {
          next.complete(connect.channel());
        }
      } else {
        next.completeExceptionally(new UnavailableException(
            "cannot connect to " + endpoint + ": " + f.cause(), f.cause()));
      }
    });
    return next;
  }

  /** Closes the channel, if any, and refuses further use. */
  void close() {
    CompletableFuture<Channel> current;
    synchronized (this) {
      closed = true;
      current = channel;
    }
    if (current != null) {
      current.thenAccept(Channel::close);
    }
  }
}
