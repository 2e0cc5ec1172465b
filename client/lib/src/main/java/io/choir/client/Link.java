package io.choir.client;

import io.choir.client.spi.ClientTransport;
import io.choir.proto.Response;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Link is one transport connection to one endpoint, with the calls written to it and not yet answered
 * (failed over when it closes). It is the connection's listener and forwards to the dispatcher.
 */
final class Link implements ClientTransport.Listener {
  final Endpoint endpoint;
  /** The calls written on this link whose answer is still awaited; bounded by maxInFlight (+2 internal calls). */
  final Set<Call> awaiting = ConcurrentHashMap.newKeySet();
  private final Dispatcher dispatcher;
  private volatile ClientTransport.Connection connection;
  private volatile boolean closed;
  /**
   * When the last final answer (not a refusal) arrived here, on the client's clock; 0 before any. A
   * replica still answering is slow, not silent: the attempt timeout does not leave it.
   */
  volatile long lastFinalAnswerNs;

  Link(Endpoint endpoint, Dispatcher dispatcher) {
    this.endpoint = endpoint;
    this.dispatcher = dispatcher;
  }

  void connected(ClientTransport.Connection connection) {
    this.connection = connection;
  }

  ClientTransport.Connection connection() {
    return connection;
  }

  /** Whether requests can still be written here. */
  boolean isUsable() {
    ClientTransport.Connection c = connection;
    return !closed && c != null && c.isActive();
  }

  void close() {
    ClientTransport.Connection c = connection;
    if (c != null) {
      c.close();
    }
  }

  @Override
  public void onResponse(Response response) {
    dispatcher.onResponse(this, response);
  }

  @Override
  public void onClosed() {
    closed = true;
    dispatcher.onLinkClosed(this);
  }

  @Override
  public String toString() {
    return endpoint.toString();
  }
}
