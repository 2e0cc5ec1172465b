package io.choir.server.net;

import io.choir.proto.Request;

/** RequestSink takes client requests from the Netty edge to the thread that owns the core. */
public interface RequestSink {
  /**
   * Hands over request from connection connectionId; returns false (and takes nothing) when the bounded
   * queue is full, in which case the caller answers BUSY.
   */
  boolean offer(long connectionId, Request request);
}
