package io.choir.client.spi;

import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.concurrent.CompletableFuture;

/**
 * ClientTransport opens the client's connections to replicas: an ordered, reliable stream of
 * {@link Request}s one way and {@link Response}s the other, like the TCP connection of the client
 * protocol (see client.proto). The default one is Netty over TCP with the protocol's framing; a
 * deterministic simulator passes one over its simulated network.
 *
 * <p>Contract, which the client's promises ("not executed" only when that is certain) rely on:
 * <ul>
 *   <li>A request whose {@link Connection#write} future failed never reached the replica whole (so it
 *       was not executed through this write). A write that completed may or may not have arrived.
 *   <li>Once a connection closes (either side, or it breaks), every write not yet completed fails, no
 *       response arrives any more, and {@link Listener#onClosed()} is called once (only for a
 *       connection whose connect future completed).
 *   <li>{@link Connection#close()} is abortive (TCP: SO_LINGER 0, a reset): what the replica has not
 *       yet received is discarded, never delivered later. The client closes a connection whose replica
 *       stopped answering; a copy of an old request that a healed network delivered minutes later
 *       could otherwise reach a replica that has become the primary after the request's session
 *       expired.
 *   <li>Responses are delivered in the order the replica sent them, each once.
 *   <li>The listener is never called from inside {@link #connect} or {@link Connection#write} (deliver
 *       from the transport's own thread or a scheduled event): a response handled inline would complete
 *       a call inside the write that sent it, and a caller issuing its next request from the callback
 *       would recurse without bound. Completing the futures themselves inline is fine.
 * </ul>
 *
 * <p>For deterministic simulation and tests; not a stable API.
 */
public interface ClientTransport {
  /**
   * Opens a connection to a replica's client address.
   *
   * @param host the host, as configured (a name or an address; IPv6 without brackets)
   * @param port the port
   * @param listener gets every response that arrives on the new connection, and its close
   * @return completes with the connection once it can carry requests, or exceptionally when it cannot
   *     be opened (refused, unreachable, the connect timeout passed, the transport is closed)
   */
  CompletableFuture<Connection> connect(String host, int port, Listener listener);

  /** Closes every connection of this transport and refuses new ones; idempotent. */
  void close();

  /** Connection is one open connection to one replica. */
  interface Connection {
    /**
     * Sends one request.
     *
     * @param request the request, ids filled in
     * @return completes when the request was handed to the network, exceptionally when it could not
     *     be sent whole (then the replica did not get it)
     */
    CompletableFuture<Void> write(Request request);

    /**
     * Whether the connection is still open.
     *
     * @return false once it closed or broke
     */
    boolean isActive();

    /**
     * Closes the connection abortively: data not yet received by the replica is discarded (the
     * listener then gets onClosed); idempotent.
     */
    void close();
  }

  /** Listener receives what arrives on one connection. */
  interface Listener {
    /**
     * One response frame arrived.
     *
     * @param response the decoded response
     */
    void onResponse(Response response);

    /** The connection closed or broke; called once, after which nothing more arrives. */
    void onClosed();
  }
}
