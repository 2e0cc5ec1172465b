package io.choir.server.statemachine;

import io.choir.proto.LeaseRecord;
import io.choir.server.storage.StorageSnapshot;
import java.util.List;

/**
 * LeaseQueries are the lease side of {@link KvStateMachine}'s facade: what the server asks of the lease
 * table (counts, the expiry's deadlines) and what a state transfer reads and checks of it. The lease
 * commands themselves are applied by {@link EntryApplier} with the rules of {@link LeaseCommands}; the
 * table is {@link LeaseTable}. Every instance method may be called from any thread: it reads the table
 * as of the last written apply or load.
 */
final class LeaseQueries {
  private final LeaseTable leases;

  LeaseQueries(LeaseTable leases) {
    this.leases = leases;
  }

  /** The lease table as of snapshot, one self-contained record per lease (its keys included), in id order. */
  static List<LeaseRecord> records(StorageSnapshot snapshot) {
    return LeaseTable.records(snapshot.scanMeta(LeaseTable.PREFIX));
  }

  /**
   * What is wrong with a lease record received in a state transfer (id 0, a TTL out of range, too many
   * or empty keys), or null.
   */
  static String problem(LeaseRecord record) {
    return LeaseTable.problem(record);
  }

  /** The number of live leases. */
  int count() {
    return leases.count();
  }

  /** The number of keys attached to a live lease. */
  long keyCount() {
    return leases.keyCount();
  }

  /** Leases granted, kept alive, revoked and expired by applied entries since this start. */
  KvStateMachine.LeaseCounts counts() {
    return new KvStateMachine.LeaseCounts(leases.granted, leases.keepAlives, leases.revoked, leases.expired);
  }

  /** The ids of up to max live leases whose deadline is at or before nowMs (replicated clock), earliest first. */
  List<Long> expiredBy(long nowMs, int max) {
    return leases.expiredBy(nowMs, max).stream().map(LeaseTable.Deadline::id).toList();
  }

  /** The earliest deadline of a live lease (replicated clock, ms), or Long.MAX_VALUE. */
  long earliestDeadline() {
    return leases.earliest();
  }
}
