package io.choir.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * TransportScaling summarizes the runs of deploy/bench/transport-scaling.sh: each run folder under
 * OUT/runs holds the bench's result.json and the script's cpu.json (transport, replicas, the primary's
 * and all replicas' CPU seconds over the measured window, the same without the JIT compiler threads, and
 * the peer datagrams and bytes that left each host in the window). It prints one table and writes
 * OUT/transport-scaling.json, OUT/cpu-per-write.png (CPU per write against the number of replicas, one
 * line per transport: the primary solid, all replicas dashed), OUT/datagrams-per-write.png (the
 * primary's peer datagrams per write) and OUT/index.html. A cpu.json of an older run without the JIT and
 * datagram fields gives NaN in those columns ("-" in the table).
 *
 * <p>The CPU window starts when the bench prints its first measured second, so a run's CPU per write
 * divides by the writes after that second (ops minus the first tick's).
 *
 * <p>{@code java -cp ... io.choir.bench.TransportScaling OUT}
 */
public final class TransportScaling {
  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
      new Color(0xd62728)};

  private TransportScaling() {}

  /** One run: its set-up and figures. */
  record Row(String transport, int replicas, double writesPerSec, double p50Ms, double p99Ms,
      double primaryUsPerWrite, double allUsPerWrite, double primaryNoJitUsPerWrite, double allNoJitUsPerWrite,
      double primaryDatagramsPerWrite, double primaryBytesPerWrite, long errors, double loadAtEnd, String folder) {
    Map<String, Object> toMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("transport", transport);
      m.put("replicas", replicas);
      m.put("writes_per_sec", round(writesPerSec, 1));
      m.put("p50_ms", round(p50Ms, 3));
      m.put("p99_ms", round(p99Ms, 3));
      m.put("primary_cpu_us_per_write", round(primaryUsPerWrite, 2));
      m.put("all_replicas_cpu_us_per_write", round(allUsPerWrite, 2));
      m.put("primary_cpu_us_per_write_without_jit", round(primaryNoJitUsPerWrite, 2));
      m.put("all_replicas_cpu_us_per_write_without_jit", round(allNoJitUsPerWrite, 2));
      m.put("primary_datagrams_out_per_write", round(primaryDatagramsPerWrite, 4));
      m.put("primary_bytes_out_per_write", round(primaryBytesPerWrite, 1));
      m.put("errors", errors);
      m.put("load_average_at_end", loadAtEnd);
      m.put("run", folder);
      return m;
    }
  }

  /** The row of one run folder (result.json and cpu.json). */
  static Row row(Path runDir) throws IOException {
    JsonNode r = JSON.readTree(runDir.resolve("result.json").toFile());
    JsonNode cpu = JSON.readTree(runDir.resolve("cpu.json").toFile());
    JsonNode series = r.get("series");
    long first = series != null && series.size() > 0 ? series.get(0).get("ops").asLong() : 0;
    long writes = Math.max(1, r.get("ops").asLong() - first);
    return new Row(cpu.get("transport").asText(), cpu.get("replicas").asInt(),
        r.get("throughput_ops_per_sec").asDouble(), r.get("latency_ms").get("p50").asDouble(),
        r.get("latency_ms").get("p99").asDouble(), cpu.get("primary_cpu_s").asDouble() * 1e6 / writes,
        cpu.get("replicas_cpu_s").asDouble() * 1e6 / writes, perWrite(cpu, "primary_cpu_nojit_s", 1e6, writes),
        perWrite(cpu, "replicas_cpu_nojit_s", 1e6, writes), perWrite(cpu, "primary_udp_out_packets", 1, writes),
        perWrite(cpu, "primary_udp_out_bytes", 1, writes), r.get("errors").get("total").asLong(),
        r.get("machine").get("load_average_at_end").asDouble(), runDir.getFileName().toString());
  }

  /** cpu.json's field times scale over writes; NaN when an older run has no such field. */
  private static double perWrite(JsonNode cpu, String field, double scale, long writes) {
    JsonNode v = cpu.get(field);
    return v == null || !v.isNumber() ? Double.NaN : v.asDouble() * scale / writes;
  }

  /** Every run under out/runs, by transport and then replicas. */
  static List<Row> rows(Path out) throws IOException {
    List<Row> rows = new ArrayList<>();
    try (Stream<Path> dirs = Files.list(out.resolve("runs"))) {
      for (Path d : dirs.filter(d -> Files.exists(d.resolve("cpu.json")) && Files.exists(d.resolve("result.json")))
          .toList()) {
        rows.add(row(d));
      }
    }
    rows.sort(Comparator.comparing(Row::transport).thenComparingInt(Row::replicas));
    return rows;
  }

  /** The human table (Markdown). */
  static String table(List<Row> rows) {
    StringBuilder s = new StringBuilder();
    s.append("| transport | replicas | writes/s | p50 ms | p99 ms | primary CPU µs/write | all replicas CPU µs/write"
        + " | primary µs/write without JIT | all without JIT | primary datagrams/write | primary bytes/write"
        + " | errors | load at end |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (Row r : rows) {
      s.append(String.format(Locale.ROOT, "| %s | %d | %,.0f | %.2f | %.2f | %.1f | %.1f | %s | %s | %s | %s | %d | %.2f |%n",
          r.transport(), r.replicas(), r.writesPerSec(), r.p50Ms(), r.p99Ms(), r.primaryUsPerWrite(),
          r.allUsPerWrite(), fmt(r.primaryNoJitUsPerWrite(), "%.1f"), fmt(r.allNoJitUsPerWrite(), "%.1f"),
          fmt(r.primaryDatagramsPerWrite(), "%.3f"), fmt(r.primaryBytesPerWrite(), "%.0f"), r.errors(), r.loadAtEnd()));
    }
    return s.toString();
  }

  private static String fmt(double v, String format) {
    return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, format, v);
  }

  /** An empty chart with replicas on the x axis, y from 0, and the style of both plots. */
  private static XYChart chartAgainstReplicas(String title, String yTitle) {
    XYChart chart = new XYChartBuilder().width(800).height(450).title(title)
        .xAxisTitle("replicas").yAxisTitle(yTitle).build();
    chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    chart.getStyler().setChartBackgroundColor(Color.WHITE);
    chart.getStyler().setPlotGridLinesColor(new Color(0xdddddd));
    chart.getStyler().setYAxisMin(0.0);
    return chart;
  }

  /** The rows by transport name (sorted), each in the given order. */
  private static Map<String, List<Row>> byTransport(List<Row> rows) {
    Map<String, List<Row>> byTransport = new TreeMap<>();
    for (Row r : rows) {
      byTransport.computeIfAbsent(r.transport(), t -> new ArrayList<>()).add(r);
    }
    return byTransport;
  }

  /** The primary's peer datagrams per write against replicas, one line per transport. */
  static XYChart datagramChart(List<Row> rows) {
    XYChart chart = chartAgainstReplicas("Peer datagrams sent by the primary per write vs replicas",
        "datagrams per write");
    Map<String, List<Row>> byTransport = byTransport(rows.stream()
        .filter(r -> !Double.isNaN(r.primaryDatagramsPerWrite())).toList());
    int i = 0;
    for (Map.Entry<String, List<Row>> e : byTransport.entrySet()) {
      add(chart, e.getKey(), e.getValue().stream().mapToDouble(Row::replicas).toArray(),
          e.getValue().stream().mapToDouble(Row::primaryDatagramsPerWrite).toArray(), COLORS[i++ % COLORS.length],
          new BasicStroke(2f));
    }
    if (byTransport.isEmpty()) {
      add(chart, "no datagram counts", new double[] {0}, new double[] {0}, Color.GRAY, new BasicStroke(1f));
    }
    return chart;
  }

  static XYChart chart(List<Row> rows) {
    XYChart chart = chartAgainstReplicas("CPU per write vs replicas (solid: primary, dashed: all replicas)",
        "CPU µs per write");
    Map<String, List<Row>> byTransport = byTransport(rows);
    int i = 0;
    for (Map.Entry<String, List<Row>> e : byTransport.entrySet()) {
      Color color = COLORS[i++ % COLORS.length];
      double[] x = e.getValue().stream().mapToDouble(Row::replicas).toArray();
      add(chart, e.getKey() + " primary", x, e.getValue().stream().mapToDouble(Row::primaryUsPerWrite).toArray(),
          color, new BasicStroke(2f));
      add(chart, e.getKey() + " all replicas", x, e.getValue().stream().mapToDouble(Row::allUsPerWrite).toArray(),
          color, new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
    }
    if (byTransport.isEmpty()) {
      add(chart, "no runs", new double[] {0}, new double[] {0}, Color.GRAY, new BasicStroke(1f));
    }
    return chart;
  }

  private static void add(XYChart chart, String name, double[] x, double[] y, Color color, BasicStroke stroke) {
    XYSeries s = chart.addSeries(name, x, y);
    s.setMarker(SeriesMarkers.CIRCLE);
    s.setMarkerColor(color);
    s.setLineColor(color);
    s.setLineStyle(stroke);
  }

  static String html(List<Row> rows, String setup) {
    StringBuilder b = new StringBuilder("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        + "<title>Choir: peer transport scaling</title>\n<style>body{font-family:sans-serif;margin:2em}"
        + "td,th{padding:2px 10px;text-align:right}th{text-align:left}</style></head><body>\n"
        + "<h1>Choir: CPU per write against the number of replicas, per peer transport</h1>\n<p>")
        .append(esc(setup)).append("</p>\n<table>\n<tr><th>transport</th><th>replicas</th><th>writes/s</th>"
            + "<th>p50 ms</th><th>p99 ms</th><th>primary CPU µs/write</th><th>all replicas CPU µs/write</th>"
            + "<th>primary without JIT</th><th>all without JIT</th><th>primary datagrams/write</th>"
            + "<th>primary bytes/write</th><th>errors</th><th>load at end</th><th>run</th></tr>\n");
    for (Row r : rows) {
      b.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%d</td><td>%,.0f</td><td>%.2f</td><td>%.2f</td>"
          + "<td>%.1f</td><td>%.1f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%.2f</td>"
          + "<td><a href=\"runs/%s/index.html\">%s</a></td></tr>%n",
          esc(r.transport()), r.replicas(), r.writesPerSec(), r.p50Ms(), r.p99Ms(), r.primaryUsPerWrite(),
          r.allUsPerWrite(), fmt(r.primaryNoJitUsPerWrite(), "%.1f"), fmt(r.allNoJitUsPerWrite(), "%.1f"),
          fmt(r.primaryDatagramsPerWrite(), "%.3f"), fmt(r.primaryBytesPerWrite(), "%.0f"), r.errors(),
          r.loadAtEnd(), esc(r.folder()), esc(r.folder())));
    }
    b.append("</table>\n<p><img src=\"cpu-per-write.png\" alt=\"CPU per write vs replicas\"></p>\n"
        + "<p><img src=\"datagrams-per-write.png\" alt=\"peer datagrams per write vs replicas\"></p>\n"
        + "<p><a href=\"transport-scaling.json\">transport-scaling.json</a></p>\n</body></html>\n");
    return b.toString();
  }

  private static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }

  static double round(double v, int digits) {
    double f = Math.pow(10, digits);
    return Math.round(v * f) / f;
  }

  /** Prints the table and writes the JSON, the plot and the page into args[0]; args[1] describes the set-up. */
  public static void main(String[] args) throws IOException {
    if (args.length < 1) {
      System.err.println("usage: TransportScaling OUT [SETUP]");
      System.exit(2);
    }
    Path out = Path.of(args[0]);
    String setup = args.length > 1 ? args[1] : "";
    List<Row> rows = rows(out);
    System.out.print(table(rows));
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("setup", setup);
    m.put("runs", rows.stream().map(Row::toMap).toList());
    Files.writeString(out.resolve("transport-scaling.json"), JSON.writeValueAsString(m) + "\n", StandardCharsets.UTF_8);
    System.setProperty("java.awt.headless", "true");
    BitmapEncoder.saveBitmap(chart(rows), out.resolve("cpu-per-write.png").toString(), BitmapEncoder.BitmapFormat.PNG);
    BitmapEncoder.saveBitmap(datagramChart(rows), out.resolve("datagrams-per-write.png").toString(),
        BitmapEncoder.BitmapFormat.PNG);
    Files.writeString(out.resolve("index.html"), html(rows, setup), StandardCharsets.UTF_8);
  }
}
