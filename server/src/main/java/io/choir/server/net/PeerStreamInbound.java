package io.choir.server.net;

import io.choir.proto.MessageType;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.wire.DatagramHeader;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.Set;

/**
 * PeerStreamInbound is the transport's side of the peer streams that arrive over TCP (accepted by the
 * {@link StateTransferServer} on the peer port): each envelope passes the checks a datagram passes
 * (protocol version, cluster id, sender a member and not this replica, not cut off by a test fault, a
 * known type) and is handed to the {@link PeerSink}, or dropped and counted by reason under
 * choir.peer_stream.dropped.* ({@link PeerDrops}). Any thread.
 */
final class PeerStreamInbound implements PeerStreamSink {
  private final int selfId;
  private final long clusterIdHash;
  private volatile Set<Integer> members;
  private final int maxFrameBytes;
  private final PeerSink sink;
  private final TestPeerFaults faults;
  private final PeerDrops drops;
  private final Counter received;

  /** Replaces the members whose envelopes are accepted (a membership change; any thread). */
  void updateMembers(Set<Integer> ids) {
    members = Set.copyOf(ids);
  }

  PeerStreamInbound(int selfId, long clusterIdHash, Set<Integer> members, int maxFrameBytes, PeerSink sink,
      TestPeerFaults faults, PeerDrops drops, MeterRegistry metrics) {
    this.selfId = selfId;
    this.clusterIdHash = clusterIdHash;
    this.members = Set.copyOf(members);
    this.maxFrameBytes = maxFrameBytes;
    this.sink = sink;
    this.faults = faults;
    this.drops = drops;
    this.received = metrics.counter("choir.peer_stream.received");
  }

  @Override
  public int maxFrameBytes() {
    return maxFrameBytes;
  }

  @Override
  public Verdict onEnvelope(PeerEnvelope envelope) {
    if (envelope.getProtocolVersion() != DatagramHeader.PROTOCOL_VERSION) {
      drops.stream("bad_version");
      return Verdict.REFUSED;
    }
    if (envelope.getClusterId() != clusterIdHash) {
      drops.stream("foreign_cluster");
      return Verdict.REFUSED;
    }
    int sender = envelope.getSender();
    if (sender == selfId || !members.contains(sender)) {
      drops.stream("unknown_sender");
      return Verdict.REFUSED;
    }
    if (faults.blocks(sender)) {
      drops.stream("test_partition");
      return Verdict.DROPPED;
    }
    MessageType type = PeerEnvelopes.type(envelope);
    if (type == null) {
      drops.stream("unknown_type");
      return Verdict.DROPPED;
    }
    if (!sink.offerPeer(sender, envelope.getView(), type, PeerEnvelopes.body(envelope))) {
      drops.stream("queue_full");
      return Verdict.DROPPED;
    }
    received.increment();
    return Verdict.DELIVERED;
  }

  @Override
  public void dropped(String reason) {
    drops.stream(reason);
  }

  /** Envelopes received over peer streams and handed to the core. */
  long received() {
    return (long) received.count();
  }
}
