package io.choir.server.core;

import io.choir.proto.AddLearner;
import io.choir.proto.AppliedChange;
import io.choir.proto.Entry;
import io.choir.proto.EpochChange;
import io.choir.proto.MemberAddress;
import io.choir.proto.MembershipRecord;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Membership is one epoch of the cluster's configuration (VR Revisited section 7): the epoch number,
 * the voters (in their order, which names the primary of every view: voters[v mod |voters|]), the
 * learners (they receive the log and acknowledge, but never count toward a quorum, elect or vote) and
 * the first view of the epoch. Immutable; the core's current one lives in {@link Members}.
 *
 * <p>Views carry their epoch: the views of epoch e are [{@link #epochBase}(e), epochBase(e+1)), so a
 * view number alone says which epoch a message is of, views still only rise across epochs, and the
 * first epoch's views are the numbers they always were (DESIGN.md "Membership").
 *
 * <p>It also carries the last few changes applied for client sessions ({@link #recentChanges}), as the
 * state machine's row does, so a retry of one is answered with its outcome after a restart or a state
 * transfer too. They are history, not configuration: {@link #equals} leaves them out.
 */
public final class Membership {
  /** Views of one epoch: epoch e starts at view (e - 1) << EPOCH_VIEW_BITS. */
  public static final int EPOCH_VIEW_BITS = 48;
  /** The highest epoch whose views stay below PeerMessageChecks.MAX_NUMBER (2^62). */
  public static final long MAX_EPOCH = (1L << (62 - EPOCH_VIEW_BITS)) - 1;
  /** How many applied changes of client sessions the membership (and its row) remembers. */
  public static final int MAX_RECENT_CHANGES = 16;

  /** A change applied with an OK outcome for a client session: its session, request id and entry's op. */
  public record Applied(long clientId, long requestId, long op) {}

  /** One member: its id and its client and peer addresses ("" when this replica does not know them). */
  public record Member(int id, String clientAddress, String peerAddress) {
    public Member {
      Objects.requireNonNull(clientAddress, "clientAddress");
      Objects.requireNonNull(peerAddress, "peerAddress");
    }
  }

  /** A member's part in an epoch. */
  public enum Role {
    VOTER,
    LEARNER,
    /** Not a member of this epoch (removed from the voters, or never one). */
    NONE
  }

  private final long epoch;
  private final List<Member> voters;
  private final List<Member> learners;
  private final long startView;
  /** The last changes applied for client sessions, oldest first (at most MAX_RECENT_CHANGES). */
  private final List<Applied> recentChanges;

  public Membership(long epoch, List<Member> voters, List<Member> learners, long startView) {
    this(epoch, voters, learners, startView, List.of());
  }

  public Membership(long epoch, List<Member> voters, List<Member> learners, long startView, List<Applied> recentChanges) {
    if (epoch < 1 || epoch > MAX_EPOCH) {
      throw new IllegalArgumentException("epoch " + epoch + " outside 1.." + MAX_EPOCH);
    }
    if (voters.isEmpty()) {
      throw new IllegalArgumentException("epoch " + epoch + " without voters");
    }
    if (epochOfView(startView) != epoch) {
      throw new IllegalArgumentException("start view " + startView + " is not of epoch " + epoch);
    }
    this.epoch = epoch;
    this.voters = List.copyOf(voters);
    this.learners = List.copyOf(learners);
    this.startView = startView;
    this.recentChanges = List.copyOf(recentChanges.subList(Math.max(0, recentChanges.size() - MAX_RECENT_CHANGES),
        recentChanges.size()));
    List<Integer> ids = new ArrayList<>();
    for (Member m : this.voters) {
      ids.add(m.id());
    }
    for (Member m : this.learners) {
      ids.add(m.id());
    }
    if (ids.stream().distinct().count() != ids.size() || ids.stream().anyMatch(id -> id <= 0)) {
      throw new IllegalArgumentException("member ids must be distinct and positive: " + ids);
    }
  }

  /** Epoch 1 of a cluster: the configured replicas, in id order, all voters, from view 0. */
  public static Membership bootstrap(List<Integer> replicaIds, Map<Integer, String> clientAddresses) {
    List<Member> voters = new ArrayList<>();
    for (int id : replicaIds.stream().sorted().toList()) {
      voters.add(new Member(id, clientAddresses.getOrDefault(id, ""), ""));
    }
    return new Membership(1, voters, List.of(), 0);
  }

  /** The first view of epoch e. */
  public static long epochBase(long epoch) {
    return (epoch - 1) << EPOCH_VIEW_BITS;
  }

  /** The epoch whose views hold view. */
  public static long epochOfView(long view) {
    return (view >>> EPOCH_VIEW_BITS) + 1;
  }

  public long epoch() {
    return epoch;
  }

  public List<Member> voters() {
    return voters;
  }

  public List<Member> learners() {
    return learners;
  }

  public long startView() {
    return startView;
  }

  /** The last changes applied for client sessions, oldest first. */
  public List<Applied> recentChanges() {
    return recentChanges;
  }

  /** The recent changes after configuration entry e is applied with an OK outcome. */
  private List<Applied> recentAfter(Entry e) {
    if (e.getClientId() == 0) {
      return recentChanges;
    }
    List<Applied> next = new ArrayList<>(recentChanges);
    next.add(new Applied(e.getClientId(), e.getRequestId(), e.getOp()));
    return next;
  }

  /** Voters then learners, as ids: the members that get the log. */
  public List<Integer> memberIds() {
    List<Integer> ids = new ArrayList<>(voters.size() + learners.size());
    voters.forEach(m -> ids.add(m.id()));
    learners.forEach(m -> ids.add(m.id()));
    return ids;
  }

  public List<Integer> voterIds() {
    return voters.stream().map(Member::id).toList();
  }

  public int voterCount() {
    return voters.size();
  }

  /** f+1 of the voters: how many (the primary counted) must have an entry before it commits. */
  public int quorum() {
    return voters.size() / 2 + 1;
  }

  /** f: the voters besides the primary (or a candidate) that make a majority with it. */
  public int f() {
    return voters.size() / 2;
  }

  /**
   * VR: the primary of view v is the voter at position v mod |voters|. floorMod keeps the position within
   * the voters for any long (a negative one must not index outside the list either).
   */
  public int primaryOf(long view) {
    return voters.get((int) Math.floorMod(view, (long) voters.size())).id();
  }

  public Role roleOf(int id) {
    if (voters.stream().anyMatch(m -> m.id() == id)) {
      return Role.VOTER;
    }
    return learners.stream().anyMatch(m -> m.id() == id) ? Role.LEARNER : Role.NONE;
  }

  public boolean isVoter(int id) {
    return roleOf(id) == Role.VOTER;
  }

  public boolean contains(int id) {
    return roleOf(id) != Role.NONE;
  }

  public Optional<Member> member(int id) {
    return Stream.concat(voters.stream(), learners.stream()).filter(m -> m.id() == id).findFirst();
  }

  /** The client address of member id, or "" when unknown. */
  public String clientAddress(int id) {
    return member(id).map(Member::clientAddress).orElse("");
  }

  /**
   * The first view of the epoch after this one, given the voters of the next epoch and the primary that
   * appended the epoch change: the smallest view of the next epoch whose primary it stays when it is one
   * of the next voters, else the next epoch's first view. A function of the log alone, so every replica
   * that switches picks the same.
   */
  public static long nextStartView(long nextEpoch, List<Member> nextVoters, int oldPrimary) {
    long base = epochBase(nextEpoch);
    for (int i = 0; i < nextVoters.size(); i++) {
      long v = base + i;
      if (nextVoters.get((int) Math.floorMod(v, (long) nextVoters.size())).id() == oldPrimary) {
        return v;
      }
    }
    return base;
  }

  /** Ids by role, for logs and status. */
  public Map<Integer, Role> roles() {
    Map<Integer, Role> roles = new TreeMap<>();
    voters.forEach(m -> roles.put(m.id(), Role.VOTER));
    learners.forEach(m -> roles.put(m.id(), Role.LEARNER));
    return roles;
  }

  /** True when entry changes the membership (AddLearner or EpochChange). */
  public static boolean isConfiguration(Entry entry) {
    return entry.getCommandCase() == Entry.CommandCase.ADD_LEARNER
        || entry.getCommandCase() == Entry.CommandCase.EPOCH_CHANGE;
  }

  /**
   * The membership after applying configuration entry to this one, or empty when it does not fit (an
   * AddLearner of another epoch or voters, or of a member; an EpochChange that is not to the next
   * epoch, without voters, with a duplicate id or a start view outside its epoch). The state machine's
   * MembershipRow follows the same rules, so both agree on every replica from the log alone.
   */
  public Optional<Membership> after(Entry entry) {
    try {
      if (entry.getCommandCase() == Entry.CommandCase.ADD_LEARNER) {
        AddLearner a = entry.getAddLearner();
        int id = a.getLearner().getId();
        List<Integer> nextLearners = new ArrayList<>(learners.stream().map(Member::id).toList());
        nextLearners.add(id);
        List<Member> entryVoters = fromProto(a.getVotersList());
        List<Member> entryLearners = fromProto(a.getLearnersList());
        // By id: the bootstrap membership's addresses come from each replica's configuration, and the
        // entry's (the primary's) are the ones in force from now on, on every replica alike.
        if (a.getEpoch() != epoch || contains(id) || !entryVoters.stream().map(Member::id).toList().equals(voterIds())
            || !entryLearners.stream().map(Member::id).toList().equals(nextLearners)
            || !entryLearners.get(entryLearners.size() - 1).equals(fromProto(a.getLearner()))) {
          return Optional.empty();
        }
        return Optional.of(new Membership(epoch, entryVoters, entryLearners, startView, recentAfter(entry)));
      }
      if (entry.getCommandCase() == Entry.CommandCase.EPOCH_CHANGE) {
        EpochChange c = entry.getEpochChange();
        if (c.getEpoch() != epoch + 1) {
          return Optional.empty();
        }
        return Optional.of(new Membership(c.getEpoch(), fromProto(c.getVotersList()), fromProto(c.getLearnersList()),
            c.getStartView(), recentAfter(entry)));
      }
    } catch (IllegalArgumentException e) {
      return Optional.empty(); // no voters, a duplicate id, a start view of another epoch
    }
    return Optional.empty();
  }

  /** The membership a state machine row stands for (epoch 0: bootstrap, the configured one). */
  public static Membership fromRecord(MembershipRecord r, Membership bootstrap) {
    if (r.getEpoch() == 0) {
      return bootstrap;
    }
    List<Applied> recent = new ArrayList<>();
    for (AppliedChange a : r.getRecentChangesList()) {
      if (a.getClientId() != 0) {
        recent.add(new Applied(a.getClientId(), a.getRequestId(), a.getOp()));
      }
    }
    return new Membership(r.getEpoch(), fromProto(r.getVotersList()), fromProto(r.getLearnersList()), r.getStartView(),
        recent);
  }

  /** This membership as a state machine row, made by the configuration entry at op. */
  public MembershipRecord toRecord(long op) {
    MembershipRecord.Builder b = MembershipRecord.newBuilder().setEpoch(epoch).addAllVoters(toProto(voters))
        .addAllLearners(toProto(learners)).setStartView(startView).setOp(op);
    for (Applied a : recentChanges) {
      b.addRecentChanges(AppliedChange.newBuilder().setClientId(a.clientId()).setRequestId(a.requestId()).setOp(a.op()));
    }
    return b.build();
  }

  static Member fromProto(MemberAddress m) {
    return new Member(m.getId(), m.getClientAddress(), m.getPeerAddress());
  }

  static List<Member> fromProto(List<MemberAddress> ms) {
    return ms.stream().map(Membership::fromProto).toList();
  }

  static MemberAddress toProto(Member m) {
    return MemberAddress.newBuilder().setId(m.id()).setClientAddress(m.clientAddress()).setPeerAddress(m.peerAddress())
        .build();
  }

  static List<MemberAddress> toProto(List<Member> ms) {
    return ms.stream().map(Membership::toProto).toList();
  }

  /** All member ids, as a set. */
  Set<Integer> idSet() {
    return new HashSet<>(memberIds());
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Membership m && m.epoch == epoch && m.voters.equals(voters) && m.learners.equals(learners)
        && m.startView == startView;
  }

  @Override
  public int hashCode() {
    return Objects.hash(epoch, voters, learners, startView);
  }

  @Override
  public String toString() {
    return "Membership{epoch=" + epoch + ", voters=" + voterIds() + ", learners="
        + learners.stream().map(Member::id).toList() + ", startView=" + startView + "}";
  }
}
