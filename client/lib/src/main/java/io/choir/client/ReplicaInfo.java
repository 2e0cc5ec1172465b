package io.choir.client;

import io.choir.proto.ReplicaStatus;
import java.util.List;
import java.util.Map;

/**
 * ReplicaInfo is what one replica reports about itself (what {@code choir status} shows): its role and
 * view, how far its log, commit and applied numbers have come, and the running checksum that lets an
 * operator confirm replicas at the same applied number hold the same data.
 *
 * @param id the replica id
 * @param role "primary", "backup", "view-change" or "recovering"
 * @param view the replica's current view
 * @param op the highest op in its log
 * @param commit the highest op it knows committed
 * @param applied the highest op applied to its data
 * @param checksum running checksum over applied entries; equal applied implies equal checksum
 * @param uptimeMs time since the replica process started, in milliseconds
 * @param clusterId the cluster's id
 * @param primaryId the id of the replica it believes is primary
 * @param durability the durability mode it runs with
 * @param keys the number of keys it holds
 * @param counters counters by name (requests, writes, reads, busy, ...), unmodifiable
 * @param version the server's software version
 * @param peerTransport the peer transport's mode: "multicast", "unicast" or "auto" (empty: a single
 *     replica, or an older server)
 * @param multicastPeers with auto: the peers reached by multicast now, unmodifiable
 */
public record ReplicaInfo(
    int id,
    String role,
    long view,
    long op,
    long commit,
    long applied,
    long checksum,
    long uptimeMs,
    String clusterId,
    int primaryId,
    String durability,
    long keys,
    Map<String, Long> counters,
    String version,
    String peerTransport,
    List<Integer> multicastPeers) {

  /**
   * ReplicaInfo; the counters are copied into an unmodifiable map.
   *
   * @param id the replica id
   * @param role the replica's role
   * @param view its view
   * @param op its highest log op
   * @param commit its commit number
   * @param applied its applied number
   * @param checksum its running checksum
   * @param uptimeMs its uptime in milliseconds
   * @param clusterId the cluster id
   * @param primaryId the primary it believes in
   * @param durability its durability mode
   * @param keys its key count
   * @param counters its counters
   * @param version its software version
   * @param peerTransport its peer transport's mode
   * @param multicastPeers the peers it reaches by multicast (auto)
   */
  public ReplicaInfo {
    counters = Map.copyOf(counters);
    multicastPeers = List.copyOf(multicastPeers);
  }

  /**
   * ReplicaInfo without the transport fields (an older server).
   *
   * @param id the replica id
   * @param role the replica's role
   * @param view its view
   * @param op its highest log op
   * @param commit its commit number
   * @param applied its applied number
   * @param checksum its running checksum
   * @param uptimeMs its uptime in milliseconds
   * @param clusterId the cluster id
   * @param primaryId the primary it believes in
   * @param durability its durability mode
   * @param keys its key count
   * @param counters its counters
   * @param version its software version
   */
  public ReplicaInfo(int id, String role, long view, long op, long commit, long applied, long checksum,
      long uptimeMs, String clusterId, int primaryId, String durability, long keys, Map<String, Long> counters,
      String version) {
    this(id, role, view, op, commit, applied, checksum, uptimeMs, clusterId, primaryId, durability, keys, counters,
        version, "", List.of());
  }

  static ReplicaInfo fromProto(ReplicaStatus s) {
    return new ReplicaInfo(s.getId(), s.getRole(), s.getView(), s.getOp(), s.getCommit(), s.getApplied(),
        s.getChecksum(), s.getUptimeMs(), s.getClusterId(), s.getPrimaryId(), s.getDurability(),
        s.getKeys(), s.getCountersMap(), s.getVersion(), s.getPeerTransport(), s.getMulticastPeersList());
  }
}
