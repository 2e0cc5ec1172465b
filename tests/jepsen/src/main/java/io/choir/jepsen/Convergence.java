package io.choir.jepsen;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Convergence is the check that, once every fault is healed, all replicas reach one state: every replica
 * answers, none is in a view change or recovering, one primary in one view, and every replica's applied
 * number equals the primary's commit number with the same checksum (the running checksum over applied
 * entries). A follower's sub-role (backup, catching-up) does not matter when its numbers agree.
 *
 * @param converged whether the replicas converged within the wait
 * @param waitedMillis how long the wait took
 * @param problem why not, or empty
 * @param replicas the last status round, one entry per replica
 */
public record Convergence(boolean converged, long waitedMillis, String problem, List<Replica> replicas) {

  /**
   * Replica is one replica's answer in the last round.
   *
   * @param node its name
   * @param info what it reported, or null when it did not answer
   * @param error why it did not answer, or null
   */
  public record Replica(String node, ReplicaInfo info, String error) {}

  /** Convergence copies the list. */
  public Convergence {
    replicas = List.copyOf(replicas);
    problem = problem == null ? "" : problem;
  }

  /** await polls the cluster's status until it converges or {@code timeout} passes. */
  public static Convergence await(Cluster cluster, Duration timeout) throws InterruptedException {
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    while (true) {
      Map<Cluster.Node, ReplicaStatusResult> status = cluster.status();
      List<Replica> round = new ArrayList<>();
      status.forEach((n, r) -> round.add(new Replica(n.name(), r.info(),
          r.error() == null ? null : r.error().getClass().getSimpleName() + ": " + r.error().getMessage())));
      String problem = problem(round);
      long waited = (System.nanoTime() - start) / 1_000_000;
      if (problem.isEmpty()) {
        return new Convergence(true, waited, "", round);
      }
      if (System.nanoTime() >= deadline) {
        return new Convergence(false, waited, problem, round);
      }
      Thread.sleep(500);
    }
  }

  /** problem is what keeps one status round from being converged, or empty when it is. */
  public static String problem(List<Replica> round) {
    List<String> issues = new ArrayList<>();
    ReplicaInfo primary = null;
    int primaries = 0;
    for (Replica r : round) {
      if (r.info() == null) {
        issues.add(r.node() + " does not answer (" + r.error() + ")");
        continue;
      }
      String role = r.info().role();
      if (role.equals("primary")) {
        primaries++;
        primary = r.info();
      } else if (role.equals("view-change") || role.equals("recovering")) {
        issues.add(r.node() + " is " + role);
      }
    }
    if (!issues.isEmpty()) {
      return String.join("; ", issues);
    }
    if (primaries != 1) {
      return primaries + " replicas call themselves primary";
    }
    for (Replica r : round) {
      ReplicaInfo i = r.info();
      if (i.view() != primary.view() || i.primaryId() != primary.id()) {
        issues.add(r.node() + " is in view " + i.view() + " with primary " + i.primaryId() + ", not view "
            + primary.view() + " with primary " + primary.id());
      } else if (i.applied() != primary.commit()) {
        issues.add(r.node() + " applied " + i.applied() + " of " + primary.commit() + " committed");
      }
    }
    if (!issues.isEmpty()) {
      return String.join("; ", issues);
    }
    for (Replica r : round) {
      if (r.info().checksum() != primary.checksum()) {
        issues.add(r.node() + " has checksum " + Long.toHexString(r.info().checksum()) + " at applied "
            + r.info().applied() + ", the primary " + Long.toHexString(primary.checksum()));
      }
    }
    return String.join("; ", issues);
  }

  /** toJson is the check's entry in results.json. */
  public ObjectNode toJson() {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("valid", converged);
    o.put("waitedMillis", waitedMillis);
    if (!problem.isEmpty()) {
      o.put("problem", problem);
    }
    ArrayNode arr = o.putArray("replicas");
    for (Replica r : replicas) {
      ObjectNode n = arr.addObject();
      n.put("node", r.node());
      if (r.info() == null) {
        n.put("error", r.error());
      } else {
        ReplicaInfo i = r.info();
        n.put("id", i.id());
        n.put("role", i.role());
        n.put("view", i.view());
        n.put("primary", i.primaryId());
        n.put("op", i.op());
        n.put("commit", i.commit());
        n.put("applied", i.applied());
        n.put("checksum", Long.toHexString(i.checksum()));
        n.put("keys", i.keys());
      }
    }
    return o;
  }
}
