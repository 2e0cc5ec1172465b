package io.choir.sim;

import io.choir.proto.Entry;
import io.choir.server.core.Event;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * SimAgreement checks, while the run goes, that the replicas apply the same history: no two apply
 * different entries at one op, and equal applied ops give equal checksums. It owns what it has seen
 * applied at each op, by every replica and incarnation. In a fuzzed run with lies (members that lie may
 * split the states for good: VR does not survive Byzantine members) a split is counted, not reported.
 */
final class SimAgreement {
  private final Map<Long, Long> entryHashAt = new HashMap<>();
  private final Map<Long, Long> checksumAt = new HashMap<>();
  private final boolean lying;
  private final SimTotals totals;
  private final SimScheduler clock;
  private final Consumer<String> violations;

  SimAgreement(boolean lying, SimTotals totals, SimScheduler clock, Consumer<String> violations) {
    this.lying = lying;
    this.totals = totals;
    this.clock = clock;
    this.violations = violations;
  }

  /** node is about to apply entries: each must be the one any other replica applied at its op. */
  void applying(SimReplica node, List<Entry> entries) {
    for (Entry e : entries) {
      long hash = Arrays.hashCode(e.toByteArray());
      Long seen = entryHashAt.putIfAbsent(e.getOp(), hash);
      if (seen != null && seen != hash && lying) {
        totals.bump("fuzz_split_entries");
      } else if (seen != null && seen != hash) {
        violations.accept("replica " + node.id + " applied a different entry at op " + e.getOp()
            + " than another replica (t=" + clock.now() / Simulation.MS + "ms)");
      }
    }
  }

  /** node applied up to an op: its checksum there must be the one any other replica had. */
  void applied(SimReplica node, Event.Applied applied) {
    Long seen = checksumAt.putIfAbsent(applied.op(), applied.checksum());
    if (seen != null && seen != applied.checksum() && lying) {
      totals.bump("fuzz_split_checksums");
    } else if (seen != null && seen != applied.checksum()) {
      violations.accept("replica " + node.id + " has checksum " + Long.toHexString(applied.checksum()) + " at applied "
          + applied.op() + ", another had " + Long.toHexString(seen));
    }
  }
}
