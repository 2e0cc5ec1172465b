package io.choir.server.statemachine;

import com.google.protobuf.InvalidProtocolBufferException;
import io.choir.proto.AddLearner;
import io.choir.proto.AppliedChange;
import io.choir.proto.Entry;
import io.choir.proto.EpochChange;
import io.choir.proto.MemberAddress;
import io.choir.proto.MemberRole;
import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import io.choir.proto.MembershipRecord;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.Membership;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StorageException;
import io.choir.server.storage.WriteSet;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * MembershipRow is the membership part of the replicated state (DESIGN.md "Membership"): the
 * MembershipRecord in force after the last applied configuration entry, kept in the meta row {@link
 * MetaKeys#MEMBERSHIP}, so snapshots and state transfer carry it and a restart finds the epoch its
 * applied state is in. Applying is deterministic: an entry that does not fit the current record (an
 * EpochChange whose epoch is not the next one, an AddLearner of a member, a duplicate id) gets an
 * INVALID reply and changes nothing, on every replica alike. An empty record (epoch 0) stands for the
 * bootstrap membership, which the core knows from its configuration. The row also keeps the last few
 * changes applied OK for client sessions (recent_changes, as {@link Membership#recentChanges}), so any
 * replica, also one restarted or filled by a state transfer, answers a retry of one with its outcome.
 *
 * <p>Apply thread for changes; {@link #current} from any thread.
 */
final class MembershipRow {
  private static final byte[] KEY = MetaKeys.bytes(MetaKeys.MEMBERSHIP);

  private volatile MembershipRecord current = MembershipRecord.getDefaultInstance();
  /** The record as changed by the apply call under way, not yet written. */
  private MembershipRecord pending;

  /** The record in force (epoch 0: the bootstrap membership). */
  MembershipRecord current() {
    return current;
  }

  /** Reads the row from a stored value (null: bootstrap). */
  void load(byte[] stored) {
    current = parse(stored);
    pending = null;
  }

  static MembershipRecord parse(byte[] stored) {
    if (stored == null) {
      return MembershipRecord.getDefaultInstance();
    }
    try {
      return MembershipRecord.parseFrom(stored);
    } catch (InvalidProtocolBufferException e) {
      throw new StorageException("malformed membership row", e);
    }
  }

  /** Applies a configuration entry within an apply call; the reply carries its op. */
  Response apply(Entry entry) {
    MembershipRecord base = pending != null ? pending : current;
    MembershipRecord next = switch (entry.getCommandCase()) {
      case ADD_LEARNER -> addLearner(base, entry.getAddLearner(), entry.getOp());
      case EPOCH_CHANGE -> epochChange(base, entry.getEpochChange(), entry.getOp());
      default -> throw new IllegalArgumentException("not a configuration entry: " + entry.getCommandCase());
    };
    if (next != null) {
      next = withRecentChanges(next, base, entry);
    }
    Response.Builder r = Response.newBuilder().setRequestId(entry.getRequestId()).setOp(entry.getOp());
    if (next == null) {
      return r.setStatus(Status.INVALID).setError("configuration entry at op " + entry.getOp()
          + " does not fit epoch " + Math.max(1, base.getEpoch())).build();
    }
    pending = next;
    return r.setStatus(Status.OK).setVersion(entry.getOp()).setMembership(info(next)).build();
  }

  /**
   * The membership of record as a client sees it (an OK reply to a MemberChange carries the membership
   * after the change): voters, then learners, without acked ops (the primary's ListMembers has them).
   */
  static MembershipInfo info(MembershipRecord record) {
    MembershipInfo.Builder b = MembershipInfo.newBuilder().setEpoch(record.getEpoch()).setStartView(record.getStartView());
    for (MemberAddress m : record.getVotersList()) {
      b.addMembers(status(m, MemberRole.VOTER));
    }
    for (MemberAddress m : record.getLearnersList()) {
      b.addMembers(status(m, MemberRole.LEARNER));
    }
    if (record.getLearnersCount() > 0) {
      b.setChangeInProgress(true).setChange("learner " + record.getLearners(0).getId() + " not promoted yet");
    }
    return b.build();
  }

  private static MemberStatus status(MemberAddress m, MemberRole role) {
    return MemberStatus.newBuilder().setId(m.getId()).setClientAddress(m.getClientAddress())
        .setPeerAddress(m.getPeerAddress()).setRole(role).build();
  }

  private static MembershipRecord addLearner(MembershipRecord base, AddLearner add, long op) {
    long epoch = Math.max(1, base.getEpoch());
    Set<Integer> before = ids(base.getVotersList(), base.getLearnersList());
    Set<Integer> after = ids(add.getVotersList(), add.getLearnersList());
    int id = add.getLearner().getId();
    boolean fits = add.getEpoch() == epoch && id > 0 && !before.contains(id) && after.contains(id)
        && add.getVotersCount() > 0 && after.size() == add.getVotersCount() + add.getLearnersCount()
        && !after.contains(0) && add.getLearnersCount() > 0
        && (base.getEpoch() == 0 || idList(base.getVotersList()).equals(idList(add.getVotersList())))
        && idList(add.getLearnersList()).subList(0, add.getLearnersCount() - 1).equals(idList(base.getLearnersList()))
        && add.getLearners(add.getLearnersCount() - 1).equals(add.getLearner());
    if (!fits) {
      return null;
    }
    return MembershipRecord.newBuilder().setEpoch(epoch).addAllVoters(add.getVotersList())
        .addAllLearners(add.getLearnersList()).setStartView(add.getStartView()).setOp(op).build();
  }

  private static MembershipRecord epochChange(MembershipRecord base, EpochChange change, long op) {
    long epoch = Math.max(1, base.getEpoch());
    Set<Integer> ids = new HashSet<>();
    for (MemberAddress m : change.getVotersList()) {
      ids.add(m.getId());
    }
    for (MemberAddress m : change.getLearnersList()) {
      ids.add(m.getId());
    }
    if (change.getEpoch() != epoch + 1 || change.getVotersCount() == 0
        || ids.size() != change.getVotersCount() + change.getLearnersCount() || ids.contains(0)) {
      return null;
    }
    return MembershipRecord.newBuilder().setEpoch(change.getEpoch()).addAllVoters(change.getVotersList())
        .addAllLearners(change.getLearnersList()).setStartView(change.getStartView()).setOp(op).build();
  }

  /** Record next with base's recent changes and, for a client session's entry, entry's, the oldest dropped. */
  private static MembershipRecord withRecentChanges(MembershipRecord next, MembershipRecord base, Entry entry) {
    List<AppliedChange> recent = new ArrayList<>(base.getRecentChangesList());
    if (entry.getClientId() != 0) {
      recent.add(AppliedChange.newBuilder().setClientId(entry.getClientId()).setRequestId(entry.getRequestId())
          .setOp(entry.getOp()).build());
    }
    List<AppliedChange> kept = recent.subList(Math.max(0, recent.size() - Membership.MAX_RECENT_CHANGES), recent.size());
    return next.toBuilder().clearRecentChanges().addAllRecentChanges(kept).build();
  }

  private static List<Integer> idList(List<MemberAddress> members) {
    return members.stream().map(MemberAddress::getId).toList();
  }

  private static Set<Integer> ids(List<MemberAddress> voters, List<MemberAddress> learners) {
    Set<Integer> ids = new HashSet<>();
    voters.forEach(m -> ids.add(m.getId()));
    learners.forEach(m -> ids.add(m.getId()));
    return ids;
  }

  /** Adds the apply call's changed row to set, if any. */
  void writeTo(WriteSet set) {
    if (pending != null) {
      set.putMeta(KEY, pending.toByteArray());
    }
  }

  /** The apply call's set was written: its record is in force. */
  void committed() {
    if (pending != null) {
      current = pending;
      pending = null;
    }
  }

  /** The apply call failed: forget what it changed. */
  void abandon() {
    pending = null;
  }

  /**
   * The install's row: the snapshot's record (epoch 0: the bootstrap membership, no row); null (a source
   * that sends none) keeps this replica's row.
   */
  static void install(MembershipRecord record, WriteSet set) {
    if (record == null) {
      return;
    }
    if (record.getEpoch() == 0) {
      set.deleteMeta(KEY);
    } else {
      set.putMeta(KEY, record.toByteArray());
    }
  }
}
