package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** AnomalyReportTest checks that an INVALID verdict points at the right operation and its context. */
class AnomalyReportTest {

  /**
   * history: p1 writes 1; p2 writes 2 and p3 writes 3 concurrently with p4's read; p3's write fails, yet
   * p4 reads 3; later p6 reads 2.
   */
  private static History readOfAFailedWrite() {
    return History.builder()
        .invokeWrite(1, "k1", 1, 1000).ok(1, 2000)               // events 0, 1
        .invokeWrite(2, "k1", 2, 3000)                            // 2
        .invokeWrite(3, "k1", 3, 4000)                            // 3
        .invoke(Operation.read(4, "k1"), 5000, "node-b")          // 4
        .ok(2, 6000)                                              // 5
        .ok(4, 3L, 7000)                                          // 6
        .fail(3, 8000)                                            // 7
        .invokeRead(6, "k1", 9000).ok(6, 2L, 10000)               // 8, 9
        .build();
  }

  @Test
  void anomalyNamesTheReadThatCannotBeLinearized() {
    CheckResult r = Checker.check(readOfAFailedWrite(), Duration.ofSeconds(5));
    assertEquals(Verdict.INVALID, r.verdict());
    Anomaly a = r.anomalies().get(0);
    assertEquals("k1", a.key());
    assertEquals(4, a.op().op().process());
    assertEquals(OpType.READ, a.op().op().type());
    assertEquals(3L, a.op().op().value());
    assertEquals(List.of("2"), a.statesBefore(), "the furthest prefix has both writes of 1 and 2 in it");
  }

  @Test
  void anomalyListsExactlyTheOperationsConcurrentWithIt() {
    Anomaly a = Checker.check(readOfAFailedWrite(), Duration.ofSeconds(5)).anomalies().get(0);
    List<Long> processes = a.concurrent().stream().map(i -> i.op().process()).toList();
    assertEquals(List.of(2L, 3L), processes, "the writes of 2 and 3 overlap it; the write of 1 and the later read do not");
    assertEquals(Outcome.FAIL, a.concurrent().get(1).outcome());
    assertEquals(List.of(1L, 2L), a.linearizedPrefix().stream().map(i -> i.op().process()).toList());
  }

  @Test
  void anomalyTextIsActionable() {
    Anomaly a = Checker.check(readOfAFailedWrite(), Duration.ofSeconds(5)).anomalies().get(0);
    String text = a.toString();
    System.out.println("example anomaly report:\n" + text);
    assertTrue(text.contains("no linearization for read k1 -> 3 by p4 (invoked t=5000, ok t=7000, node node-b)"), text);
    assertTrue(text.contains("state before it: 2"), text);
    assertTrue(text.contains("write k1 3 by p3 (invoked t=4000, failed t=8000"), text);
    assertTrue(text.contains("write k1 2 by p2 (invoked t=3000, ok t=6000)"), text);
  }

  @Test
  void anomalyJsonCarriesTheOpAndItsContext() throws IOException {
    CheckResult r = Checker.check(readOfAFailedWrite(), Duration.ofSeconds(5));
    JsonNode a = new ObjectMapper().readTree(r.anomalies().get(0).toJson());
    assertEquals(4, a.get("op").get("process").asLong());
    assertEquals(3, a.get("op").get("value").asLong());
    assertEquals("2", a.get("statesBefore").get(0).asText());
    assertEquals(2, a.get("concurrent").size());
    assertEquals("fail", a.get("concurrent").get(1).get("outcome").asText());
    JsonNode all = new ObjectMapper().readTree(r.toJson());
    assertEquals("INVALID", all.get("verdict").asText());
    assertEquals(4, all.get("keys").get(0).get("anomaly").get("op").get("process").asLong());
  }

  @Test
  void packageDocumentationExampleIsInvalidAtTheReadOfAbsent() {
    long t0 = 0, t1 = 1, t2 = 2, t3 = 3, t4 = 4, t5 = 5, t6 = 6, t7 = 7;
    History.Builder h = History.builder();
    h.invokeWrite(1, "k1", 3, t0).ok(1, t1);
    h.invokeRead(2, "k1", t2).ok(2, 3L, t3);
    h.invokeCas(3, "k1", 3L, 4, t4).info(3, t5);
    h.invokeRead(4, "k1", t6).ok(4, null, t7);
    CheckResult result = Checker.check(h.build(), Duration.ofSeconds(10));
    System.out.println("example result:\n" + result);
    assertEquals(Verdict.INVALID, result.verdict());
    Anomaly a = result.anomalies().get(0);
    assertEquals(4, a.op().op().process());
    assertEquals(List.of(3L), a.concurrent().stream().map(i -> i.op().process()).toList());
  }

  @Test
  void firstNonLinearizableCompletionIsReportedNotALaterOne() {
    // the stale read by p3 is the first problem; p4's later read of 9 is also impossible but comes after
    History h = Hist.of()
        .writeOk(1, "k", 1)
        .writeOk(1, "k", 2)
        .readOk(3, "k", 1L)
        .readOk(4, "k", 9L)
        .build();
    Anomaly a = Checker.check(h, Duration.ofSeconds(5)).anomalies().get(0);
    assertEquals(3, a.op().op().process());
  }

  @Test
  void infoOperationsAppearAsConcurrentForTheRestOfTheHistory() {
    History h = Hist.of()
        .write(9, "k", 5)
        .info(9)
        .writeOk(1, "k", 1)
        .readOk(2, "k", 7L)
        .build();
    Anomaly a = Checker.check(h, Duration.ofSeconds(5)).anomalies().get(0);
    assertEquals(2, a.op().op().process());
    assertEquals(1, a.concurrent().size());
    assertEquals(9, a.concurrent().get(0).op().process());
    assertTrue(a.toString().contains("open, may take effect"), a::toString);
    assertEquals(2, a.statesBefore().size(), a::toString); // 1, or 5 if the unknown write happened last
  }
}
