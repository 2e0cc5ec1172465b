package io.choir.ycsb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The report reads YCSB 0.17.0's own output lines. */
class YcsbReportTest {
  private static final List<String> OUTPUT = List.of(
      "[OVERALL], RunTime(ms), 15113",
      "[OVERALL], Throughput(ops/sec), 3221.33",
      "[READ], Operations, 24199",
      "[READ], 99thPercentileLatency(us), 43391",
      "[READ], Return=OK, 24190",
      "[READ], Return=NOT_FOUND, 9",
      "[CLEANUP], 99thPercentileLatency(us), 48767",
      "[UPDATE], 99thPercentileLatency(us), 98495",
      "[UPDATE], Return=OK, 24480",
      "[UPDATE], Return=TIMEOUT, 5",
      "[UPDATE-FAILED], 99thPercentileLatency(us), 10000000");

  @Test
  void readsThroughputP99AndErrors() {
    YcsbReport.Run r = YcsbReport.parse(OUTPUT);
    assertEquals(3221.33, r.opsPerSec(), 1e-9);
    assertEquals(Map.of("READ", 43391.0, "UPDATE", 98495.0), r.p99Us());
    assertEquals(5, r.errors(), "a TIMEOUT is an error, NOT_FOUND is not");
    assertEquals(48670, r.ok());
    String table = YcsbReport.table(Map.of("a", Map.of("choir", List.of(r), "etcd",
        List.of(new YcsbReport.Run(1000, Map.of("READ", 1000.0), 0, 1)))));
    assertTrue(table.contains("3.22x"), table);
    assertThrows(IllegalArgumentException.class, () -> YcsbReport.parse(List.of("nothing")));
  }
}
