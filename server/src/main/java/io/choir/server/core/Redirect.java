package io.choir.server.core;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.ReplicaCore.Mode;

/**
 * Redirect owns the answer of a replica that is not the primary to a client's write or linearizable
 * read (VR Revisited 4.1: only the primary orders requests): NOT_PRIMARY with the primary's address,
 * or, when that hint would send the client to a primary this replica has not heard from lately (it may
 * be dead, paused or cut off, and a view change may follow), UNAVAILABLE without an address, so the
 * client tries another replica instead of waiting on a silent one (issue 9, 2i). Both carry the view.
 */
final class Redirect {
  private final CoreConfig config;
  private final int self;
  private final ViewState views;
  private final PrimaryWatch primaryWatch;
  private final Counters counters;

  Redirect(CoreConfig config, ViewState views, PrimaryWatch primaryWatch, Counters counters) {
    this.config = config;
    this.self = config.replicaId();
    this.views = views;
    this.primaryWatch = primaryWatch;
    this.counters = counters;
  }

  /** The answer to request at nowNs: where the primary is, or that none can be named now. */
  Response notPrimary(Request request, long nowNs) {
    counters.notPrimary++;
    long view = views.view();
    int primary = views.members().primaryOf(view);
    Response.Builder b = Response.newBuilder().setRequestId(request.getRequestId()).setView(view);
    if (views.mode() == Mode.VIEW_CHANGE) {
      // The next primary is not known for sure yet: the client retries with backoff.
      return b.setStatus(Status.UNAVAILABLE)
          .setError("replica " + self + " is in a view change to view " + view).build();
    }
    long silentNs = primaryWatch.silentNs(nowNs);
    if (silentNs > primarySilentHintNs()) {
      return b.setStatus(Status.UNAVAILABLE)
          .setError("replica " + self + " has not heard from replica " + primary + ", the primary of view "
              + view + ", for " + silentNs / 1_000_000 + " ms; a view change may follow").build();
    }
    return b.setStatus(Status.NOT_PRIMARY).setPrimaryAddress(views.members().clientAddress(primary))
        .setError("replica " + self + " is a backup; the primary of view " + view + " is replica " + primary)
        .build();
  }

  /** How long a primary may be silent before a backup stops pointing clients at it. */
  private long primarySilentHintNs() {
    return Math.max(3 * config.heartbeatIntervalNs, config.quorumTimeoutNs / 2);
  }

  /**
   * A primary's answer when it has heard from fewer than a quorum (CheckQuorum): UNAVAILABLE, counted,
   * so the client tries again or elsewhere rather than wait on a primary that may be cut off.
   */
  Response noQuorum(Request request, int live) {
    counters.noQuorum++;
    return RequestValidator.refuse(request, Status.UNAVAILABLE, "no quorum: the primary has heard from " + live
        + " of " + views.members().voterCount() + " voters (needs " + views.members().quorum() + ")");
  }
}
