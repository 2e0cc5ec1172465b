package io.choir.server.net;

/**
 * TransportMode is how the peer transport carries a message to all (the core's send to 0): the
 * setting peer_transport. The core never sees it.
 */
public enum TransportMode {
  /** One IP multicast datagram (fragments for a big PREPARE): the default. */
  MULTICAST,
  /**
   * One unicast datagram to every other member (a body too big for one over each member's peer
   * stream); the multicast group is never joined.
   */
  UNICAST,
  /**
   * Multicast to the peers that answer this replica's multicast probes, unicast to the others
   * ({@link MulticastProbes}).
   */
  AUTO
}
