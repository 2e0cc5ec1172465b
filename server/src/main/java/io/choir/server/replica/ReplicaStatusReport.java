package io.choir.server.replica;

import static io.choir.server.config.ServerConfig.CLUSTER_ID;
import static io.choir.server.config.ServerConfig.DURABILITY;
import static io.choir.server.config.ServerConfig.LINEARIZABLE_READS;
import static io.choir.server.config.ServerConfig.REPLICA_ID;

import io.choir.proto.MembershipInfo;
import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.config.ServerConfig;
import io.choir.server.core.ReplicaCore;
import io.choir.server.net.ClientConnections;
import io.choir.server.net.DirectMemory;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Storage;
import io.choir.server.watch.WatchHub;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * ReplicaStatusReport builds a replica's answer to a STATUS request: who it is (id, role, view, op
 * numbers, checksum, durability, version, uptime, epoch, members and its own member role, the peer
 * transport's mode and, with auto, the peers reached by multicast), its gauges (the open watchers, the
 * live leases and their keys) and every counter: the core's, the storage stage's, the client
 * connections' and every choir.* meter of the registry under its name without the prefix
 * (choir.datagrams.sent becomes datagrams_sent; the tagged counters of one name summed). The names are
 * the status interface: they do not change.
 */
final class ReplicaStatusReport {
  private final ServerConfig config;
  private final ReplicaCore core;
  private final Storage storage;
  private final StorageStage storageStage;
  private final ClientConnections connections;
  /** The peer side (null: a single replica). */
  private final ReplicaPeers peers;
  private final MeterRegistry metrics;
  private final long startNs;
  /** The open watches and the lease table (the watchers, leases and lease_keys gauges). */
  private final WatchHub watches;
  private final KvStateMachine stateMachine;

  /**
   * A report of the replica started at startNs (System.nanoTime()); peers is null for a single replica;
   * watches and stateMachine give the watchers and lease gauges.
   */
  ReplicaStatusReport(ServerConfig config, ReplicaCore core, Storage storage, StorageStage storageStage,
      ClientConnections connections, ReplicaPeers peers, MeterRegistry metrics, long startNs, WatchHub watches,
      KvStateMachine stateMachine) {
    this.peers = peers;
    this.watches = watches;
    this.stateMachine = stateMachine;
    this.config = config;
    this.core = core;
    this.storage = storage;
    this.storageStage = storageStage;
    this.connections = connections;
    this.metrics = metrics;
    this.startNs = startNs;
  }

  /** The status reply to request; on the replica loop's thread (it reads the core), or in tests. */
  Response reply(Request request) {
    ReplicaStatus.Builder s = ReplicaStatus.newBuilder()
        .setId(config.get(REPLICA_ID))
        .setRole(core.role())
        .setView(core.view())
        .setOp(core.lastOp())
        .setCommit(core.commitOp())
        .setApplied(core.appliedOp())
        .setChecksum(core.checksum())
        .setUptimeMs(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs))
        .setClusterId(config.get(CLUSTER_ID))
        .setPrimaryId(core.primaryId())
        .setDurability(config.get(DURABILITY).name().toLowerCase(Locale.ROOT))
        .setKeys(storage.approximateKeyCount())
        .setVersion(version());
    gauges(s, watches, stateMachine);
    membership(s, core);
    if (peers != null) {
      s.setPeerTransport(peers.transportMode().name().toLowerCase(Locale.ROOT))
          .addAllMulticastPeers(peers.multicastPeers());
    }
    var c = core.counters();
    s.setReadMode(config.get(LINEARIZABLE_READS)).setLeaseReads(c.leaseReads).setReadIndexReads(c.readIndexReads);
    s.putCounters("requests", c.requests)
        .putCounters("writes", c.writes)
        .putCounters("reads", c.reads)
        .putCounters("busy", c.busy)
        .putCounters("invalid", c.invalid)
        .putCounters("too_large", c.tooLarge)
        .putCounters("duplicates", c.duplicates)
        .putCounters("read_timeouts", c.readTimeouts)
        .putCounters("log_batches", c.batches)
        .putCounters("fsyncs", storageStage.fsyncs())
        .putCounters("connections", connections.size())
        .putCounters("client_reply_bytes", connections.replyBytes())
        .putCounters("client_frame_bytes", connections.frameBytesHeld())
        .putCounters("direct_memory_netty_bytes", DirectMemory.netty())
        .putCounters("direct_memory_jdk_bytes", DirectMemory.jdk())
        .putCounters("queued_writes", core.queuedWrites())
        .putCounters("lag", core.lag())
        .putCounters("not_primary", c.notPrimary)
        .putCounters("no_quorum", c.noQuorum)
        .putCounters("prepares_sent", c.preparesSent)
        .putCounters("heartbeats_sent", c.heartbeatsSent)
        .putCounters("nacks_sent", c.nacksSent)
        .putCounters("nacks_received", c.nacksReceived)
        .putCounters("retransmits", c.retransmits)
        .putCounters("retransmits_multicast", c.retransmitsMulticast)
        .putCounters("retransmits_from_log", c.retransmitsFromLog)
        .putCounters("gaps", c.gapsDetected)
        .putCounters("duplicate_entries", c.duplicateEntries)
        .putCounters("out_of_order_dropped", c.outOfOrderDropped)
        .putCounters("dropped_stale_view", c.droppedStaleView)
        .putCounters("dropped_future_view", c.droppedFutureView)
        .putCounters("dropped_unexpected", c.droppedUnexpected)
        .putCounters("state_transfers", c.stateTransfers)
        .putCounters("view_changes", core.viewChanges())
        .putCounters("view_changes_started", c.viewChangesStarted)
        .putCounters("last_view_change_unix_ms", core.lastViewChangeNs() < 0 ? 0
            : System.currentTimeMillis() - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - core.lastViewChangeNs()))
        .putCounters("last_normal_view", core.lastNormalView())
        .putCounters("read_rounds", c.readRounds)
        .putCounters("lease_reads", c.leaseReads)
        .putCounters("lease_reads_on_event_loop", c.leaseReadsOnEventLoop)
        .putCounters("sequential_reads_on_event_loop", c.sequentialReadsOnEventLoop)
        .putCounters("read_index_reads", c.readIndexReads)
        .putCounters("dropped_newer_view_while_sticky", c.droppedNewerViewWhileSticky)
        .putCounters("pre_votes_started", c.preVotesStarted)
        .putCounters("pre_votes_granted", c.preVotesGranted)
        .putCounters("dropped_sticky", c.droppedSticky)
        .putCounters("unstick_notices", c.unstickNotices)
        .putCounters("view_changes_refused", c.viewChangesRefused)
        .putCounters("view_changes_unfetchable", c.viewChangesUnfetchable)
        .putCounters("non_canonical_entries", c.nonCanonicalEntries)
        .putCounters("peer_rejected", c.peerRejected)
        .putCounters("resends_throttled", c.resendsThrottled)
        .putCounters("resends_over_credit", c.resendsOverCredit)
        .putCounters("resends_already_acked", c.resendsAlreadyAcked)
        .putCounters("member_changes", c.memberChanges)
        .putCounters("member_changes_refused", c.memberChangesRefused)
        .putCounters("configuration_entries_refused", c.configurationEntriesRefused)
        .putCounters("epoch_switches", c.epochSwitches)
        .putCounters("dropped_old_epoch", c.droppedOldEpoch)
        .putCounters("told_former_members", c.toldFormerMembers)
        .putCounters("unheard_member_notices", c.unheardMemberNotices)
        .putCounters("heard_later_epoch", c.heardLaterEpoch);
    core.peerRejections().forEach((reason, n) -> s.putCounters("peer_rejected_" + reason, n));
    meterCounters(s, metrics);
    return Response.newBuilder().setRequestId(request.getRequestId()).setStatus(Status.OK)
        .setReplicaStatus(s).build();
  }

  /**
   * Every counter of metrics under its name without the prefix (choir.datagrams.sent becomes
   * datagrams_sent); the counters of one name with different tags (choir.watch.refused by reason) are
   * summed, so the status shows their total rather than whichever came last.
   */
  static void meterCounters(ReplicaStatus.Builder s, MeterRegistry metrics) {
    Map<String, Long> sums = new TreeMap<>();
    for (Meter m : metrics.getMeters()) {
      if (m instanceof Counter counter) {
        sums.merge(m.getId().getName().replace("choir.", "").replace('.', '_'), (long) counter.count(), Long::sum);
      }
    }
    s.putAllCounters(sums);
  }

  /** The watchers open now, the live leases and their keys (any thread: each is a volatile read). */
  static void gauges(ReplicaStatus.Builder s, WatchHub watches, KvStateMachine stateMachine) {
    s.setWatchers(watches.watchers()).setLeases(stateMachine.leaseCount()).setLeaseKeys(stateMachine.leaseKeyCount());
  }

  /**
   * The membership part of a status (DESIGN.md "Membership"): the replica's epoch, its members as
   * ListMembers shows them (acked ops at the primary) and its own role (VOTER, LEARNER, RETIRED).
   */
  static void membership(ReplicaStatus.Builder s, ReplicaCore core) {
    MembershipInfo info = core.membershipInfo();
    s.setEpoch(info.getEpoch()).addAllMembers(info.getMembersList()).setMemberRole(core.memberRole());
  }

  private static String version() {
    String v = ReplicaServer.class.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }
}
