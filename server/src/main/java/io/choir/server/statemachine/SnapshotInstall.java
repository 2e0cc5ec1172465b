package io.choir.server.statemachine;

import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseRecord;
import io.choir.proto.MembershipRecord;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.WriteSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * SnapshotInstall is how a state transfer replaces the whole applied state, and the sequence lock that
 * tells readers whether the state is whole (DESIGN.md "Loss, repair and flow"). A replica that needs
 * ops its primary's log no longer holds replaces its state with a snapshot of the primary's, in three
 * steps on the apply thread: begin (storage wipes the state and sets the "installing" marker, synced),
 * a data write per received chunk (unsynced), finish (client table, applied, checksum and marker
 * removal in one synced write; the log is emptied). The state machine refuses applies and answers
 * reads UNAVAILABLE meanwhile.
 *
 * <p>Crash in the middle of an install: the state machine's load finds the marker and this class
 * wipes the replica to the empty state (applied 0, no data, no client rows, no log), so it simply
 * fetches a state transfer again. That loses nothing acknowledged: the replica only installs a
 * snapshot at an op above its applied number, fetched from a primary whose log had already dropped the
 * ops it lacked, so every op it ever acknowledged is committed and held by a majority that does not
 * include it. It does mean the replica must NOT take part in a view change as if its empty log were
 * what it acknowledged (it would count as a member of a quorum missing committed ops): the wipe writes
 * {@link MetaKeys#CATCHING_UP} in the same synced write that removes the "installing" marker, so no
 * crash can leave an emptied replica without it; the replica reads it at start
 * (RecoveredState.mustCatchUp), neither votes nor acknowledges until it has caught up, and the core
 * then clears it (Effects.caughtUp).
 *
 * <p>Threads: every step on the apply thread; {@link #installing()}, {@link #epoch()} and {@link
 * #wipedInterruptedInstall()} from any thread.
 */
final class SnapshotInstall {
  private static final byte[] APPLIED = MetaKeys.bytes(MetaKeys.APPLIED);
  private static final byte[] CHECKSUM = MetaKeys.bytes(MetaKeys.CHECKSUM);
  private static final byte[] INSTALLING = MetaKeys.bytes(MetaKeys.INSTALLING);
  private static final byte[] CATCHING_UP = MetaKeys.bytes(MetaKeys.CATCHING_UP);

  private final Storage storage;
  /**
   * Even while the state is whole, odd from {@link #markBegun} until the install is finished (or given
   * up by a load): a reader that sees it odd, or changed across its read, refuses the read (a sequence
   * lock). Written by the apply thread only.
   */
  private volatile long installEpoch;
  /** Whether the last load wiped an interrupted install (apply thread; volatile for status). */
  private volatile boolean wipedInterruptedInstall;

  SnapshotInstall(Storage storage) {
    this.storage = storage;
  }

  /**
   * Marks the state as being replaced, before storage is touched: readers must never see the wipe as
   * a state. Idempotent while installing.
   */
  void markBegun() {
    if ((installEpoch & 1) == 0) {
      installEpoch++;
    }
  }

  /**
   * Wipes the stored state and sets the marker, synced ({@link Storage#beginInstall()}); again while
   * installing, it restarts the install from empty.
   */
  void wipeForInstall() {
    storage.beginInstall();
  }

  /** Writes one chunk of snapshot pairs, unsynced; made durable by {@link #finish}'s synced write. */
  void installData(List<KeyValue> kvs) {
    if (!installing()) {
      throw new IllegalStateException("no state transfer is being installed: call beginInstall first");
    }
    storage.installData(kvs);
  }

  /**
   * Writes the end of an install taken at op with checksum: truncates the whole log, then in ONE synced
   * WriteSet writes the client table (self-contained records, written back in the row-per-reply
   * layout), applied = op, checksum and deletes the "installing" marker. It does not touch {@link
   * MetaKeys#CATCHING_UP}: the core decides when the replica has caught up. The caller then reloads.
   *
   * <p>Crash safety: the log truncation comes first and unsynced. A crash before the synced WriteSet
   * leaves the marker, so a load wipes and the replica fetches again, whether or not the truncation
   * survived. Once the WriteSet is durable, so is the truncation before it (a synced write makes every
   * earlier write durable), so no state ever pairs applied = op with stale log entries (which recovery
   * would replay above op). Truncating after the WriteSet would leave exactly that window: marker
   * gone, old entries still in the log.
   *
   * @throws IllegalStateException when storage holds no install marker
   * @throws IllegalArgumentException when op is below 1, two client records share a client id, a
   *     client id is 0 or a record holds two replies of one request
   */
  void finish(long op, long checksum, List<ClientRecord> clients) {
    finish(op, checksum, clients, null);
  }

  /** Like {@link #finish(long, long, List)}, and writes the snapshot's membership row (null: keeps this replica's). */
  void finish(long op, long checksum, List<ClientRecord> clients, MembershipRecord membership) {
    finish(op, checksum, clients, membership, List.of());
  }

  /** Like {@link #finish(long, long, List, MembershipRecord)}, and writes the snapshot's lease table. */
  void finish(long op, long checksum, List<ClientRecord> clients, MembershipRecord membership,
      List<LeaseRecord> leases) {
    Set<Long> leaseIds = new HashSet<>();
    for (LeaseRecord record : leases) {
      String problem = LeaseTable.problem(record);
      if (problem == null && !leaseIds.add(record.getId())) {
        problem = "lease " + record.getId() + " appears twice";
      }
      if (problem != null) {
        throw new IllegalArgumentException("snapshot lease table: " + problem);
      }
    }
    if (op < 1) {
      throw new IllegalArgumentException("a snapshot is taken at op 1 or above: " + op);
    }
    Set<Long> ids = new HashSet<>();
    for (ClientRecord record : clients) {
      String problem = ClientRows.problem(record);
      if (problem == null && !ids.add(record.getClientId())) {
        problem = "client " + Long.toUnsignedString(record.getClientId()) + " appears twice";
      }
      if (problem != null) {
        throw new IllegalArgumentException("snapshot client table: " + problem);
      }
    }
    if (storage.getMeta(INSTALLING) == null) {
      throw new IllegalStateException(
          "no state transfer is being installed (no marker in storage): call beginInstall first");
    }
    storage.truncateLogAfter(0, false);
    WriteSet set = new WriteSet();
    for (ClientRecord record : clients) {
      ClientRows.write(record, set);
    }
    set.putMeta(APPLIED, Bytes.longToBytes(op));
    set.putMeta(CHECKSUM, Bytes.longToBytes(checksum));
    MembershipRow.install(membership, set);
    for (LeaseRecord record : leases) {
      LeaseTable.write(record, set);
    }
    set.deleteMeta(INSTALLING);
    storage.write(set, true);
  }

  /**
   * A load's first step: when storage holds the "installing" marker (a crash, or a failed transfer
   * given up, in the middle of an install), wipes the replica to the empty state (no data, no client
   * rows, no applied or checksum row, no log); then, in one synced write, removes the marker and sets
   * {@link MetaKeys#CATCHING_UP}. Each step is idempotent and the markers change last, together, so a
   * crash during the wipe just wipes again.
   */
  void wipeIfInterrupted() {
    wipedInterruptedInstall = false;
    if (storage.getMeta(INSTALLING) != null) {
      storage.beginInstall(); // data, client rows, applied, checksum gone; marker kept, synced
      storage.truncateLogAfter(0, false);
      // Synced, so the log truncation before it is durable too when the marker is gone; the
      // catching-up marker comes in the same write, so an emptied replica always carries it.
      storage.write(
          new WriteSet().deleteMeta(INSTALLING).putMeta(CATCHING_UP, new byte[] {1}), true);
      wipedInterruptedInstall = true;
    }
  }

  /** A load's last step: the state is whole again (installed, or wiped to empty). */
  void markWhole() {
    if ((installEpoch & 1) != 0) {
      installEpoch++;
    }
  }

  /** True from {@link #markBegun} until the install is finished or wiped (any thread). */
  boolean installing() {
    return (installEpoch & 1) != 0;
  }

  /** The sequence lock's count: odd while installing; a read is whole when it is even and unchanged. */
  long epoch() {
    return installEpoch;
  }

  /** True when the last load found an interrupted install and wiped the replica to the empty state. */
  boolean wipedInterruptedInstall() {
    return wipedInterruptedInstall;
  }
}
