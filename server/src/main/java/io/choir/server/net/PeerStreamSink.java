package io.choir.server.net;

import io.choir.proto.PeerEnvelope;

/**
 * PeerStreamSink takes the peer messages that arrive over TCP (PeerEnvelope frames on a connection
 * to this replica's peer address whose first envelope is a peer message, not a state transfer
 * request) from the listener ({@link StateTransferServer}) to the transport, which checks and counts
 * them like datagrams and hands them to the core ({@link PeerTransport#streamSink()}). Any thread.
 */
public interface PeerStreamSink {
  /** What became of one envelope. */
  enum Verdict {
    /** Checked and handed to the core. */
    DELIVERED,
    /** Dropped and counted (queue full, unknown type, a test partition): the peer may go on. */
    DROPPED,
    /** Not from a peer of this cluster (version, cluster id, sender): counted; close the connection. */
    REFUSED
  }

  /** The largest frame a peer stream may carry; a longer one closes the connection. */
  int maxFrameBytes();

  /** Checks one envelope and hands it on (see {@link Verdict}). */
  Verdict onEnvelope(PeerEnvelope envelope);

  /** Counts a stream-level drop by reason (e.g. frame_too_large, malformed, sender_changed). */
  void dropped(String reason);
}
