package io.choir.sim;

import io.choir.proto.KeyValue;
import io.choir.proto.MemberRole;
import io.choir.server.core.ReplicaCore;
import io.choir.server.statemachine.TransferRows;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.StorageSnapshot;
import java.util.ArrayList;
import java.util.List;

/**
 * SimConvergence is the end of a run's check, after healing everything: when the replicas have
 * converged (all up in the primary's view, at its commit, with its checksum), and whether the converged
 * replicas hold the same state (data and client table, not only the same checksum). Retired replicas
 * (no member of their epoch) and replicas crashed for good are not counted.
 */
final class SimConvergence {
  private SimConvergence() {}

  /**
   * All replicas are up in the primary p's view, at its commit, and agree on the checksum (lying: a fuzzed
   * run with lies, whose states may split for good, needs no equal checksums). nodes[0] is unused.
   */
  static boolean converged(SimReplica[] nodes, SimReplica p, boolean lying) {
    if (p == null || p.core.lastOp() != p.core.commitOp() || p.core.appliedOp() != p.core.commitOp()) {
      return false;
    }
    for (int id = 1; id < nodes.length; id++) {
      SimReplica n = nodes[id];
      if (retired(n)) {
        continue;
      }
      if (!n.up || n.core.view() != p.core.view() || n.core.mode() != ReplicaCore.Mode.NORMAL
          || n.core.appliedOp() != p.core.appliedOp() || n.core.checksum() != p.core.checksum() && !lying) {
        return false;
      }
    }
    return true;
  }

  /**
   * At convergence every replica holds the same data (keys, values, versions) and the same client
   * table (sessions and saved replies): equal checksums say the same log was applied, this says the
   * same state came out of it, state transfers included. Returns a violation per replica that differs
   * from replica 1 (none: the same state everywhere).
   */
  static List<String> stateDifferences(SimReplica[] nodes) {
    List<String> violations = new ArrayList<>();
    String first = null;
    for (int id = 1; id < nodes.length; id++) {
      if (retired(nodes[id])) {
        continue;
      }
      String state = stateOf(nodes[id]);
      if (first == null) {
        first = state;
      } else if (!state.equals(first)) {
        violations.add("at convergence replica " + id + " holds another state than replica 1:\n  1: "
            + abbreviate(first) + "\n  " + id + ": " + abbreviate(state));
      }
    }
    return violations;
  }

  /**
   * A replica that is no member of its epoch (removed, or a joiner never added; DESIGN.md "Membership")
   * gets no log and is not waited for; nor is one crashed for good (it never comes back).
   */
  private static boolean retired(SimReplica n) {
    return n.gone || n.core != null && n.core.memberRole() == MemberRole.RETIRED;
  }

  private static String stateOf(SimReplica node) {
    StringBuilder sb = new StringBuilder();
    try (StorageSnapshot snap = node.storage.snapshot()) {
      byte[] from = new byte[0];
      while (true) {
        List<KeyValue> chunk = snap.scanData(from, 1000, 1 << 20);
        if (chunk.isEmpty()) {
          break;
        }
        for (KeyValue kv : chunk) {
          sb.append(kv.getKey().toStringUtf8()).append('=').append(kv.getValue().toStringUtf8()).append('@')
              .append(kv.getVersion()).append(' ');
        }
        from = Bytes.successor(chunk.get(chunk.size() - 1).getKey().toByteArray());
      }
      sb.append("| clients ").append(TransferRows.clientTable(snap).toString().replace('\n', ' '));
    }
    return sb.toString();
  }

  private static String abbreviate(String s) {
    return s.length() > 600 ? s.substring(0, 600) + "..." : s;
  }
}
