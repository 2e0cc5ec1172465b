package io.choir.bench.engine;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * BenchReport writes a result to a folder: result.json, latency.png (p50/p99/p99.9 per tick),
 * throughput.png (ops/s per tick) and index.html showing both. Plots are drawn headless.
 */
public final class BenchReport {
  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private BenchReport() {}

  /** The result as pretty JSON. */
  public static String json(BenchResult r) {
    try {
      return JSON.writeValueAsString(r.toMap());
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Writes every file into dir (created when missing).
   *
   * @return the files written (the plots are left out, with a warning on stderr, when they fail)
   */
  public static List<Path> write(BenchResult r, Path dir) throws IOException {
    Files.createDirectories(dir);
    Path json = dir.resolve("result.json");
    Files.writeString(json, json(r) + "\n", StandardCharsets.UTF_8);
    Path latency = dir.resolve("latency.png");
    Path throughput = dir.resolve("throughput.png");
    Path html = dir.resolve("index.html");
    try {
      System.setProperty("java.awt.headless", "true");
      BitmapEncoder.saveBitmap(latencyChart(r), latency.toString(), BitmapEncoder.BitmapFormat.PNG);
      BitmapEncoder.saveBitmap(throughputChart(r), throughput.toString(), BitmapEncoder.BitmapFormat.PNG);
    } catch (IOException | RuntimeException | Error e) {
      if (e instanceof VirtualMachineError) {
        throw (VirtualMachineError) e;
      }
      System.err.println("bench: could not draw the plots: " + e);
      Files.writeString(html, html(r), StandardCharsets.UTF_8);
      return List.of(json, html);
    }
    Files.writeString(html, html(r), StandardCharsets.UTF_8);
    return List.of(json, latency, throughput, html);
  }

  static String title(BenchResult r) {
    BenchConfig c = r.config();
    return String.format(Locale.ROOT, "%s: %d clients, %d B values, write ratio %.2f", r.target(), c.clients(),
        c.valueSize(), c.writeRatio());
  }

  static XYChart latencyChart(BenchResult r) {
    XYChart chart = base(r, "latency per second - " + title(r), "latency (ms)");
    List<BenchResult.Point> s = r.series();
    double[] t = s.stream().mapToDouble(BenchResult.Point::t).toArray();
    add(chart, "p50", t, s.stream().mapToDouble(BenchResult.Point::p50Ms).toArray(), new Color(0x1f77b4));
    add(chart, "p99", t, s.stream().mapToDouble(BenchResult.Point::p99Ms).toArray(), new Color(0xff7f0e));
    add(chart, "p99.9", t, s.stream().mapToDouble(BenchResult.Point::p999Ms).toArray(), new Color(0xd62728));
    return chart;
  }

  static XYChart throughputChart(BenchResult r) {
    XYChart chart = base(r, "throughput per second - " + title(r), "ops/s");
    List<BenchResult.Point> s = r.series();
    double[] t = s.stream().mapToDouble(BenchResult.Point::t).toArray();
    add(chart, "ops/s", t, s.stream().mapToDouble(BenchResult.Point::opsPerSecond).toArray(), new Color(0x2ca02c));
    chart.getStyler().setYAxisMin(0.0);
    return chart;
  }

  private static XYChart base(BenchResult r, String title, String yTitle) {
    XYChart chart = new XYChartBuilder().width(800).height(360).title(title)
        .xAxisTitle("time (s)").yAxisTitle(yTitle).build();
    chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    chart.getStyler().setChartBackgroundColor(Color.WHITE);
    chart.getStyler().setPlotGridLinesColor(new Color(0xdddddd));
    chart.getStyler().setYAxisMin(0.0);
    return chart;
  }

  private static void add(XYChart chart, String name, double[] x, double[] y, Color color) {
    if (x.length == 0) {
      x = new double[] {0};
      y = new double[] {0};
    }
    XYSeries s = chart.addSeries(name, x, y);
    s.setMarker(SeriesMarkers.NONE);
    s.setLineColor(color);
    s.setLineStyle(new BasicStroke(1.5f));
  }

  static String html(BenchResult r) {
    Map<String, Object> m = r.toMap();
    StringBuilder b = new StringBuilder();
    b.append("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>").append(esc(title(r)))
        .append("</title>\n<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}"
            + "th{text-align:left}</style></head><body>\n");
    b.append("<h1>").append(esc(title(r))).append("</h1>\n");
    b.append("<p>").append(esc(String.valueOf(m.get("started_at")))).append(" &middot; config ")
        .append(esc(String.valueOf(m.get("config")))).append(" &middot; target ")
        .append(esc(String.valueOf(m.get("target_info")))).append("</p>\n<table>\n");
    row(b, "throughput (ops/s)", String.format(Locale.ROOT, "%,.0f", r.throughput()));
    row(b, "operations", String.format(Locale.ROOT, "%,d (%,d writes, %,d reads)", r.ops(), r.writes(), r.reads()));
    row(b, "p50 (ms)", fmt(r.percentileMs(50)));
    row(b, "p90 (ms)", fmt(r.percentileMs(90)));
    row(b, "p99 (ms)", fmt(r.percentileMs(99)));
    row(b, "p99.9 (ms)", fmt(r.percentileMs(99.9)));
    row(b, "max (ms)", fmt(r.maxMs()));
    row(b, "errors", r.errorCount() + (r.errors().isEmpty() ? "" : " " + r.errors()));
    b.append("</table>\n<p><img src=\"latency.png\" alt=\"latency per second\"></p>\n"
        + "<p><img src=\"throughput.png\" alt=\"throughput per second\"></p>\n"
        + "<p><a href=\"result.json\">result.json</a></p>\n</body></html>\n");
    return b.toString();
  }

  private static void row(StringBuilder b, String k, String v) {
    b.append("<tr><th>").append(esc(k)).append("</th><td>").append(esc(v)).append("</td></tr>\n");
  }

  private static String fmt(double v) {
    return String.format(Locale.ROOT, "%.3f", v);
  }

  private static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
