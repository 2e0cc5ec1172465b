package io.choir.jepsen;

import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * StatusRound reads one round of status answers of a {@link Cluster}'s replicas (a replica that did
 * not answer has an error entry): who calls itself primary in the highest view, whether a majority
 * agrees on a serving primary, and a one-line summary for logs and errors.
 */
final class StatusRound {
  private StatusRound() {}

  /** highestPrimary is the replica that calls itself primary in the highest view, if any. */
  static Optional<Cluster.Node> highestPrimary(Map<Cluster.Node, ReplicaStatusResult> status) {
    Cluster.Node best = null;
    long bestView = -1;
    for (Map.Entry<Cluster.Node, ReplicaStatusResult> e : status.entrySet()) {
      ReplicaInfo info = e.getValue().info();
      if (info != null && "primary".equals(info.role()) && info.view() > bestView) {
        best = e.getKey();
        bestView = info.view();
      }
    }
    return Optional.ofNullable(best);
  }

  /**
   * agreedPrimary is the primary of one status round when every replica answered and a majority, the
   * primary included, reports the same view and primary.
   */
  static Optional<Cluster.Node> agreedPrimary(Map<Cluster.Node, ReplicaStatusResult> status) {
    Map<String, Integer> votes = new HashMap<>();
    int answered = 0;
    for (ReplicaStatusResult r : status.values()) {
      if (r.info() != null) {
        answered++;
        if (!r.info().role().equals("view-change") && !r.info().role().equals("recovering")) {
          votes.merge(r.info().view() + "/" + r.info().primaryId(), 1, Integer::sum);
        }
      }
    }
    if (answered < status.size()) {
      return Optional.empty();
    }
    for (Map.Entry<String, Integer> v : votes.entrySet()) {
      if (v.getValue() > status.size() / 2) {
        int primaryId = Integer.parseInt(v.getKey().substring(v.getKey().indexOf('/') + 1));
        for (Map.Entry<Cluster.Node, ReplicaStatusResult> e : status.entrySet()) {
          ReplicaInfo i = e.getValue().info();
          if (e.getKey().id() == primaryId && i != null && i.role().equals("primary")
              && (i.view() + "/" + i.primaryId()).equals(v.getKey())) {
            return Optional.of(e.getKey());
          }
        }
      }
    }
    return Optional.empty();
  }

  /** describe is a one-line summary of a status round, for logs and errors. */
  static String describe(Map<Cluster.Node, ReplicaStatusResult> status) {
    List<String> parts = new ArrayList<>();
    for (Map.Entry<Cluster.Node, ReplicaStatusResult> e : status.entrySet()) {
      ReplicaInfo i = e.getValue().info();
      parts.add(e.getKey().name() + "=" + (i == null ? "down(" + e.getValue().error().getClass().getSimpleName() + ")"
          : i.role() + " v" + i.view() + " p" + i.primaryId() + " applied " + i.applied() + " sum "
              + Long.toHexString(i.checksum())));
    }
    return String.join(", ", parts);
  }
}
