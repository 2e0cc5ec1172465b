package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.choir.checker.History;
import io.choir.checker.Operation;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** latency-quantiles.png: the windows, the quantiles, and a PNG that reads back. */
class ChartsTest {
  @TempDir
  Path tmp;

  /** 100 writes invoked at 0 with latencies 1..100 ms, and one read in second 2 (5 ms). */
  private static History windows() {
    AtomicLong clock = new AtomicLong();
    Recorder r = new Recorder(null, clock::get);
    for (int i = 1; i <= 100; i++) {
      r.invoke(Operation.write(i, "k", 1), "n1");
    }
    for (int i = 1; i <= 100; i++) {
      clock.set(i * 1_000_000L);
      r.ok(i);
    }
    clock.set(2_500_000_000L);
    r.invoke(Operation.read(0, "k"), "n1");
    clock.addAndGet(5_000_000L);
    r.okRead(0, 1L);
    r.invoke(Operation.write(200, "k", 2), "n1"); // never completes: no latency to plot
    return r.history();
  }

  @Test
  void shouldComputeQuantilesPerOperationAndWindowByNearestRank() {
    List<Charts.Window> ws = Charts.quantileWindows(windows(), 1_000_000_000L);
    assertEquals(2, ws.size());
    Charts.Window read = ws.get(0);
    assertEquals("read", read.f());
    assertEquals(2_000_000_000L, read.startNanos());
    assertArrayEquals(new double[] {5, 5, 5, 5}, read.latenciesMs(), 1e-9);
    Charts.Window write = ws.get(1);
    assertEquals("write", write.f());
    assertEquals(0, write.startNanos());
    assertEquals(100, write.count());
    assertArrayEquals(new double[] {50, 95, 99, 100}, write.latenciesMs(), 1e-9);
  }

  @Test
  void shouldWidenTheWindowForLongRuns() {
    assertEquals(1_000_000_000L, Charts.quantileWindowNanos(0));
    assertEquals(1_000_000_000L, Charts.quantileWindowNanos(30_000_000_000L));
    long hour = 3_600_000_000_000L;
    long w = Charts.quantileWindowNanos(hour);
    assertEquals(0, w % 1_000_000_000L, "whole seconds");
    assertEquals(true, hour / w + 1 <= Charts.MAX_WINDOWS, "at most " + Charts.MAX_WINDOWS + " windows: " + w);
  }

  @Test
  void shouldWriteAPngThatReadsBack() throws Exception {
    Path file = tmp.resolve("latency-quantiles.png");
    List<Periods.Period> periods = List.of(new Periods.Period("kill-primary", List.of("n1"), 500_000_000L, 2_000_000_000L));
    Charts.latencyQuantiles(windows(), periods, file);
    BufferedImage img = ImageIO.read(file.toFile());
    assertNotNull(img, "ImageIO reads it");
    assertEquals(Charts.WIDTH, img.getWidth());
    assertEquals(Charts.HEIGHT, img.getHeight());
  }

  @Test
  void shouldDrawAnEmptyHistory() throws Exception {
    Path file = tmp.resolve("empty.png");
    Charts.latencyQuantiles(new Recorder(null, System::nanoTime).history(), List.of(), file);
    assertNotNull(ImageIO.read(file.toFile()));
  }

  @Test
  void shouldDrawTheReportsSyntheticHistory() throws Exception {
    Recorder r = ReportTest.synthetic(false);
    History h = r.history();
    Path file = tmp.resolve("synthetic.png");
    Charts.latencyQuantiles(h, Periods.of(r.nemesisEvents(), Report.endNanos(h, r.nemesisEvents())), file);
    assertNotNull(ImageIO.read(file.toFile()));
  }
}
