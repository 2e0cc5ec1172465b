package io.choir.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Needs no etcd: the comparison of two result files and the command line of the etcd driver. */
class CompareTest {
  private static JsonNode result(String target, double throughput, double p50, double p99) throws Exception {
    return Compare.JSON.readTree("{\"target\":\"" + target + "\",\"config\":{\"clients\":64,\"value_size\":100,"
        + "\"write_ratio\":1.0,\"duration_s\":30.0},\"throughput_ops_per_sec\":" + throughput
        + ",\"latency_ms\":{\"p50\":" + p50 + ",\"p90\":1,\"p99\":" + p99 + ",\"p999\":9,\"max\":10},"
        + "\"errors\":{\"total\":0}}");
  }

  @Test
  void ratiosAreChoirOverPeer() throws Exception {
    JsonNode choir = result("choir", 9000, 2, 10);
    JsonNode etcd = result("etcd", 3000, 8, 40);
    Map<String, Object> m = Compare.compare(choir, etcd);
    assertEquals(3.0, m.get("throughput_ratio"));
    assertEquals(0.25, m.get("p99_ratio"));
    assertEquals(0.25, m.get("p50_ratio"));
    String table = Compare.table(choir, etcd);
    assertTrue(table.contains("choir") && table.contains("etcd") && table.contains("= 3.0"), table);
  }

  @Test
  void etcdBenchTakesTheSharedFlags() {
    EtcdBench b = new EtcdBench();
    new CommandLine(b).parseArgs("--endpoints", "http://127.0.0.1:23791,http://127.0.0.1:23792",
        "--clients", "64", "--duration", "30", "--value-size", "100", "--write-ratio", "1.0", "--leader-only");
    assertEquals(64, b.options.clients);
    assertEquals(100, b.options.valueSize);
    assertTrue(b.leaderOnly);
    assertEquals("http://127.0.0.1:23791,http://127.0.0.1:23792", b.endpoints);
  }
}
