package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import io.choir.proto.BatchOp;
import io.choir.proto.Entry;
import io.choir.proto.LeaseGrant;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * LeaseCommands holds the lease rules (docs/lease.md), decided at apply from the log alone, the same on
 * every replica. Times are the entries' time_ms (the replicated clock).
 *
 * <ul>
 *   <li>A lease is alive at time T when it is in the table and T is below its deadline. Its deadline is
 *       the time of its grant or its latest keep-alive entry plus its TTL.
 *   <li>LeaseGrant: a new lease whose id is the entry's op. TTL 0 or above {@link #MAX_TTL_MS} is
 *       INVALID; a TTL below the entry's min_ttl_ms (the primary's, 0: {@link #DEFAULT_MIN_TTL_MS}) is
 *       raised to it. Refused (BUSY) when {@link #MAX_LEASES} leases are alive.
 *   <li>LeaseKeepAlive: deadline = the entry's time + TTL; NOT_FOUND when the lease is not alive.
 *   <li>LeaseRevoke: the lease and every key attached are deleted in this entry; NOT_FOUND when the
 *       lease is not alive.
 *   <li>LeaseExpire (the primary's): when the entry's time is at or past the lease's deadline, as
 *       revoke; otherwise nothing changes and the answer is CAS_FAILED ("not expired": a keep-alive
 *       came in between); NOT_FOUND when the lease is gone.
 *   <li>A Put or CompareAndSet with a lease attaches its key to it when it writes (a key has at most one
 *       lease; without a lease it is detached); NOT_FOUND, nothing written, when the lease is not alive;
 *       BUSY, nothing written, when the lease already has {@link #MAX_KEYS_PER_LEASE} keys. A Delete
 *       detaches. In a batch the leases are checked before any op runs, the attachments applied only
 *       when the whole batch succeeds.
 * </ul>
 */
final class LeaseCommands {
  /** The longest TTL: one day. */
  static final long MAX_TTL_MS = 86_400_000L;
  /** The shortest TTL when a grant entry carries no min_ttl_ms. */
  static final long DEFAULT_MIN_TTL_MS = 1_000;
  /** The most live leases in the cluster. */
  static final int MAX_LEASES = 100_000;
  /** The most keys attached to one lease. */
  static final int MAX_KEYS_PER_LEASE = 10_000;

  private LeaseCommands() {}

  static Response grant(Entry entry, LeaseTable leases) {
    LeaseGrant grant = entry.getLeaseGrant();
    if (grant.getTtlMs() == 0 || grant.getTtlMs() > MAX_TTL_MS) {
      return Commands.invalid(entry, "lease TTL " + grant.getTtlMs() + " ms is out of range: 1 to " + MAX_TTL_MS);
    }
    if (leases.count() >= MAX_LEASES) {
      return Commands.reply(entry, Status.BUSY)
          .setError("the lease table is full: " + MAX_LEASES + " leases").build();
    }
    long min = grant.getMinTtlMs() == 0 ? DEFAULT_MIN_TTL_MS : Math.min(grant.getMinTtlMs(), MAX_TTL_MS);
    long ttl = Math.max(grant.getTtlMs(), min);
    long id = entry.getOp();
    leases.put(id, ttl, entry.getTimeMs() + ttl);
    leases.granted++;
    return Commands.reply(entry, Status.OK).setLease(leases.get(id).info(entry.getTimeMs())).build();
  }

  static Response keepAlive(Entry entry, LeaseTable leases) {
    long id = entry.getLeaseKeepAlive().getId();
    LeaseTable.Lease lease = alive(leases, id, entry.getTimeMs());
    if (lease == null) {
      return notFound(entry, id);
    }
    leases.put(id, lease.ttlMs(), entry.getTimeMs() + lease.ttlMs());
    leases.keepAlives++;
    return Commands.reply(entry, Status.OK).setLease(leases.get(id).info(entry.getTimeMs())).build();
  }

  static Response revoke(Entry entry, LeaseTable leases, Overlay data) {
    long id = entry.getLeaseRevoke().getId();
    if (alive(leases, id, entry.getTimeMs()) == null) {
      return notFound(entry, id);
    }
    end(id, leases, data);
    leases.revoked++;
    return Commands.reply(entry, Status.OK).setVersion(entry.getOp()).build();
  }

  static Response expire(Entry entry, LeaseTable leases, Overlay data) {
    long id = entry.getLeaseExpire().getId();
    LeaseTable.Lease lease = leases.get(id);
    if (lease == null) {
      return notFound(entry, id);
    }
    if (entry.getTimeMs() < lease.deadlineMs()) {
      return Commands.reply(entry, Status.CAS_FAILED).setError("lease " + id + " not expired: deadline "
          + lease.deadlineMs() + " ms, entry time " + entry.getTimeMs() + " ms").build();
    }
    end(id, leases, data);
    leases.expired++;
    return Commands.reply(entry, Status.OK).setVersion(entry.getOp()).build();
  }

  private static void end(long id, LeaseTable leases, Overlay data) {
    for (byte[] key : leases.remove(id)) {
      data.delete(key);
    }
  }

  /** The refusal of attaching key to lease id (0: none, never refused) by entry, or null. */
  static Response attachProblem(Entry entry, LeaseTable leases, long id, ByteString key) {
    if (id == 0) {
      return null;
    }
    return attachProblem(entry, leases, id, leases.leaseOf(key.toByteArray()) == id ? 0 : 1);
  }

  /** The refusal of attaching adding more keys to lease id by entry, or null. */
  static Response attachProblem(Entry entry, LeaseTable leases, long id, int adding) {
    LeaseTable.Lease lease = alive(leases, id, entry.getTimeMs());
    if (lease == null) {
      return notFound(entry, id);
    }
    if (lease.keys() + adding > MAX_KEYS_PER_LEASE) {
      return Commands.reply(entry, Status.BUSY).setError("lease " + id + " has " + lease.keys()
          + " keys: at most " + MAX_KEYS_PER_LEASE + " may be attached").build();
    }
    return null;
  }

  /** The refusal of a batch's leases (each alive, with room for every key the batch attaches), or null. */
  static Response batchProblem(Entry entry, LeaseTable leases, List<BatchOp> ops) {
    Map<Long, Integer> adding = new HashMap<>();
    for (BatchOp op : ops) {
      long id = switch (op.getOpCase()) {
        case PUT -> op.getPut().getLease();
        case COMPARE_AND_SET -> op.getCompareAndSet().getLease();
        default -> 0;
      };
      if (id != 0) {
        adding.merge(id, 1, Integer::sum);
      }
    }
    for (Map.Entry<Long, Integer> e : adding.entrySet()) {
      Response problem = attachProblem(entry, leases, e.getKey(), e.getValue());
      if (problem != null) {
        return problem;
      }
    }
    return null;
  }

  /** Sets key's lease to id after a write (0: detached). */
  static void attached(LeaseTable leases, byte[] key, long id) {
    if (id == 0) {
      leases.detach(key);
    } else {
      leases.attach(key, id);
    }
  }

  private static LeaseTable.Lease alive(LeaseTable leases, long id, long timeMs) {
    LeaseTable.Lease lease = leases.get(id);
    return lease != null && timeMs < lease.deadlineMs() ? lease : null;
  }

  private static Response notFound(Entry entry, long id) {
    return Commands.reply(entry, Status.NOT_FOUND)
        .setError("lease " + id + " not found: never granted, revoked or expired").build();
  }
}
