package io.choir.server.watch;

import io.choir.proto.Response;

/**
 * WatchOutput is where a watch's Responses go: its client connection. The network edge implements it
 * ({@code io.choir.server.net.WatchRequests}).
 */
public interface WatchOutput {
  /**
   * Sends response after everything sent before through this output, without blocking; calls
   * written once the connection has taken it, or failed to (closed): then its bytes are gone.
   */
  void send(Response response, Runnable written);
}
