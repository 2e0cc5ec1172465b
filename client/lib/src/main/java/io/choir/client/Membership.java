package io.choir.client;

import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Membership is the cluster's membership as one replica answered it (DESIGN.md "Membership"): the
 * epoch, the view it started at, every member with its role, and whether a change is under way. A
 * membership change answers with the membership after the change; {@code members()} with the
 * answering replica's current one.
 *
 * @param epoch the epoch (it rises by one with every change of the voters; 0 from a server that
 *     reported none)
 * @param startView the first view of the epoch
 * @param members every member (voters first, in the order that names the primaries, then learners and
 *     retired members, as the replica listed them); unmodifiable
 * @param changeInProgress whether a change is under way (a learner not yet promoted, or an epoch
 *     change not yet committed); another change is refused meanwhile
 * @param change what the change in progress is, in words ("" when none)
 * @param op the op at which the replica answered (its applied op for a list, the op of the change's
 *     entry for a change; 0 when it did not say)
 */
public record Membership(long epoch, long startView, List<Member> members, boolean changeInProgress, String change,
    long op) {
  /**
   * Membership; the members are copied into an unmodifiable list.
   *
   * @param epoch the epoch
   * @param startView the first view of the epoch
   * @param members every member
   * @param changeInProgress whether a change is under way
   * @param change the change in progress, in words
   * @param op the op at which the replica answered
   */
  public Membership {
    members = List.copyOf(members);
    change = change == null ? "" : change;
  }

  /**
   * The member with this id.
   *
   * @param id the replica id
   * @return the member, or empty when id is not a member
   */
  public Optional<Member> member(int id) {
    return members.stream().filter(m -> m.id() == id).findFirst();
  }

  /**
   * The members with this role, in the listed order.
   *
   * @param role the role
   * @return those members, unmodifiable
   */
  public List<Member> withRole(MemberRole role) {
    return members.stream().filter(m -> m.role() == role).toList();
  }

  /**
   * The voters, in the order that names the primaries ({@code voters[view mod voters]}).
   *
   * @return the voters, unmodifiable
   */
  public List<Member> voters() {
    return withRole(MemberRole.VOTER);
  }

  static Membership fromProto(MembershipInfo m, long op) {
    return new Membership(m.getEpoch(), m.getStartView(), members(m.getMembersList()), m.getChangeInProgress(),
        m.getChange(), op);
  }

  static List<Member> members(List<MemberStatus> list) {
    List<Member> out = new ArrayList<>(list.size());
    for (MemberStatus s : list) {
      out.add(Member.fromProto(s));
    }
    return out;
  }
}
