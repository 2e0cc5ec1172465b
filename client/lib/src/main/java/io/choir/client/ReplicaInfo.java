package io.choir.client;

import io.choir.proto.ReplicaStatus;
import java.util.List;
import java.util.Map;

/**
 * ReplicaInfo is what one replica reports about itself (what {@code choir status} shows): its role and
 * view, how far its log, commit and applied numbers have come, and the running checksum that lets an
 * operator confirm replicas at the same applied number hold the same data; and its membership: epoch,
 * members and its own role.
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
 * @param epoch the replica's membership epoch (0 from a server without membership changes)
 * @param members the members as the replica knows them (acked ops at the primary only), unmodifiable
 * @param memberRole the replica's own role in the membership (UNKNOWN when it did not say)
 * @param peerTransport the peer transport's mode: "multicast", "unicast" or "auto" (empty: a single
 *     replica, or an older server)
 * @param multicastPeers with auto: the peers reached by multicast now, unmodifiable
 * @param watchers the watches open on the replica now (0 from an older server)
 * @param leases the live leases in its applied state
 * @param leaseKeys the keys attached to those leases
 * @param readMode how the primary confirms linearizable reads: "lease" or "read_index" (empty from an
 *     older server)
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
    long epoch,
    List<Member> members,
    MemberRole memberRole,
    String peerTransport,
    List<Integer> multicastPeers,
    long watchers,
    long leases,
    long leaseKeys,
    String readMode) {

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
   * @param epoch its membership epoch
   * @param members the members as it knows them
   * @param memberRole its own role in the membership
   * @param peerTransport its peer transport's mode
   * @param multicastPeers the peers it reaches by multicast (auto)
   * @param watchers its open watches
   * @param leases its live leases
   * @param leaseKeys the keys attached to its leases
   * @param readMode how it confirms linearizable reads as primary
   */
  public ReplicaInfo {
    readMode = readMode == null ? "" : readMode;
    counters = Map.copyOf(counters);
    members = List.copyOf(members);
    memberRole = memberRole == null ? MemberRole.UNKNOWN : memberRole;
    multicastPeers = List.copyOf(multicastPeers);
  }

  /**
   * ReplicaInfo of an older server: no membership (epoch 0, no members, role UNKNOWN) and no transport
   * fields.
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
  public ReplicaInfo(int id, String role, long view, long op, long commit, long applied, long checksum, long uptimeMs,
      String clusterId, int primaryId, String durability, long keys, Map<String, Long> counters, String version) {
    this(id, role, view, op, commit, applied, checksum, uptimeMs, clusterId, primaryId, durability, keys, counters,
        version, 0, List.of(), MemberRole.UNKNOWN, "", List.of(), 0, 0, 0, "");
  }

  /** Views carry their epoch in their top bits: epoch e's views start at (e - 1) shifted by this. */
  public static final int EPOCH_VIEW_BITS = 48;

  /**
   * The view's number within its epoch: 0 for an epoch's first view (view itself carries the epoch
   * above {@link #EPOCH_VIEW_BITS} bits, so views only rise across epochs; 1125899906842624 is epoch 5's
   * view 0). The first epoch's views are the same numbers either way.
   *
   * @return view within its epoch
   */
  public long viewInEpoch() {
    return inEpoch(view);
  }

  /**
   * The number within its epoch of a view as the server numbers it (see {@link #viewInEpoch()}).
   *
   * @param view a view number as the server reports it
   * @return its number within its epoch
   */
  public static long inEpoch(long view) {
    return view & ((1L << EPOCH_VIEW_BITS) - 1);
  }

  /**
   * The epoch a view number belongs to.
   *
   * @param view a view number as the server reports it
   * @return its epoch, 1 for the first
   */
  public static long epochOfView(long view) {
    return (view >>> EPOCH_VIEW_BITS) + 1;
  }

  static ReplicaInfo fromProto(ReplicaStatus s) {
    return new ReplicaInfo(s.getId(), s.getRole(), s.getView(), s.getOp(), s.getCommit(), s.getApplied(),
        s.getChecksum(), s.getUptimeMs(), s.getClusterId(), s.getPrimaryId(), s.getDurability(),
        s.getKeys(), s.getCountersMap(), s.getVersion(), s.getEpoch(), Membership.members(s.getMembersList()),
        MemberRole.fromNumber(s.getMemberRoleValue()), s.getPeerTransport(), s.getMulticastPeersList(),
        s.getWatchers(), s.getLeases(), s.getLeaseKeys(), s.getReadMode());
  }
}
