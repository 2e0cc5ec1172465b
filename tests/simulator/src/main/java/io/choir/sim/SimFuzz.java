package io.choir.sim;

import com.google.protobuf.ByteString;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.server.core.Event;
import java.util.OptionalLong;
import java.util.function.Consumer;

/**
 * SimFuzz is the message-level fuzz's part of a run ({@link Simulation#fuzzed}): it owns the mutator,
 * checks while the clients run that no core's buffers outgrow their bounds, and, once the healed
 * cluster has converged, sends one more write at the primary and says when it has applied everywhere:
 * a fuzzed run ends when the cluster serves again, not merely when it agrees.
 */
final class SimFuzz {
  /** How long the final write may go unapplied before it is sent again (a view change may refuse it). */
  private static final long FINAL_WRITE_RETRY_NS = 500 * Simulation.MS;

  /** What a converged fuzzed run does next. */
  enum Ending {
    /** The final write was (re)sent: run on. */
    WRITE_SENT,
    /** The final write has not applied yet and is not due again: run on, within the deadline. */
    WAITING,
    /** The final write applied: the run is over. */
    DONE
  }

  final SimMutator mutator;
  /** The primary's applied op when the final write first went in (empty: not sent yet). */
  private OptionalLong finalWriteAfter = OptionalLong.empty();
  /** When the final write was last sent (it is sent again while it has not applied: it may be refused). */
  private long finalWriteAtNs;

  SimFuzz(SimMutator mutator) {
    this.mutator = mutator;
  }

  /** Stops the mutations (the clients are done: the cluster is healed and must converge). */
  void stop() {
    mutator.on = false;
  }

  /** True when the mutations include plausible lies (states may split for good). */
  boolean lies() {
    return mutator.lies;
  }

  /** Every live core's buffers within their bounds (SimMutator: no input grows memory without bound). */
  void checkBounds(SimReplica[] nodes, long nowNs, Consumer<String> violations) {
    for (int id = 1; id < nodes.length; id++) {
      if (nodes[id].up) {
        String why = nodes[id].core.boundsViolation();
        if (why != null) {
          violations.accept("replica " + id + " at t=" + nowNs / Simulation.MS + "ms: " + why);
        }
      }
    }
  }

  /**
   * After convergence: the first time, the final write goes to primary; then it goes again while it has
   * not applied and its retry is due (refused by a view change, no quorum yet, or lost with the primary),
   * and the run is done once the primary has applied past the op it had before the first send.
   */
  Ending afterConvergence(SimReplica primary, long nowNs) {
    if (finalWriteAfter.isEmpty()) {
      finalWriteAfter = OptionalLong.of(primary.core.appliedOp());
      sendFinalWrite(primary, nowNs);
      return Ending.WRITE_SENT;
    }
    long after = finalWriteAfter.getAsLong();
    if (primary.core.appliedOp() <= after && nowNs - finalWriteAtNs >= FINAL_WRITE_RETRY_NS) {
      sendFinalWrite(primary, nowNs);
      return Ending.WRITE_SENT;
    }
    return primary.core.appliedOp() > after ? Ending.DONE : Ending.WAITING;
  }

  /** The final write at the primary, on no client connection (its reply is dropped). */
  private void sendFinalWrite(SimReplica primary, long nowNs) {
    finalWriteAtNs = nowNs;
    primary.post(new Event.ClientRequest(Long.MAX_VALUE - 1, Request.newBuilder().setRequestId(1)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("final"))
            .setValue(ByteString.copyFromUtf8("written after the fuzz")))
        .build()));
  }
}
