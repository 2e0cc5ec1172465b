package io.choir.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The soak's verdict: the fit over the last two thirds, the limits, and the files written. */
class SoakReportTest {
  @TempDir Path out;

  @Test
  void windowIsTheLastTwoThirdsAndAtLeastTwoPoints() {
    assertEquals(10, SoakTrend.windowStart(30)); // minutes 11..30
    assertEquals(1, SoakTrend.windowStart(5)); // minutes 2..5
    assertEquals(0, SoakTrend.windowStart(2));
    assertEquals(0, SoakTrend.windowStart(1));
  }

  @Test
  void aSteadyRiseGrowsAndASawtoothAroundALevelDoesNot() {
    double[] rising = new double[30];
    double[] sawtooth = new double[30];
    for (int i = 0; i < 30; i++) {
      rising[i] = 100 + 2 * i; // +2 MiB a minute: rises 38 over minutes 11..30
      sawtooth[i] = 100 + (i % 3) * 8; // compactions: up and down around 108
    }
    SoakTrend up = SoakTrend.of("heap", "MiB", rising, 16, 0.10);
    assertEquals(2.0, up.slopePerMinute(), 1e-9);
    assertEquals(38.0, up.rise(), 1e-9);
    assertEquals(11, up.fromMinute());
    assertEquals(30, up.toMinute());
    // mean of 120..158 is 139; its tenth (13.9) is below the floor of 16
    assertEquals(16.0, up.limit(), 1e-9);
    assertTrue(up.grows(), up.line());
    SoakTrend saw = SoakTrend.of("heap", "MiB", sawtooth, 16, 0.10);
    assertFalse(saw.grows(), saw.line());
    assertTrue(Math.abs(saw.rise()) < 16, saw.line());
  }

  @Test
  void aFastStartThatLevelsOffIsNotGrowthAndUnknownReadingsAreLeftOut() {
    // the key space filling up in the first third, then flat; one reading missing (-1) and one NaN
    double[] v = {10, 200, 390, 400, 401, -1, 399, 400, Double.NaN, 400, 401, 400};
    SoakTrend t = SoakTrend.of("disk", "MiB", v, 64, 0.10);
    assertEquals(5, t.fromMinute());
    assertEquals(6, t.points());
    assertFalse(t.grows(), t.line());
    SoakTrend few = SoakTrend.of("disk", "MiB", new double[] {-1, -1, 5}, 64, 0.10);
    assertFalse(few.judged());
    assertFalse(few.grows());
  }

  @Test
  void theLimitIsTheShareOfTheMeanWhenThatIsAboveTheFloor() {
    double[] v = new double[9];
    for (int i = 0; i < 9; i++) {
      v[i] = 1000 + 10 * i; // rises 50 over minutes 4..9 (1030..1080), mean 1055: limit 105.5
    }
    SoakTrend t = SoakTrend.of("log", "entries", v, 5, 0.10);
    assertEquals(105.5, t.limit(), 1e-9);
    assertFalse(t.grows(), t.line());
    assertTrue(SoakTrend.of("log", "entries", v, 5, 0.01).grows());
  }

  private void write(int minutes, long heapGrowthPerMinute) throws Exception {
    StringBuilder series = new StringBuilder();
    StringBuilder tsv = new StringBuilder("minute\treplica\trole\theap_after_gc_bytes\trss_bytes\tdisk_bytes\tlog_entries\n");
    for (int m = 1; m <= minutes; m++) {
      series.append(m > 1 ? "," : "").append("{\"t\":").append(60 * m).append(",\"ops\":120000,\"ops_per_sec\":2000,")
          .append("\"p50_ms\":1.5,\"p99_ms\":").append(8 + m % 2).append(",\"max_ms\":40,\"errors\":0}");
      for (int r = 1; r <= 3; r++) {
        long heap = (40L << 20) + (r == 2 ? m * heapGrowthPerMinute : 0);
        tsv.append(m).append('\t').append(r).append('\t').append(r == 1 ? "primary" : "backup").append('\t')
            .append(heap).append('\t').append(300L << 20).append('\t').append((200L + m % 2) << 20).append('\t')
            .append(m == 3 && r == 3 ? "" : String.valueOf(Math.min(m * 120000L, 20000))).append('\n');
      }
    }
    Files.createDirectories(out.resolve("bench"));
    Files.writeString(out.resolve("bench/result.json"), "{\"series\":[" + series + "]}", StandardCharsets.UTF_8);
    Files.writeString(out.resolve("soak.tsv"), tsv.toString(), StandardCharsets.UTF_8);
  }

  @Test
  void aFlatRunIsNoGrowthAndItsFilesAreWritten() throws Exception {
    write(6, 0);
    Map.Entry<String, List<SoakTrend>> r = SoakReport.write(out, "test run", SoakReport.Limits.parse(List.of()));
    assertEquals(1 + 3 * 3, r.getValue().size(), "p99, then heap, disk and log of each of three replicas");
    assertTrue(r.getKey().contains("verdict: no growth"), r.getKey());
    assertTrue(r.getKey().contains(" r2 40.0/300.0/"), r.getKey());
    byte[] png = Files.readAllBytes(out.resolve("soak.png"));
    assertEquals((byte) 0x89, png[0]);
    assertEquals('P', png[1]);
    assertTrue(Files.readString(out.resolve("index.html")).contains("soak.png"));
    assertTrue(Files.readString(out.resolve("soak.json")).contains("\"verdict\" : \"verdict: no growth\""));
  }

  @Test
  void aHeapThatKeepsRisingOnOneReplicaIsGrowth() throws Exception {
    write(6, 8L << 20); // replica 2: +8 MiB of live heap every minute, 32 MiB over minutes 2..6
    Map.Entry<String, List<SoakTrend>> r = SoakReport.write(out, "", SoakReport.Limits.parse(List.of()));
    assertTrue(r.getKey().contains("verdict: GROWTH in replica 2 heap after GC"), r.getKey());
    assertFalse(r.getKey().contains("replica 1 heap after GC") && r.getKey().contains("GROWTH in replica 1"));
    // a floor above the rise makes it pass
    r = SoakReport.write(out, "", SoakReport.Limits.parse(List.of("heap_floor_mib=40")));
    assertTrue(r.getKey().contains("verdict: no growth"), r.getKey());
  }

  @Test
  void unknownLimitsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> SoakReport.Limits.parse(List.of("heap=3")));
    assertThrows(IllegalArgumentException.class, () -> SoakReport.Limits.parse(List.of("share")));
  }
  /** A soak.tsv with wal_bytes: 3 replicas, flat data of 10 MiB, a WAL sawtooth of period 4 up to walPeakMib. */
  private void writeWithWal(int minutes, long walPeakMib, long dataGrowthMibPerMinute) throws Exception {
    StringBuilder series = new StringBuilder();
    StringBuilder tsv = new StringBuilder(
        "minute\treplica\trole\theap_after_gc_bytes\trss_bytes\tdisk_bytes\tlog_entries\twal_bytes\n");
    for (int m = 1; m <= minutes; m++) {
      series.append(m > 1 ? "," : "").append("{\"t\":").append(60 * m).append(",\"ops\":120000,\"ops_per_sec\":2000,")
          .append("\"p50_ms\":1.5,\"p99_ms\":8,\"max_ms\":40,\"errors\":0}");
      for (int r = 1; r <= 3; r++) {
        long wal = (walPeakMib * ((m + r) % 4 + 1) / 4) << 20; // a quarter of the peak .. the peak
        long data = (10L + (r == 1 ? dataGrowthMibPerMinute * m : 0)) << 20;
        tsv.append(m).append('\t').append(r).append('\t').append(r == 1 ? "primary" : "backup").append('\t')
            .append(40L << 20).append('\t').append(300L << 20).append('\t').append(data + wal).append('\t')
            .append(20000).append('\t').append(wal).append('\n');
      }
    }
    Files.createDirectories(out.resolve("bench"));
    Files.writeString(out.resolve("bench/result.json"), "{\"series\":[" + series + "]}", StandardCharsets.UTF_8);
    Files.writeString(out.resolve("soak.tsv"), tsv.toString(), StandardCharsets.UTF_8);
  }

  @Test
  void aWalSawtoothUnderItsBoundIsNoGrowthWhateverItsPhase() throws Exception {
    writeWithWal(20, 250, 0);
    Map.Entry<String, List<SoakTrend>> r = SoakReport.write(out, "", SoakReport.Limits.parse(List.of()));
    assertTrue(r.getKey().contains("verdict: no growth"), r.getKey());
    assertTrue(r.getKey().contains("replica 1 disk without WAL"), r.getKey());
    assertTrue(r.getKey().contains("replica 2 WAL               largest 250.0 MiB against the bound 320 MiB: bounded"),
        r.getKey());
  }

  @Test
  void aWalOverItsBoundOrDataThatKeepsGrowingIsGrowth() throws Exception {
    writeWithWal(20, 400, 0);
    String text = SoakReport.write(out, "", SoakReport.Limits.parse(List.of())).getKey();
    assertTrue(text.contains("verdict: GROWTH in replica 1 WAL (over its bound)"), text);
    writeWithWal(20, 250, 8); // replica 1's data: +8 MiB a minute
    text = SoakReport.write(out, "", SoakReport.Limits.parse(List.of())).getKey();
    assertTrue(text.contains("verdict: GROWTH in replica 1 disk without WAL"), text);
  }
}
