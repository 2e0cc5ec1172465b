package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.ReplicaInfo;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The convergence rule on hand-made status rounds. */
class ConvergenceTest {
  static Convergence.Replica r(String node, int id, String role, long view, int primary, long commit, long applied,
      long checksum) {
    return new Convergence.Replica(node, new ReplicaInfo(id, role, view, applied, commit, applied, checksum, 1000,
        "c", primary, "fsync", 0, Map.of(), "test"), null);
  }

  @Test
  void sameAppliedAndChecksumEverywhereConverges() {
    List<Convergence.Replica> round = List.of(r("n1", 1, "backup", 2, 3, 10, 10, 7), r("n2", 2, "catching-up", 2, 3, 10, 10, 7),
        r("n3", 3, "primary", 2, 3, 10, 10, 7));
    assertEquals("", Convergence.problem(round));
  }

  @Test
  void divergenceIsNamed() {
    assertTrue(Convergence.problem(List.of(r("n1", 1, "primary", 1, 1, 10, 10, 7), r("n2", 2, "backup", 1, 1, 10, 9, 6),
        r("n3", 3, "backup", 1, 1, 10, 10, 7))).contains("n2 applied 9 of 10"));
    assertTrue(Convergence.problem(List.of(r("n1", 1, "primary", 1, 1, 10, 10, 7), r("n2", 2, "backup", 1, 1, 10, 10, 6),
        r("n3", 3, "backup", 1, 1, 10, 10, 7))).contains("n2 has checksum 6"));
    assertTrue(Convergence.problem(List.of(r("n1", 1, "primary", 1, 1, 10, 10, 7), r("n2", 2, "view-change", 2, 2, 10, 10, 7),
        r("n3", 3, "backup", 1, 1, 10, 10, 7))).contains("n2 is view-change"));
    assertTrue(Convergence.problem(List.of(r("n1", 1, "primary", 1, 1, 10, 10, 7), r("n2", 2, "primary", 2, 2, 10, 10, 7),
        r("n3", 3, "backup", 2, 2, 10, 10, 7))).contains("2 replicas call themselves primary"));
    assertTrue(Convergence.problem(List.of(r("n1", 1, "primary", 1, 1, 10, 10, 7),
        new Convergence.Replica("n2", null, "UnavailableException: down"), r("n3", 3, "backup", 1, 1, 10, 10, 7)))
        .contains("n2 does not answer"));
  }

  @Test
  void toJsonCarriesTheRound() {
    Convergence c = new Convergence(false, 1500, "n2 applied 9 of 10", List.of(r("n1", 1, "primary", 1, 1, 10, 10, 255)));
    assertEquals(false, c.toJson().get("valid").asBoolean());
    assertEquals("ff", c.toJson().at("/replicas/0/checksum").asText());
  }
}
