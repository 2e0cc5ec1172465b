package io.choir.jepsen;

import io.choir.checker.History;
import io.choir.checker.Invocation;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.Shape;
import java.awt.geom.Rectangle2D;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Annotation;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.Marker;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * Charts draws the run's PNG plots with XChart, Jepsen style: every operation's latency over time
 * (latency-raw.png), latency quantiles per time window (latency-quantiles.png) and the completion rate
 * per second (rate.png), by operation (and outcome), with the nemesis periods shaded.
 */
public final class Charts {
  static final int WIDTH = 1200;
  static final int HEIGHT = 520;
  private static final Color SHADE = new Color(255, 140, 0, 45);
  private static final Color SHADE_EDGE = new Color(200, 100, 0, 160);

  private Charts() {}

  /** latencyRaw writes one point per completed operation: x invoke time (s), y latency (ms, log scale). */
  public static void latencyRaw(History history, List<Periods.Period> periods, Path file) throws IOException {
    XYChart chart = base("Latency of every operation", "time (s)", "latency (ms)");
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    chart.getStyler().setYAxisLogarithmic(true);
    chart.getStyler().setMarkerSize(4);
    Map<String, List<double[]>> series = new TreeMap<>();
    for (Invocation inv : history.invocations()) {
      if (inv.completeNanos() < 0) {
        continue;
      }
      double x = inv.invokeNanos() / 1e9;
      double y = Math.max(0.01, (inv.completeNanos() - inv.invokeNanos()) / 1e6);
      series.computeIfAbsent(seriesName(inv), k -> new ArrayList<>()).add(new double[] {x, y});
    }
    if (series.isEmpty()) {
      series.put("no operations", List.of(new double[] {0, 1}));
    }
    for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
      double[] xs = e.getValue().stream().mapToDouble(p -> p[0]).toArray();
      double[] ys = e.getValue().stream().mapToDouble(p -> p[1]).toArray();
      XYSeries s = chart.addSeries(e.getKey(), xs, ys);
      s.setMarker(SeriesMarkers.CIRCLE);
      s.setMarkerColor(color(e.getKey()));
    }
    shade(chart, periods);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  /** QUANTILES are the quantiles latency-quantiles.png draws per window (1.0 = the maximum). */
  static final double[] QUANTILES = {0.5, 0.95, 0.99, 1.0};

  /** QUANTILE_NAMES name {@link #QUANTILES} in the legend. */
  static final String[] QUANTILE_NAMES = {"p50", "p95", "p99", "max"};

  /** MAX_WINDOWS bounds the windows of latency-quantiles.png; a long run gets wider windows. */
  static final int MAX_WINDOWS = 150;

  /**
   * Window is the latency quantiles of one operation type in one time window.
   *
   * @param f the operation ({@code read}, {@code write}, {@code cas})
   * @param startNanos the window's start (invocation times from here to start + width)
   * @param count operations invoked in it that completed
   * @param latenciesMs the latency at each of {@link #QUANTILES}, in milliseconds
   */
  record Window(String f, long startNanos, int count, double[] latenciesMs) {}

  /**
   * quantileWindowNanos is the window width for a history ending at {@code endNanos}: 1 s, or whole
   * seconds wide enough that there are at most {@link #MAX_WINDOWS}.
   */
  static long quantileWindowNanos(long endNanos) {
    long seconds = Math.max(1, (endNanos / 1_000_000_000L + MAX_WINDOWS) / MAX_WINDOWS);
    return seconds * 1_000_000_000L;
  }

  /**
   * quantileWindows groups the completed operations (ok, fail, or info that completed) by type and by
   * the window of their invocation, and computes {@link #QUANTILES} of their latency (nearest rank).
   */
  static List<Window> quantileWindows(History history, long windowNanos) {
    Map<String, Map<Long, List<Double>>> groups = new TreeMap<>();
    for (Invocation inv : history.invocations()) {
      if (inv.completeNanos() < 0) {
        continue;
      }
      groups.computeIfAbsent(inv.op().type().jsonName(), k -> new TreeMap<>())
          .computeIfAbsent(inv.invokeNanos() / windowNanos, k -> new ArrayList<>())
          .add((inv.completeNanos() - inv.invokeNanos()) / 1e6);
    }
    List<Window> out = new ArrayList<>();
    groups.forEach((f, windows) -> windows.forEach((w, latencies) -> {
      double[] sorted = latencies.stream().mapToDouble(Double::doubleValue).sorted().toArray();
      double[] q = new double[QUANTILES.length];
      for (int i = 0; i < q.length; i++) {
        int rank = (int) Math.ceil(QUANTILES[i] * sorted.length);
        q[i] = sorted[Math.max(0, Math.min(sorted.length, rank) - 1)];
      }
      out.add(new Window(f, w * windowNanos, sorted.length, q));
    }));
    return out;
  }

  /**
   * latencyQuantiles writes p50, p95, p99 and the maximum latency per time window and operation type
   * (x: the window's middle in s, y: ms on a log scale), nemesis periods shaded.
   */
  public static void latencyQuantiles(History history, List<Periods.Period> periods, Path file) throws IOException {
    long end = 0;
    for (Invocation inv : history.invocations()) {
      end = Math.max(end, inv.completeNanos());
    }
    long window = quantileWindowNanos(end);
    XYChart chart = base(String.format(Locale.ROOT, "Latency quantiles per %d s window", window / 1_000_000_000L),
        "time (s)", "latency (ms)");
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
    chart.getStyler().setYAxisLogarithmic(true);
    chart.getStyler().setMarkerSize(5);
    Map<String, List<Window>> byF = new TreeMap<>();
    for (Window w : quantileWindows(history, window)) {
      byF.computeIfAbsent(w.f(), k -> new ArrayList<>()).add(w);
    }
    if (byF.isEmpty()) {
      XYSeries s = chart.addSeries("no operations", new double[] {0}, new double[] {1});
      s.setMarker(SeriesMarkers.NONE);
    }
    Marker[] markers = {SeriesMarkers.CIRCLE, SeriesMarkers.SQUARE, SeriesMarkers.DIAMOND, SeriesMarkers.TRIANGLE_UP};
    BasicStroke[] lines = {SeriesLines.SOLID, SeriesLines.DASH_DASH, SeriesLines.DOT_DOT, SeriesLines.NONE};
    for (Map.Entry<String, List<Window>> e : byF.entrySet()) {
      double[] xs = e.getValue().stream().mapToDouble(w -> (w.startNanos() + window / 2.0) / 1e9).toArray();
      for (int q = 0; q < QUANTILES.length; q++) {
        int at = q;
        double[] ys = e.getValue().stream().mapToDouble(w -> Math.max(0.01, w.latenciesMs()[at])).toArray();
        XYSeries s = chart.addSeries(e.getKey() + " " + QUANTILE_NAMES[q], xs, ys);
        s.setMarker(markers[q]);
        s.setLineStyle(lines[q]);
        Color c = color(e.getKey());
        s.setLineColor(c);
        s.setMarkerColor(c);
      }
    }
    shade(chart, periods);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  /** rate writes the completions per second, one line per operation and outcome. */
  public static void rate(History history, List<Periods.Period> periods, Path file) throws IOException {
    XYChart chart = base("Throughput", "time (s)", "completions / s");
    chart.getStyler().setXAxisDecimalPattern("0");
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
    chart.getStyler().setMarkerSize(0);
    long lastSecond = 0;
    Map<String, Map<Long, Integer>> counts = new TreeMap<>();
    for (Invocation inv : history.invocations()) {
      if (inv.completeNanos() < 0) {
        continue;
      }
      long second = inv.completeNanos() / 1_000_000_000L;
      lastSecond = Math.max(lastSecond, second);
      counts.computeIfAbsent(seriesName(inv), k -> new TreeMap<>()).merge(second, 1, Integer::sum);
    }
    for (Periods.Period p : periods) {
      lastSecond = Math.max(lastSecond, p.endNanos() / 1_000_000_000L);
    }
    if (counts.isEmpty()) {
      counts.put("no operations", Map.of());
    }
    for (Map.Entry<String, Map<Long, Integer>> e : counts.entrySet()) {
      int n = (int) lastSecond + 1;
      double[] xs = new double[n];
      double[] ys = new double[n];
      for (int i = 0; i < n; i++) {
        xs[i] = i;
        ys[i] = e.getValue().getOrDefault((long) i, 0);
      }
      XYSeries s = chart.addSeries(e.getKey(), xs, ys);
      s.setMarker(SeriesMarkers.NONE);
      s.setLineColor(color(e.getKey()));
    }
    shade(chart, periods);
    BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  /** seriesName is e.g. {@code write ok}, {@code cas fail}, {@code read info}. */
  static String seriesName(Invocation inv) {
    return inv.op().type().jsonName() + " " + inv.outcome().name().toLowerCase(Locale.ROOT);
  }

  private static XYChart base(String title, String x, String y) {
    XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(x).yAxisTitle(y).build();
    XYStyler s = chart.getStyler();
    s.setLegendPosition(Styler.LegendPosition.OutsideE);
    s.setChartBackgroundColor(Color.WHITE);
    s.setPlotBackgroundColor(Color.WHITE);
    s.setPlotGridLinesColor(new Color(225, 225, 225));
    s.setAntiAlias(true);
    return chart;
  }

  private static void shade(XYChart chart, List<Periods.Period> periods) {
    for (Periods.Period p : periods) {
      chart.addAnnotation(new Band(p.startNanos() / 1e9, p.endNanos() / 1e9, p.label()));
    }
  }

  private static Color color(String series) {
    Color base = switch (series.substring(0, series.indexOf(' ') < 0 ? series.length() : series.indexOf(' '))) {
      case "read" -> new Color(31, 119, 180);
      case "write" -> new Color(44, 160, 44);
      case "cas" -> new Color(148, 103, 189);
      default -> Color.GRAY;
    };
    if (series.endsWith(" fail")) {
      return base.brighter().brighter();
    }
    if (series.endsWith(" info")) {
      return switch (series) {
        case "read info" -> new Color(255, 127, 14);
        case "write info" -> new Color(214, 39, 40);
        default -> new Color(140, 20, 20);
      };
    }
    return base;
  }

  /** Band is a shaded vertical band over the plot between two x values, labelled at the top. */
  static final class Band extends Annotation {
    private final double x0;
    private final double x1;
    private final String label;

    Band(double x0, double x1, String label) {
      super(false);
      this.x0 = x0;
      this.x1 = x1;
      this.label = label;
    }

    @Override
    public void paint(Graphics2D g) {
      if (!isVisible) {
        return;
      }
      int minX = getXAxisScreenValueForMin();
      int maxX = getXAxisScreenValueForMax();
      int a = Math.max(minX, Math.min(maxX, getXAxisScreenValue(x0)));
      int b = Math.max(minX, Math.min(maxX, getXAxisScreenValue(x1)));
      int top = Math.min(getYAxisScreenValueForMin(), getYAxisScreenValueForMax());
      int bottom = Math.max(getYAxisScreenValueForMin(), getYAxisScreenValueForMax());
      int w = Math.max(1, b - a);
      g.setColor(SHADE);
      g.fillRect(a, top, w, bottom - top);
      g.setColor(SHADE_EDGE);
      g.drawLine(a, top, a, bottom);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
      Shape clip = g.getClip();
      g.clipRect(a, top, w, bottom - top); // a label never spills into the next band
      g.drawString(label, a + 2, top + 11);
      g.setClip(clip);
      bounds = new Rectangle2D.Double(a, top, w, bottom - top);
    }
  }
}
