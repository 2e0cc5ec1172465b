package io.choir.server.core;

import io.choir.proto.Entry;
import io.choir.proto.MembershipInfo;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * SavedChanges holds the replies of the last applied membership changes of client sessions, by session
 * and request id (DESIGN.md "Membership"): a retry of a change already applied gets the first attempt's
 * reply, never the refusal ("not executed") that checking it against the membership it changed would
 * give. Bounded and in memory; after a restart or a state transfer it is filled again from the
 * membership's recent changes, which the state machine's row keeps, so any replica that becomes the
 * primary answers such a retry.
 */
final class SavedChanges {
  /** How many applied changes' replies are kept for retries. */
  static final int MAX_SAVED_CHANGES = 64;

  private record Key(long clientId, long requestId) {}

  private final Map<Key, Response> replies = new LinkedHashMap<>(16, 0.75f, false) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Key, Response> eldest) {
      return size() > MAX_SAVED_CHANGES;
    }
  };

  /** The saved reply to the change of session clientId with requestId, or null (none, or no session). */
  Response get(long clientId, long requestId) {
    return clientId == 0 ? null : replies.get(new Key(clientId, requestId));
  }

  /** Keeps the reply of applied configuration entry e for a retry of its request (a session's only). */
  void save(Entry e, Response reply) {
    if (e.getClientId() != 0) {
      replies.put(new Key(e.getClientId(), e.getRequestId()), reply);
    }
  }

  /**
   * Keeps an OK reply, in view and with membership info, for each recent change of membership m (its
   * durable row: a restart or an install) not saved yet.
   */
  void remember(Membership m, long view, MembershipInfo info) {
    for (Membership.Applied a : m.recentChanges()) {
      replies.putIfAbsent(new Key(a.clientId(), a.requestId()), Response.newBuilder().setRequestId(a.requestId())
          .setOp(a.op()).setVersion(a.op()).setStatus(Status.OK).setView(view).setMembership(info).build());
    }
  }
}
