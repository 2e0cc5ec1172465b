package io.choir.cli;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import java.io.PrintWriter;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * StatusCommand asks every endpoint for its status and prints one row (or, with --json, one object in
 * an array) per replica with at least id, role, membership role and epoch, view, op, commit, applied and
 * checksum, the open watchers, the live leases and their attached keys, and the peer transport (its mode
 * and, with auto, the peers reached by multicast), and (text) the members of the newest epoch. Exit 3
 * when no replica answered.
 */
@Command(name = "status", description = "Show (role, epoch, view, op, commit, applied, checksum) of every replica, and the members.",
    mixinStandardHelpOptions = true)
final class StatusCommand extends KvCommands.Base {
  @Option(names = "--counters", description = "Also print every counter (text output).")
  boolean counters;

  @Override
  int run(ChoirClient client, PrintWriter out) {
    List<ReplicaStatusResult> results = client.status();
    List<Map<String, Object>> rows = new ArrayList<>();
    int answered = 0;
    for (ReplicaStatusResult r : results) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("endpoint", r.endpoint());
      if (r.isOk()) {
        answered++;
        ReplicaInfo s = r.info();
        m.put("id", s.id());
        m.put("role", s.role());
        m.put("view", s.view());
        m.put("view_in_epoch", s.viewInEpoch());
        m.put("epoch", s.epoch());
        m.put("member_role", MembershipOutput.role(s.memberRole()));
        m.put("members", MembershipOutput.members(s.members()));
        m.put("op", s.op());
        m.put("commit", s.commit());
        m.put("applied", s.applied());
        m.put("checksum", String.format("%016x", s.checksum()));
        m.put("primary_id", s.primaryId());
        m.put("cluster_id", s.clusterId());
        m.put("durability", s.durability());
        m.put("keys", s.keys());
        m.put("watchers", s.watchers());
        m.put("leases", s.leases());
        m.put("lease_keys", s.leaseKeys());
        m.put("uptime_ms", s.uptimeMs());
        m.put("version", s.version());
        m.put("peer_transport", s.peerTransport());
        m.put("multicast_peers", s.multicastPeers());
        m.put("read_mode", s.readMode());
        m.put("lag", s.counters().getOrDefault("lag", 0L));
        m.put("view_changes", s.counters().getOrDefault("view_changes", 0L));
        long last = s.counters().getOrDefault("last_view_change_unix_ms", 0L);
        m.put("last_view_change", last == 0 ? null : Instant.ofEpochMilli(last).toString());
        m.put("counters", new TreeMap<>(s.counters()));
      } else {
        m.put("error", String.valueOf(r.error() == null ? "no answer" : r.error().getMessage()));
      }
      rows.add(m);
    }
    if (options.json) {
      options.printJson(out, rows);
    } else {
      out.printf("%-22s %3s %-11s %-7s %5s %5s %7s %5s %9s %9s %9s %-16s %6s %11s %7s %6s %7s %5s %11s %8s %s%n",
          "ENDPOINT", "ID", "ROLE", "MEMBER", "EPOCH", "VIEW", "PRIMARY", "VCS", "OP", "COMMIT", "APPLIED", "CHECKSUM",
          "LAG", "NACKS S/R", "RETX", "GAPS", "DROPPED", "WATCH", "LEASES/KEYS",
          "UPTIME_S", "TRANSPORT");
      for (Map<String, Object> m : rows) {
        if (m.containsKey("error")) {
          out.printf("%-22s unreachable: %s%n", m.get("endpoint"), m.get("error"));
          continue;
        }
        Map<?, ?> c = (Map<?, ?>) m.get("counters");
        long dropped = c.entrySet().stream()
            .filter(e -> String.valueOf(e.getKey()).startsWith("datagrams_dropped_"))
            .mapToLong(e -> ((Number) e.getValue()).longValue()).sum();
        out.printf("%-22s %3s %-11s %-7s %5s %5s %7s %5s %9s %9s %9s %-16s %6s %11s %7s %6s %7d %5s %11s %8d %s%n",
            m.get("endpoint"), m.get("id"), m.get("role"), m.get("member_role"), m.get("epoch"), m.get("view_in_epoch"),
            m.get("primary_id"), c.get("view_changes"), m.get("op"),
            m.get("commit"), m.get("applied"),
            m.get("checksum"), c.get("lag"), c.get("nacks_sent") + "/" + c.get("nacks_received"),
            c.get("retransmits"), c.get("gaps"), dropped, m.get("watchers"), m.get("leases") + "/" + m.get("lease_keys"),
            ((Long) m.get("uptime_ms")) / 1000,
            transport(m));
        if (counters) {
          ((Map<?, ?>) m.get("counters")).forEach((k, v) -> out.printf("    %-28s %d%n", k, v));
        }
      }
      printMembers(out, results);
    }
    return answered == 0 ? Choir.EXIT_UNAVAILABLE : Choir.EXIT_OK;
  }

  /**
   * The TRANSPORT column: the peer transport's mode, and with auto the peers reached by multicast
   * ("auto mc=2,3"; "auto mc=-": none, every message to all goes by unicast); "-" for a single replica.
   */
  static String transport(Map<String, Object> row) {
    String mode = String.valueOf(row.getOrDefault("peer_transport", ""));
    if (mode.isEmpty()) {
      return "-";
    }
    if (!mode.equals("auto")) {
      return mode;
    }
    List<?> peers = (List<?>) row.getOrDefault("multicast_peers", List.of());
    return "auto mc=" + (peers.isEmpty() ? "-"
        : String.join(",", peers.stream().map(String::valueOf).toList()));
  }

  /** The members as the newest epoch's replica (its primary, if it answered) knows them, and any disagreement. */
  private static void printMembers(PrintWriter out, List<ReplicaStatusResult> results) {
    List<ReplicaInfo> answered = results.stream().filter(ReplicaStatusResult::isOk).map(ReplicaStatusResult::info)
        .toList();
    answered.stream()
        .max(Comparator.comparingLong(ReplicaInfo::epoch).thenComparing(i -> "primary".equals(i.role())))
        .filter(i -> !i.members().isEmpty())
        .ifPresent(i -> out.printf("members (epoch %d, as replica %d knows them): %s%n", i.epoch(), i.id(),
            MembershipOutput.summary(i.members())));
    List<Long> epochs = answered.stream().map(ReplicaInfo::epoch).distinct().sorted().toList();
    if (epochs.size() > 1) {
      out.println("replicas are in different epochs " + epochs + ": a change is being applied, or a replica lags");
    }
  }
}
