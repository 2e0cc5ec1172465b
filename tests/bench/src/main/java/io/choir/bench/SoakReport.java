package io.choir.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import javax.imageio.ImageIO;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * SoakReport summarizes a run of deploy/bench/soak.sh. The run folder OUT holds bench/result.json (the
 * bench ran with one-minute ticks: its series has the operations and the p99 of every minute) and
 * soak.tsv, one line per minute and replica that the script wrote after each minute: the replica's heap
 * after a full collection, its resident set, the disk use of its data folder and its log entries
 * (-1: not read). It judges four series for growth over the last two thirds of the run
 * ({@link SoakTrend}): the p99 per minute, and per replica the heap after GC, the disk use and the log
 * entries. Prints the per-minute table and the verdict, writes OUT/soak.json, OUT/soak.png (the four
 * series, one panel each) and OUT/index.html.
 *
 * <p>{@code java -cp ... io.choir.bench.SoakReport OUT [SETUP] [key=value ...]} with the limits
 * heap_floor_mib (16), disk_floor_mib (64), log_floor_entries (1000), p99_floor_ms (5) and share (0.10):
 * a series grows when its fitted rise over the window passes the larger of its floor and share times its
 * mean. When soak.tsv also has wal_bytes (the write-ahead log's share of the disk use), the disk is
 * judged without the WAL, and the WAL by its largest reading against wal_cap_mib (320: RocksDB's
 * max_total_wal_size of 256 MiB, the file being written and its preallocation): it is a sawtooth
 * ({@link WalBound}). Exit code 0 when nothing grows, 1 when something does, 2 on bad input.
 */
public final class SoakReport {
  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final double MIB = 1 << 20;
  private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
      new Color(0xd62728), new Color(0x9467bd)};

  private SoakReport() {}

  /**
   * One replica's readings at the end of one minute (-1: not read). walBytes is the part of diskBytes
   * in RocksDB's write-ahead log files (allocated blocks, as du counts them); -1 in a soak.tsv without it.
   */
  record Sample(int minute, int replica, String role, long heapAfterGcBytes, long rssBytes, long diskBytes,
      long logEntries, long walBytes) {
    Sample(int minute, int replica, String role, long heapAfterGcBytes, long rssBytes, long diskBytes,
        long logEntries) {
      this(minute, replica, role, heapAfterGcBytes, rssBytes, diskBytes, logEntries, -1);
    }

    /** The disk use without the write-ahead log, or -1 when either is unknown. */
    long dataBytes() {
      return diskBytes < 0 || walBytes < 0 ? -1 : Math.max(0, diskBytes - walBytes);
    }
  }

  /**
   * The write-ahead log's largest reading on one replica against its bound: RocksDB keeps WAL files
   * until every column family with data in them is flushed, and max_total_wal_size (256 MiB in
   * RocksDbTuning) forces that flush, so the WAL is a sawtooth that must stay under the bound (plus the
   * file being written and its preallocated blocks); a fitted line through a sawtooth says little.
   */
  record WalBound(int replica, double maxMib, double capMib) {
    boolean exceeded() {
      return maxMib > capMib;
    }

    String line() {
      return String.format(Locale.ROOT, "replica %d WAL               largest %.1f MiB against the bound %.0f MiB: %s",
          replica, maxMib, capMib, exceeded() ? "OVER" : "bounded");
    }
  }

  /** One minute of the bench: its operations, errors and latency percentiles. */
  record Minute(int minute, long ops, double opsPerSec, double p50Ms, double p99Ms, double maxMs, long errors) {}

  /** The limits of the verdict. */
  record Limits(double heapFloorMib, double diskFloorMib, double logFloorEntries, double p99FloorMs, double share,
      double walCapMib) {
    Limits(double heapFloorMib, double diskFloorMib, double logFloorEntries, double p99FloorMs, double share) {
      this(heapFloorMib, diskFloorMib, logFloorEntries, p99FloorMs, share, 320);
    }

    static Limits parse(List<String> args) {
      Map<String, Double> v = new TreeMap<>(Map.of("heap_floor_mib", 16.0, "disk_floor_mib", 64.0,
          "log_floor_entries", 1000.0, "p99_floor_ms", 5.0, "share", 0.10, "wal_cap_mib", 320.0));
      for (String a : args) {
        int eq = a.indexOf('=');
        if (eq < 0 || !v.containsKey(a.substring(0, eq))) {
          throw new IllegalArgumentException("unknown limit " + a + " (known: " + v.keySet() + ")");
        }
        v.put(a.substring(0, eq), Double.parseDouble(a.substring(eq + 1)));
      }
      return new Limits(v.get("heap_floor_mib"), v.get("disk_floor_mib"), v.get("log_floor_entries"),
          v.get("p99_floor_ms"), v.get("share"), v.get("wal_cap_mib"));
    }
  }

  /** The samples of soak.tsv (a header line first; columns by name, so extra columns are ignored). */
  static List<Sample> samples(Path tsv) throws IOException {
    List<String> lines = Files.readAllLines(tsv, StandardCharsets.UTF_8);
    if (lines.isEmpty()) {
      return List.of();
    }
    List<String> head = Arrays.asList(lines.get(0).split("\t"));
    List<Sample> out = new ArrayList<>();
    for (String line : lines.subList(1, lines.size())) {
      if (line.isBlank()) {
        continue;
      }
      String[] f = line.split("\t", -1);
      out.add(new Sample(Integer.parseInt(col(f, head, "minute")), Integer.parseInt(col(f, head, "replica")),
          col(f, head, "role"), num(col(f, head, "heap_after_gc_bytes")), num(col(f, head, "rss_bytes")),
          num(col(f, head, "disk_bytes")), num(col(f, head, "log_entries")),
          head.contains("wal_bytes") ? num(col(f, head, "wal_bytes")) : -1));
    }
    return out;
  }

  private static String col(String[] f, List<String> head, String name) {
    int i = head.indexOf(name);
    if (i < 0) {
      throw new IllegalArgumentException("soak.tsv has no column " + name);
    }
    return i < f.length ? f[i].trim() : "";
  }

  private static long num(String s) {
    try {
      return s.isEmpty() ? -1 : Long.parseLong(s);
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** The minutes of the bench's result.json (its series, one point per one-minute tick). */
  static List<Minute> minutes(Path resultJson) throws IOException {
    JsonNode series = JSON.readTree(resultJson.toFile()).get("series");
    List<Minute> out = new ArrayList<>();
    for (int i = 0; series != null && i < series.size(); i++) {
      JsonNode p = series.get(i);
      out.add(new Minute(i + 1, p.get("ops").asLong(), p.get("ops_per_sec").asDouble(), p.get("p50_ms").asDouble(),
          p.get("p99_ms").asDouble(), p.get("max_ms").asDouble(), p.get("errors").asLong()));
    }
    return out;
  }

  /** values[m - 1] for minutes 1..n of one replica's field (NaN where not read). */
  static double[] perMinute(List<Sample> samples, int replica, int n, java.util.function.ToLongFunction<Sample> f,
      double scale) {
    double[] v = new double[n];
    Arrays.fill(v, Double.NaN);
    for (Sample s : samples) {
      long x = f.applyAsLong(s);
      if (s.replica() == replica && s.minute() >= 1 && s.minute() <= n && x >= 0) {
        v[s.minute() - 1] = x / scale;
      }
    }
    return v;
  }

  /** Every trend the verdict judges: the p99, then per replica heap after GC, disk use and log entries. */
  static List<SoakTrend> trends(List<Minute> minutes, List<Sample> samples, Limits l) {
    int n = Math.max(minutes.size(), samples.stream().mapToInt(Sample::minute).max().orElse(0));
    List<SoakTrend> out = new ArrayList<>();
    double[] p99 = new double[n];
    Arrays.fill(p99, Double.NaN);
    for (Minute m : minutes) {
      if (m.ops() > 0) {
        p99[m.minute() - 1] = m.p99Ms();
      }
    }
    out.add(SoakTrend.of("p99 per minute", "ms", p99, l.p99FloorMs(), l.share()));
    for (int r : replicas(samples)) {
      out.add(SoakTrend.of("replica " + r + " heap after GC", "MiB",
          perMinute(samples, r, n, Sample::heapAfterGcBytes, MIB), l.heapFloorMib(), l.share()));
      boolean split = hasWal(samples, r);
      out.add(SoakTrend.of("replica " + r + (split ? " disk without WAL" : " disk"), "MiB",
          perMinute(samples, r, n, split ? Sample::dataBytes : Sample::diskBytes, MIB), l.diskFloorMib(), l.share()));
      out.add(SoakTrend.of("replica " + r + " log entries", "entries",
          perMinute(samples, r, n, Sample::logEntries, 1), l.logFloorEntries(), l.share()));
    }
    return out;
  }

  /** True when soak.tsv says how much of replica r's disk use is the write-ahead log. */
  static boolean hasWal(List<Sample> samples, int r) {
    return samples.stream().anyMatch(s -> s.replica() == r && s.walBytes() >= 0);
  }

  /** The WAL's largest reading of every replica that has WAL readings, against the cap. */
  static List<WalBound> walBounds(List<Sample> samples, Limits l) {
    List<WalBound> out = new ArrayList<>();
    for (int r : replicas(samples)) {
      long max = samples.stream().filter(s -> s.replica() == r).mapToLong(Sample::walBytes).max().orElse(-1);
      if (max >= 0) {
        out.add(new WalBound(r, max / MIB, l.walCapMib()));
      }
    }
    return out;
  }

  static TreeSet<Integer> replicas(List<Sample> samples) {
    TreeSet<Integer> ids = new TreeSet<>();
    samples.forEach(s -> ids.add(s.replica()));
    return ids;
  }

  /** The printed report: one line per minute, then one per trend, then the verdict. */
  static String text(List<Minute> minutes, List<Sample> samples, List<SoakTrend> trends, String setup) {
    return text(minutes, samples, trends, List.of(), setup);
  }

  static String text(List<Minute> minutes, List<Sample> samples, List<SoakTrend> trends, List<WalBound> wal,
      String setup) {
    StringBuilder b = new StringBuilder();
    if (!setup.isEmpty()) {
      b.append(setup).append('\n');
    }
    b.append(String.format(Locale.ROOT, "%6s %9s %9s %9s %7s  %s%n", "minute", "ops", "p50 ms", "p99 ms", "errors",
        "per replica: heap after GC MiB / RSS MiB / disk MiB / log entries"));
    int n = Math.max(minutes.size(), samples.stream().mapToInt(Sample::minute).max().orElse(0));
    for (int m = 1; m <= n; m++) {
      Minute bm = m <= minutes.size() ? minutes.get(m - 1) : null;
      b.append(bm == null ? String.format(Locale.ROOT, "%6d %9s %9s %9s %7s ", m, "-", "-", "-", "-")
          : String.format(Locale.ROOT, "%6d %,9d %9.2f %9.2f %7d ", m, bm.ops(), bm.p50Ms(), bm.p99Ms(), bm.errors()));
      for (Sample s : samples) {
        if (s.minute() == m) {
          b.append(String.format(Locale.ROOT, " r%d %s/%s/%s/%s", s.replica(), mib(s.heapAfterGcBytes()),
              mib(s.rssBytes()), mib(s.diskBytes()), s.logEntries() < 0 ? "-" : String.valueOf(s.logEntries())));
        }
      }
      b.append('\n');
    }
    for (SoakTrend t : trends) {
      b.append(t.line()).append('\n');
    }
    for (WalBound w : wal) {
      b.append(w.line()).append('\n');
    }
    b.append(verdict(trends, wal)).append('\n');
    return b.toString();
  }

  private static String mib(long bytes) {
    return bytes < 0 ? "-" : String.format(Locale.ROOT, "%.1f", bytes / MIB);
  }

  static String verdict(List<SoakTrend> trends) {
    return verdict(trends, List.of());
  }

  static String verdict(List<SoakTrend> trends, List<WalBound> wal) {
    List<String> growing = new ArrayList<>(trends.stream().filter(SoakTrend::grows).map(SoakTrend::name).toList());
    wal.stream().filter(WalBound::exceeded).forEach(w -> growing.add("replica " + w.replica() + " WAL (over its bound)"));
    long unjudged = trends.stream().filter(t -> !t.judged()).count();
    if (!growing.isEmpty()) {
      return "verdict: GROWTH in " + String.join(", ", growing);
    }
    return "verdict: no growth" + (unjudged > 0 ? " (" + unjudged + " series not judged: too few readings)" : "");
  }

  /** The four panels drawn into one image: p99, heap after GC, disk use, log entries per minute. */
  static BufferedImage image(List<Minute> minutes, List<Sample> samples, String title) {
    int n = Math.max(minutes.size(), samples.stream().mapToInt(Sample::minute).max().orElse(0));
    List<XYChart> charts = new ArrayList<>();
    XYChart p99 = chart("p99 per minute - " + title, "ms");
    double[] x = minutes.stream().mapToDouble(Minute::minute).toArray();
    if (x.length > 0) {
      add(p99, "p99", x, minutes.stream().mapToDouble(Minute::p99Ms).toArray(), 0);
      add(p99, "p50", x, minutes.stream().mapToDouble(Minute::p50Ms).toArray(), 1);
    }
    charts.add(p99);
    charts.add(perReplica("heap after full GC per replica", "MiB", samples, n, Sample::heapAfterGcBytes, MIB));
    boolean split = replicas(samples).stream().allMatch(r -> hasWal(samples, r)) && !samples.isEmpty();
    charts.add(perReplica(split ? "disk use without the WAL (du)" : "disk use of each data folder (du)", "MiB",
        samples, n, split ? Sample::dataBytes : Sample::diskBytes, MIB));
    charts.add(perReplica("log entries per replica", "entries", samples, n, Sample::logEntries, 1));
    int w = 700;
    int h = 400;
    BufferedImage img = new BufferedImage(2 * w, 2 * h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    for (int i = 0; i < charts.size(); i++) {
      Graphics2D cell = (Graphics2D) g.create((i % 2) * w, (i / 2) * h, w, h);
      charts.get(i).paint(cell, w, h);
      cell.dispose();
    }
    g.dispose();
    return img;
  }

  private static XYChart perReplica(String title, String unit, List<Sample> samples, int n,
      java.util.function.ToLongFunction<Sample> f, double scale) {
    XYChart c = chart(title, unit);
    int k = 0;
    for (int r : replicas(samples)) {
      double[] all = perMinute(samples, r, n, f, scale);
      List<Double> xs = new ArrayList<>();
      List<Double> ys = new ArrayList<>();
      for (int i = 0; i < all.length; i++) {
        if (!Double.isNaN(all[i])) {
          xs.add(i + 1.0);
          ys.add(all[i]);
        }
      }
      if (!xs.isEmpty()) {
        add(c, "replica " + r, xs.stream().mapToDouble(Double::doubleValue).toArray(),
            ys.stream().mapToDouble(Double::doubleValue).toArray(), k++);
      }
    }
    return c;
  }

  private static XYChart chart(String title, String unit) {
    XYChart c = new XYChartBuilder().width(700).height(400).title(title).xAxisTitle("minute").yAxisTitle(unit).build();
    c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    c.getStyler().setChartBackgroundColor(Color.WHITE);
    c.getStyler().setYAxisMin(0.0);
    c.getStyler().setXAxisDecimalPattern("0");
    return c;
  }

  private static void add(XYChart c, String name, double[] x, double[] y, int k) {
    XYSeries s = c.addSeries(name, x, y);
    s.setMarker(SeriesMarkers.CIRCLE);
    s.setLineColor(COLORS[k % COLORS.length]);
    s.setMarkerColor(COLORS[k % COLORS.length]);
  }

  static String html(String text, String setup) {
    String esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Choir soak</title></head><body>\n"
        + "<h1>Choir soak</h1>\n<p>" + setup.replace("&", "&amp;").replace("<", "&lt;") + "</p>\n"
        + "<img src=\"soak.png\" alt=\"p99, heap after GC, disk use and log entries per minute\">\n"
        + "<pre>" + esc + "</pre>\n</body></html>\n";
  }

  /** Writes soak.json, soak.png and index.html into out and returns the printed report and the trends. */
  static Map.Entry<String, List<SoakTrend>> write(Path out, String setup, Limits limits) throws IOException {
    List<Minute> minutes = minutes(out.resolve("bench").resolve("result.json"));
    List<Sample> samples = samples(out.resolve("soak.tsv"));
    List<SoakTrend> trends = trends(minutes, samples, limits);
    List<WalBound> wal = walBounds(samples, limits);
    String text = text(minutes, samples, trends, wal, setup);
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("setup", setup);
    json.put("limits", limits);
    json.put("minutes", minutes);
    json.put("samples", samples);
    json.put("trends", trends.stream().map(SoakTrend::toMap).toList());
    json.put("wal_bounds", wal);
    json.put("verdict", verdict(trends, wal));
    JSON.writeValue(out.resolve("soak.json").toFile(), json);
    System.setProperty("java.awt.headless", "true");
    ImageIO.write(image(minutes, samples, "soak"), "png", out.resolve("soak.png").toFile());
    Files.writeString(out.resolve("index.html"), html(text, setup), StandardCharsets.UTF_8);
    return Map.entry(text, trends);
  }

  public static void main(String[] args) {
    if (args.length < 1) {
      System.err.println("usage: SoakReport OUT [SETUP] [key=value ...]");
      System.exit(2);
    }
    List<String> rest = new ArrayList<>(Arrays.asList(args).subList(1, args.length));
    String setup = !rest.isEmpty() && !rest.get(0).matches("[a-z_0-9]+=.*") ? rest.remove(0) : "";
    try {
      Map.Entry<String, List<SoakTrend>> r = write(Path.of(args[0]), setup, Limits.parse(rest));
      System.out.print(r.getKey());
      System.exit(r.getKey().contains("verdict: GROWTH") ? 1 : 0);
    } catch (IOException | UncheckedIOException | IllegalArgumentException e) {
      System.err.println("soak report: " + e.getMessage());
      System.exit(2);
    }
  }
}
