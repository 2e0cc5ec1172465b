package io.choir.sim;

import java.util.HashMap;
import java.util.Map;

/**
 * SimTotals counts what happened in one run, by name: the result's stats, which SimulationTest sums into
 * its totals line. It owns the counts of the simulated world's events (bumped as they happen) and the
 * replicas' own counters, added per incarnation (before a crash and at the end) because a restarted core
 * counts from zero again.
 */
final class SimTotals {
  private final Map<String, Long> stats = new HashMap<>();
  /** View changes completed by every incarnation of every replica, and the highest view any reached. */
  private long viewChangesCompleted;
  private long maxView;

  /** Counts one more of stat; returns the new count. */
  /** Adds n to stat (a figure a checker counted). */
  void add(String stat, long n) {
    stats.merge(stat, n, Long::sum);
  }

  long bump(String stat) {
    return stats.merge(stat, 1L, Long::sum);
  }

  /** Adds what node's current incarnation counted to the run's totals (before a crash, at the end). */
  void noteCounters(SimReplica node) {
    if (!node.up) {
      return;
    }
    var c = node.core.counters();
    stats.merge("nacks_sent", c.nacksSent, Long::sum);
    stats.merge("retransmits", c.retransmits, Long::sum);
    stats.merge("retransmits_multicast", c.retransmitsMulticast, Long::sum);
    stats.merge("retransmits_from_log", c.retransmitsFromLog, Long::sum);
    stats.merge("gaps", c.gapsDetected, Long::sum);
    stats.merge("no_quorum", c.noQuorum, Long::sum);
    stats.merge("view_changes_started", c.viewChangesStarted, Long::sum);
    stats.merge("pre_votes_started", c.preVotesStarted, Long::sum);
    stats.merge("dropped_sticky", c.droppedSticky, Long::sum);
    stats.merge("dropped_newer_view_while_sticky", c.droppedNewerViewWhileSticky, Long::sum);
    stats.merge("lease_reads", c.leaseReads, Long::sum);
    stats.merge("lease_reads_on_event_loop", c.leaseReadsOnEventLoop, Long::sum);
    stats.merge("lease_reads_waited", node.leaseReadsWaited, Long::sum);
    stats.merge("sequential_reads_on_event_loop", c.sequentialReadsOnEventLoop, Long::sum);
    stats.merge("read_index_reads", c.readIndexReads, Long::sum);
    stats.merge("read_rounds", c.readRounds, Long::sum);
    stats.merge("busy", c.busy, Long::sum);
    stats.merge("peer_rejected", c.peerRejected, Long::sum);
    stats.merge("resends_throttled", c.resendsThrottled, Long::sum);
    stats.merge("resends_over_credit", c.resendsOverCredit, Long::sum);
    stats.merge("resends_already_acked", c.resendsAlreadyAcked, Long::sum);
    stats.merge("view_changes_refused", c.viewChangesRefused, Long::sum);
    node.core.peerRejections().forEach((reason, count) -> {
      if (count > 0) {
        stats.merge("peer_rejected_" + reason, count, Long::sum);
      }
    });
    viewChangesCompleted += node.core.viewChanges();
    maxView = Math.max(maxView, node.core.view());
  }

  /** Adds what the message-level fuzz did (a fuzzed run). */
  void noteFuzz(SimMutator mutator) {
    stats.put("fuzz_messages", mutator.seen);
    stats.put("fuzz_mutated", mutator.mutated());
    stats.put("fuzz_field_mutations", mutator.fieldMutations);
    stats.put("fuzz_byte_mutations", mutator.byteMutations);
    stats.put("fuzz_unparseable", mutator.unparseable);
    stats.put("fuzz_excluded", mutator.excluded);
  }

  /** The run's stats at its end: the counts, the view changes, and how many events and simulated ms it took. */
  Map<String, Long> finish(SimScheduler clock) {
    stats.put("view_changes", viewChangesCompleted);
    stats.put("max_view", maxView);
    stats.put("events", clock.ran());
    stats.put("sim_ms", clock.now() / Simulation.MS);
    return stats;
  }
}
