package io.choir.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The summary of transport-scaling.sh's run folders: CPU per write, the table, the files. */
class TransportScalingTest {
  @TempDir Path out;

  private void run(String transport, int replicas, long ops, long firstTickOps, double primaryCpu, double allCpu)
      throws Exception {
    run(transport, replicas, ops, firstTickOps, primaryCpu, allCpu, "");
  }

  private void run(String transport, int replicas, long ops, long firstTickOps, double primaryCpu, double allCpu,
      String more) throws Exception {
    Path d = Files.createDirectories(out.resolve("runs").resolve(transport + "-" + replicas));
    Files.writeString(d.resolve("result.json"), "{\"throughput_ops_per_sec\":" + ops / 20.0 + ",\"ops\":" + ops
        + ",\"latency_ms\":{\"p50\":2.5,\"p99\":9.5},\"errors\":{\"total\":0},"
        + "\"machine\":{\"load_average_at_end\":1.5},\"series\":[{\"ops\":" + firstTickOps + "}]}");
    Files.writeString(d.resolve("cpu.json"), "{\"transport\":\"" + transport + "\",\"replicas\":" + replicas
        + ",\"primary_cpu_s\":" + primaryCpu + ",\"replicas_cpu_s\":" + allCpu + more + "}");
  }

  @Test
  void cpuPerWriteCountsTheWritesAfterTheFirstMeasuredSecond() throws Exception {
    run("multicast", 5, 110_000, 10_000, 5.0, 12.0);
    run("multicast", 3, 101_000, 1_000, 4.0, 8.0);
    run("unicast", 3, 51_000, 1_000, 6.0, 9.0, ",\"primary_cpu_nojit_s\":5.0,\"replicas_cpu_nojit_s\":7.5,"
        + "\"primary_udp_out_packets\":20000,\"primary_udp_out_bytes\":3000000");
    List<TransportScaling.Row> rows = TransportScaling.rows(out);
    assertEquals(List.of("multicast-3", "multicast-5", "unicast-3"), rows.stream().map(TransportScaling.Row::folder).toList());
    assertEquals(40.0, rows.get(0).primaryUsPerWrite(), 1e-9); // 4 s over 100,000 writes
    assertEquals(80.0, rows.get(0).allUsPerWrite(), 1e-9);
    assertEquals(120.0, rows.get(2).primaryUsPerWrite(), 1e-9);
    String table = TransportScaling.table(rows);
    // an older run without the JIT and datagram fields: "-" in those columns
    assertTrue(table.contains("| multicast | 3 | 5,050 | 2.50 | 9.50 | 40.0 | 80.0 | - | - | - | - | 0 | 1.50 |"), table);
    // 5 s and 7.5 s without JIT, 20,000 datagrams and 3 MB over 50,000 writes
    assertEquals(100.0, rows.get(2).primaryNoJitUsPerWrite(), 1e-9);
    assertEquals(0.4, rows.get(2).primaryDatagramsPerWrite(), 1e-9);
    assertTrue(table.contains("| unicast | 3 | 2,550 | 2.50 | 9.50 | 120.0 | 180.0 | 100.0 | 150.0 | 0.400 | 60 | 0 | 1.50 |"),
        table);
    TransportScaling.main(new String[] {out.toString(), "test set-up"});
    for (String f : List.of("transport-scaling.json", "cpu-per-write.png", "datagrams-per-write.png", "index.html")) {
      assertTrue(Files.size(out.resolve(f)) > 0, f);
    }
    assertTrue(Files.readString(out.resolve("transport-scaling.json")).contains("\"primary_cpu_us_per_write\" : 40.0"));
  }
}
