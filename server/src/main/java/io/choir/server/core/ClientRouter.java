package io.choir.server.core;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.ReplicaCore.Mode;

/**
 * ClientRouter owns the rules every client request meets before a role handles it, and hands it to
 * that role: the request's own checks (RequestValidator: TOO_LARGE, INVALID), the refusal of a replica
 * that is recovering (VR Revisited 4.3: it answers nothing until it has rejoined), and the dispatch of
 * reads to ReadPath and writes to WritePath (VR 4.1).
 */
final class ClientRouter {
  private final int self;
  private final RequestValidator validator;
  private final ViewState views;
  private final ReadPath reads;
  private final WritePath writes;
  private final MembershipPath membership;
  private final Counters counters;

  ClientRouter(CoreConfig config, RequestValidator validator, ViewState views, ReadPath reads,
      WritePath writes, MembershipPath membership, Counters counters) {
    this.membership = membership;
    this.self = config.replicaId();
    this.validator = validator;
    this.views = views;
    this.reads = reads;
    this.writes = writes;
    this.counters = counters;
  }

  void onClientRequest(Event.ClientRequest event, long nowNs, Effects out) {
    Request request = event.request();
    counters.requests++;
    Response refusal = validator.check(request);
    if (refusal != null) {
      if (refusal.getStatus() == Status.TOO_LARGE) {
        counters.tooLarge++;
      } else {
        counters.invalid++;
      }
      out.reply(event.connectionId(), refusal);
      return;
    }
    if (views.mode() == Mode.RECOVERING) {
      out.reply(event.connectionId(), RequestValidator.refuse(request,
          Status.UNAVAILABLE, "replica " + self + " is recovering"));
      return;
    }
    switch (request.getOpCase()) {
      case GET, SCAN, LEASE_LIST -> reads.onRead(event, nowNs, out);
      case PUT, DELETE, COMPARE_AND_SET, BATCH, REGISTER_SESSION, CLOSE_SESSION,
          LEASE_GRANT, LEASE_KEEP_ALIVE, LEASE_REVOKE -> writes.onWrite(event, nowNs, out);
      case MEMBER_CHANGE -> membership.onMemberChange(event, nowNs, out);
      case LIST_MEMBERS -> membership.onListMembers(event, out);
      default -> {
        counters.invalid++;
        out.reply(event.connectionId(), RequestValidator.refuse(request,
            Status.INVALID, "operation " + request.getOpCase() + " is not handled by the core"));
      }
    }
  }
}
