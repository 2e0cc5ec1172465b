package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.choir.proto.Entry;
import io.choir.proto.LeaseGrant;
import io.choir.proto.LeaseKeepAlive;
import io.choir.proto.LeaseList;
import io.choir.proto.LeaseRevoke;
import io.choir.proto.Request;
import io.choir.proto.Status;
import org.junit.jupiter.api.Test;

/**
 * How the core admits lease requests: the validator refuses a TTL of 0, a negative one or one above a
 * day, and a keep-alive or revoke without an id; a grant's entry carries the primary's shortest TTL;
 * only a revoke from the lease expiry's own connection becomes a LeaseExpire entry.
 */
class LeaseAdmissionTest {
  private final CoreConfig config = CoreKit.config(1, 3);
  private final RequestValidator validator = new RequestValidator(config);

  private static Request grant(long ttlMs) {
    return Request.newBuilder().setLeaseGrant(LeaseGrant.newBuilder().setTtlMs(ttlMs)).build();
  }

  @Test
  void refusesBadLeaseRequestsBeforeTheLog() {
    assertEquals(Status.INVALID, validator.check(grant(0)).getStatus());
    assertEquals(Status.INVALID, validator.check(grant(-1)).getStatus()); // a uint64 above a day
    assertEquals(Status.INVALID, validator.check(grant(RequestValidator.MAX_LEASE_TTL_MS + 1)).getStatus());
    assertNull(validator.check(grant(RequestValidator.MAX_LEASE_TTL_MS)));
    assertNull(validator.check(grant(1)));
    assertEquals(Status.INVALID, validator.check(Request.newBuilder()
        .setLeaseKeepAlive(LeaseKeepAlive.getDefaultInstance()).build()).getStatus());
    assertEquals(Status.INVALID, validator.check(Request.newBuilder()
        .setLeaseRevoke(LeaseRevoke.getDefaultInstance()).build()).getStatus());
    assertNull(validator.check(Request.newBuilder().setLeaseList(LeaseList.getDefaultInstance()).build()));
  }

  @Test
  void stampsTheShortestTtlAndOnlyTheExpiryConnectionWritesAnExpire() {
    Entry granted = Intake.entryFor(new Event.ClientRequest(5, grant(10)), 1, 0, 0, config);
    assertEquals(2 * config.quorumTimeoutNs / 1_000_000, granted.getLeaseGrant().getMinTtlMs());
    Request revoke = Request.newBuilder().setLeaseRevoke(LeaseRevoke.newBuilder().setId(3)).build();
    Entry fromClient = Intake.entryFor(new Event.ClientRequest(5, revoke), 2, 0, 0, config);
    assertEquals(Entry.CommandCase.LEASE_REVOKE, fromClient.getCommandCase());
    Entry fromExpiry = Intake.entryFor(
        new Event.ClientRequest(Event.ClientRequest.LEASE_EXPIRY_CONNECTION, revoke), 3, 0, 0, config);
    assertEquals(Entry.CommandCase.LEASE_EXPIRE, fromExpiry.getCommandCase());
    assertEquals(3, fromExpiry.getLeaseExpire().getId());
  }
}
