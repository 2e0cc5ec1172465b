package io.choir.server.core;

import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.List;

/**
 * Event is one input to the {@link ReplicaCore}: everything the core learns arrives as an event, with
 * the time passed beside it, never read from a clock.
 */
public sealed interface Event {
  /** A client request read from connection connectionId (a process-local handle). */
  record ClientRequest(long connectionId, Request request) implements Event {}

  /** The storage stage has made the log durable (per the durability setting) up to op. */
  record Persisted(long op) implements Event {}

  /**
   * The storage stage has applied every entry up to op; replies holds one reply per applied entry of
   * this step, in op order, starting at firstOp; checksum is the running checksum at op.
   */
  record Applied(long firstOp, long op, List<Response> replies, long checksum) implements Event {}

  /**
   * Tick ends a burst of events: it sends what the burst batched and runs timers. The replica loop
   * steps one after every burst and whenever the core's next timer is due.
   */
  record Tick() implements Event {}
}
