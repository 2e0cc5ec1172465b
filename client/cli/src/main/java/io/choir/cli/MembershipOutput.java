package io.choir.cli;

import io.choir.client.Member;
import io.choir.client.MemberRole;
import io.choir.client.Membership;
import io.choir.client.ReplicaInfo;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * MembershipOutput prints a {@link Membership} for the member commands and status: as a table (text)
 * or as the fields of a JSON object, named as the protocol names them.
 */
final class MembershipOutput {
  private MembershipOutput() {}

  static String role(MemberRole role) {
    return role.name().toLowerCase(Locale.ROOT);
  }

  static List<Map<String, Object>> members(List<Member> members) {
    List<Map<String, Object>> out = new ArrayList<>(members.size());
    for (Member m : members) {
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("id", m.id());
      row.put("role", role(m.role()));
      row.put("client_address", m.clientAddress());
      row.put("peer_address", m.peerAddress());
      row.put("acked_op", m.ackedOp());
      out.add(row);
    }
    return out;
  }

  /** The JSON object of a membership, with "ok": true. */
  static Map<String, Object> json(Membership m) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("ok", true);
    out.put("epoch", m.epoch());
    out.put("start_view", m.startView());
    out.put("start_view_in_epoch", ReplicaInfo.inEpoch(m.startView()));
    out.put("change_in_progress", m.changeInProgress());
    out.put("change", m.change());
    out.put("op", m.op());
    out.put("members", members(m.members()));
    return out;
  }

  /** The table of a membership: a header line, one row per member, the change in progress if any. */
  static void print(PrintWriter out, Membership m) {
    out.printf("epoch %d (from view %d): %s%n", m.epoch(), ReplicaInfo.inEpoch(m.startView()), summary(m.members()));
    out.printf("%4s %-8s %-22s %-22s %10s%n", "ID", "ROLE", "CLIENT", "PEER", "ACKED_OP");
    for (Member member : m.members()) {
      out.printf("%4d %-8s %-22s %-22s %10d%n", member.id(), role(member.role()), member.clientAddress(),
          member.peerAddress(), member.ackedOp());
    }
    if (m.changeInProgress()) {
      out.println("change in progress: " + (m.change().isEmpty() ? "(not described)" : m.change()));
    }
  }

  private static String plural(MemberRole role) {
    return switch (role) {
      case VOTER -> "voters";
      case LEARNER -> "learners";
      case RETIRED -> "retired";
      case UNKNOWN -> "unknown role";
    };
  }

  /** "voters 1 2 3; learners 4; retired 5" (the roles present, voters first). */
  static String summary(List<Member> members) {
    List<String> parts = new ArrayList<>();
    for (MemberRole role : MemberRole.values()) {
      String ids = members.stream().filter(x -> x.role() == role).map(x -> String.valueOf(x.id()))
          .collect(Collectors.joining(" "));
      if (!ids.isEmpty()) {
        parts.add(plural(role) + " " + ids);
      }
    }
    return parts.isEmpty() ? "no members" : String.join("; ", parts);
  }
}
