package io.choir.client;

import io.choir.client.spi.ClientTransport;
import io.choir.proto.Response;
import java.util.Set;
import java.util.Comparator;
import java.util.concurrent.ConcurrentSkipListSet;

/**
 * Link is one transport connection to one endpoint, with the calls written to it and not yet answered
 * (failed over when it closes). It is the connection's listener and forwards to the dispatcher.
 */
final class Link implements ClientTransport.Listener {
  final Endpoint endpoint;
  /**
   * The calls written on this link whose answer is still awaited; bounded by maxInFlight (+2 internal
   * calls). In request id order (a call has its id before it is written), so that a closed link fails
   * them over in the same order on every run: a hash set of calls iterates in identity-hash order,
   * which differs from run to run, and a deterministic simulation would not replay from its seed.
   */
  final Set<Call> awaiting = new ConcurrentSkipListSet<>(Comparator.comparingLong((Call c) -> c.requestId));
  private final Dispatcher dispatcher;
  private volatile ClientTransport.Connection connection;
  private volatile boolean closed;
  /**
   * When the last final answer (not a refusal) arrived here, on the client's clock; 0 before any. A
   * replica still answering is slow, not silent: the attempt timeout does not leave it.
   */
  volatile long lastFinalAnswerNs;
  /**
   * True once the replica said it reads nothing from this connection (a TLS port answering a plaintext
   * client): the requests written here were never read, so losing them with the connection leaves their
   * outcome known (not executed).
   */
  volatile boolean readNothing;

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
