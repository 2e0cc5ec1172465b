package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ChoirException;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Reading one round of status answers, without Docker (the nodes have no container). */
class StatusRoundTest {
  private static final List<Cluster.Node> NODES = List.of(node(1), node(2), node(3));

  private static Cluster.Node node(int id) {
    return new Cluster.Node(new NodeSpec(id, "n" + id, "10.199.0." + (10 + id), 20000 + id), null);
  }

  private static ReplicaStatusResult answer(int id, String role, long view, int primaryId) {
    return new ReplicaStatusResult("127.0.0.1:" + (20000 + id),
        new ReplicaInfo(id, role, view, 9, 9, 9, 0xabcL, 1000, "c", primaryId, "fsync", 3, Map.of(), "v"), null);
  }

  private static ReplicaStatusResult down(int id) {
    return new ReplicaStatusResult("127.0.0.1:" + (20000 + id), null, new ChoirException("refused"));
  }

  private static Map<Cluster.Node, ReplicaStatusResult> round(ReplicaStatusResult... results) {
    Map<Cluster.Node, ReplicaStatusResult> out = new LinkedHashMap<>();
    for (int i = 0; i < results.length; i++) {
      out.put(NODES.get(i), results[i]);
    }
    return out;
  }

  @Test
  void shouldAgreeOnThePrimaryAMajorityReportsWhenEveryReplicaAnswers() {
    var status = round(answer(1, "backup", 4, 2), answer(2, "primary", 4, 2), answer(3, "view-change", 5, 3));
    assertEquals(Optional.of(NODES.get(1)), StatusRound.agreedPrimary(status));
  }

  @Test
  void shouldNotAgreeWhileAReplicaDoesNotAnswer() {
    var status = round(answer(1, "backup", 4, 2), answer(2, "primary", 4, 2), down(3));
    assertTrue(StatusRound.agreedPrimary(status).isEmpty());
    assertEquals(Optional.of(NODES.get(1)), StatusRound.highestPrimary(status), "the primary still calls itself so");
  }

  @Test
  void shouldTakeThePrimaryOfTheHighestViewWhenTwoCallThemselvesPrimary() {
    var status = round(answer(1, "primary", 3, 1), answer(2, "primary", 4, 2), answer(3, "backup", 4, 2));
    assertEquals(Optional.of(NODES.get(1)), StatusRound.highestPrimary(status));
    assertEquals(Optional.of(NODES.get(1)), StatusRound.agreedPrimary(status));
  }

  @Test
  void shouldDescribeEachReplicaOnOneLine() {
    var status = round(answer(1, "backup", 4, 2), answer(2, "primary", 4, 2), down(3));
    assertEquals("n1=backup v4 p2 applied 9 sum abc, n2=primary v4 p2 applied 9 sum abc, n3=down(ChoirException)",
        StatusRound.describe(status));
  }
}
