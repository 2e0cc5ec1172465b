package io.choir.server.core;

import com.google.protobuf.ByteString;
import io.choir.proto.ReadConsistency;
import io.choir.proto.Request;

/**
 * LeaseReadWindow is what the core promises, at the end of a burst, about linearizable reads that do
 * not pass through it (docs/design.md "Lease reads on the event loop"): until untilNs (the core's clock),
 * a read of a single key may be answered from the applied state once it holds requiredOp. The primary's
 * lease holds until then ({@link PrimaryLease}): no newer view can form before it, and every write
 * acknowledged so far is either of this view (a reply is sent only after its entry is applied here) or
 * at most requiredOp (the read index: the commit number, and the floor of the view's start). The
 * window is taken before the burst's effects are carried out, so nothing the core decided in that burst
 * (joining a view change, granting a pre-vote, a configuration entry) has left this replica while an
 * older window is still in use. {@link #NONE} admits nothing.
 *
 * <p>It also says whether sequential Gets may be answered without the core ({@link #sequential}): the
 * core answers one at any replica that is not recovering once the applied number reaches the op the
 * client saw (its min_op), and so may the network edge, on a backup as on the primary.
 */
public record LeaseReadWindow(long untilNs, long requiredOp, boolean sequential) {
  /** Admits no read: the replica is recovering or refuses requests (or a deliberate breakage). */
  public static final LeaseReadWindow NONE = new LeaseReadWindow(Long.MIN_VALUE, Long.MAX_VALUE, false);
  /** Admits sequential reads only: no lease here (a backup, read_index mode, the lease ran out). */
  public static final LeaseReadWindow SEQUENTIAL_ONLY = new LeaseReadWindow(Long.MIN_VALUE, Long.MAX_VALUE, true);

  /** A lease window that also admits sequential reads. */
  public LeaseReadWindow(long untilNs, long requiredOp) {
    this(untilNs, requiredOp, true);
  }

  /** True when a sequential read that saw minOp may be answered from a state at appliedOp. */
  public boolean admitsSequential(long appliedOp, long minOp) {
    return sequential && appliedOp >= minOp;
  }

  /** True when a read that arrives at nowNs may be answered from a state at appliedOp. */
  public boolean admits(long nowNs, long appliedOp) {
    return untilNs != Long.MIN_VALUE && nowNs - untilNs < 0 && appliedOp >= requiredOp;
  }

  /**
   * True when request is a read the window may serve: a linearizable Get of a key the core would
   * accept (the checks of {@link RequestValidator} for a Get). Anything else goes to the core, which
   * answers it as always (refusals included).
   */
  public static boolean eligible(Request request, int maxKeyBytes) {
    return request.getConsistency() == ReadConsistency.LINEARIZABLE && validGet(request, maxKeyBytes);
  }

  /** As {@link #eligible}, for a sequential Get (the window's {@link #sequential} part). */
  public static boolean eligibleSequential(Request request, int maxKeyBytes) {
    return request.getConsistency() == ReadConsistency.SEQUENTIAL && validGet(request, maxKeyBytes);
  }

  private static boolean validGet(Request request, int maxKeyBytes) {
    if (request.getOpCase() != Request.OpCase.GET) {
      return false;
    }
    if (request.getClientId() != 0 && request.getRequestId() == 0
        || request.getFirstIncomplete() > request.getRequestId()) {
      return false;
    }
    ByteString key = request.getGet().getKey();
    return !key.isEmpty() && key.size() <= maxKeyBytes;
  }
}
