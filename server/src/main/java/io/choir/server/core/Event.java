package io.choir.server.core;

import com.google.protobuf.MessageLite;
import io.choir.proto.MembershipRecord;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import java.util.List;

/**
 * Event is one input to the {@link ReplicaCore}: everything the core learns arrives as an event, with
 * the time passed beside it, never read from a clock.
 */
public sealed interface Event {
  /** A client request read from connection connectionId (a process-local handle). */
  record ClientRequest(long connectionId, Request request) implements Event {
    /**
     * The connection id of the primary's own lease expiry (docs/lease.md), never a client's (theirs
     * start at 1): a LeaseRevoke from it is written as a LeaseExpire entry, which only deletes a lease
     * whose deadline the entry's time has reached.
     */
    public static final long LEASE_EXPIRY_CONNECTION = -1;
  }

  /**
   * The storage stage has made the log durable (per the durability setting) up to op, for the persist
   * effect of log epoch epoch (see Effects.logEpoch): a Persisted of an older epoch reports entries that
   * a later truncation removed, and is ignored.
   */
  record Persisted(long op, long epoch) implements Event {
    public Persisted(long op) {
      this(op, 0);
    }
  }

  /**
   * The storage stage has applied every entry up to op; replies holds one reply per applied entry of
   * this step, in op order, starting at firstOp; checksum is the running checksum at op.
   */
  record Applied(long firstOp, long op, List<Response> replies, long checksum) implements Event {}

  /**
   * A peer message that passed the transport's checks (magic, version, cluster id, size): from replica
   * from, stamped with the sender's view; body is the parsed protobuf of type.
   */
  record Peer(int from, long view, MessageType type, MessageLite body) implements Event {}

  /**
   * Storage has durably recorded lastNormalView (the log lane, after the log writes it vouches for):
   * from now on this replica may acknowledge in that view.
   */
  record LastNormalViewPersisted(long lastNormalView) implements Event {}

  /**
   * A state transfer finished: storage now holds the state at op with checksum, and no log; membership
   * is the snapshot's membership row (null: the source sent none, the membership is unchanged).
   */
  record StateInstalled(long op, long checksum, MembershipRecord membership) implements Event {
    public StateInstalled(long op, long checksum) {
      this(op, checksum, null);
    }
  }

  /** A state transfer failed (source unreachable, snapshot inconsistent); the core will ask again. */
  record StateTransferFailed(String reason) implements Event {}

  /**
   * count linearizable reads were answered outside the core under the {@link LeaseReadWindow} it
   * published (the network edge, while the primary's lease holds): counted, and the lease renewed in
   * time (see ReadPath); and sequential sequential reads under its sequential part.
   */
  record LeaseReadsServed(long count, long sequential) implements Event {
    public LeaseReadsServed(long count) {
      this(count, 0);
    }
  }

  /**
   * Tick ends a burst of events: it sends what the burst batched and runs timers. The replica loop
   * steps one after every burst and whenever the core's next timer is due.
   */
  record Tick() implements Event {}
}
