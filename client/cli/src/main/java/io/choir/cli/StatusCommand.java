package io.choir.cli;

import io.choir.client.ChoirClient;
import io.choir.client.ReplicaStatusResult;
import io.choir.proto.ReplicaStatus;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * StatusCommand asks every endpoint for its status and prints one row (or, with --json, one object in
 * an array) per replica with at least id, role, view, op, commit, applied and checksum. Exit 3 when no
 * replica answered.
 */
@Command(name = "status", description = "Show (view, role, op, commit, applied, checksum) of every replica.",
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
      if (r.status() != null) {
        answered++;
        ReplicaStatus s = r.status();
        m.put("id", s.getId());
        m.put("role", s.getRole());
        m.put("view", s.getView());
        m.put("op", s.getOp());
        m.put("commit", s.getCommit());
        m.put("applied", s.getApplied());
        m.put("checksum", String.format("%016x", s.getChecksum()));
        m.put("primary_id", s.getPrimaryId());
        m.put("cluster_id", s.getClusterId());
        m.put("durability", s.getDurability());
        m.put("keys", s.getKeys());
        m.put("uptime_ms", s.getUptimeMs());
        m.put("version", s.getVersion());
        m.put("counters", new TreeMap<>(s.getCountersMap()));
      } else {
        m.put("error", r.error());
      }
      rows.add(m);
    }
    if (options.json) {
      options.printJson(out, rows);
    } else {
      out.printf("%-22s %3s %-8s %6s %10s %10s %10s %-16s %9s%n",
          "ENDPOINT", "ID", "ROLE", "VIEW", "OP", "COMMIT", "APPLIED", "CHECKSUM", "UPTIME_S");
      for (Map<String, Object> m : rows) {
        if (m.containsKey("error")) {
          out.printf("%-22s unreachable: %s%n", m.get("endpoint"), m.get("error"));
          continue;
        }
        out.printf("%-22s %3s %-8s %6s %10s %10s %10s %-16s %9d%n", m.get("endpoint"), m.get("id"),
            m.get("role"), m.get("view"), m.get("op"), m.get("commit"), m.get("applied"),
            m.get("checksum"), ((Long) m.get("uptime_ms")) / 1000);
        if (counters) {
          ((Map<?, ?>) m.get("counters")).forEach((k, v) -> out.printf("    %-28s %d%n", k, v));
        }
      }
    }
    return answered == 0 ? Choir.EXIT_UNAVAILABLE : Choir.EXIT_OK;
  }
}
