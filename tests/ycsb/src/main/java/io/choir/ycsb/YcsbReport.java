package io.choir.ycsb;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;

/**
 * YcsbReport reads the outputs of YCSB runs (files named {@code <system>-<workload>-<n>.txt} in a
 * folder, as deploy/bench/ycsb-compare.sh writes them), prints one comparison table (per workload and
 * system: ops/s and each operation's p99, the mean over the runs and the range) with each system's
 * throughput against Choir's, and writes {@code throughput.png} and {@code p99.png} beside them.
 *
 * <pre>java -cp ... io.choir.ycsb.YcsbReport DIR</pre>
 */
public final class YcsbReport {
  private static final Pattern FILE = Pattern.compile("([a-z0-9]+)-([a-z0-9]+)-(\\d+)\\.txt");
  private static final Pattern LINE = Pattern.compile("^\\[([A-Z-]+)\\], ([^,]+), (.+)$");

  /** One YCSB run's figures: overall ops/s, p99 per operation (µs), errors (non-OK returns). */
  record Run(double opsPerSec, Map<String, Double> p99Us, long errors, long ok) {}

  private YcsbReport() {}

  static Run parse(List<String> lines) {
    double ops = Double.NaN;
    Map<String, Double> p99 = new TreeMap<>();
    long errors = 0;
    long ok = 0;
    for (String line : lines) {
      Matcher m = LINE.matcher(line.trim());
      if (!m.matches()) {
        continue;
      }
      String op = m.group(1);
      String name = m.group(2);
      String value = m.group(3).trim();
      if (op.equals("OVERALL") && name.equals("Throughput(ops/sec)")) {
        ops = Double.parseDouble(value);
      } else if (name.equals("99thPercentileLatency(us)") && !op.equals("CLEANUP") && !op.endsWith("-FAILED")) {
        p99.put(op, Double.parseDouble(value));
      } else if (name.startsWith("Return=") && !op.equals("CLEANUP")) {
        long n = Long.parseLong(value);
        if (name.equals("Return=OK")) {
          ok += n;
        } else if (!name.equals("Return=NOT_FOUND")) {
          errors += n;
        }
      }
    }
    if (Double.isNaN(ops)) {
      throw new IllegalArgumentException("no [OVERALL], Throughput(ops/sec) line: not a YCSB run's output");
    }
    return new Run(ops, p99, errors, ok);
  }

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: YcsbReport DIR");
      System.exit(2);
    }
    Path dir = Path.of(args[0]);
    // workload -> system -> runs
    Map<String, Map<String, List<Run>>> runs = new TreeMap<>();
    try (var files = Files.list(dir)) {
      for (Path f : files.sorted().toList()) {
        Matcher m = FILE.matcher(f.getFileName().toString());
        if (m.matches()) {
          runs.computeIfAbsent(m.group(2), w -> new LinkedHashMap<>())
              .computeIfAbsent(m.group(1), s -> new ArrayList<>()).add(parse(Files.readAllLines(f)));
        }
      }
    }
    if (runs.isEmpty()) {
      System.err.println("YcsbReport: no <system>-<workload>-<n>.txt in " + dir);
      System.exit(1);
    }
    System.out.println(table(runs));
    chart(runs, dir);
  }

  static String table(Map<String, Map<String, List<Run>>> runs) {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "%-9s %-7s %5s %18s %10s %26s %8s%n", "workload", "system", "runs",
        "ops/s mean (range)", "vs choir", "p99 ms per op (mean)", "errors"));
    runs.forEach((workload, systems) -> {
      double choir = systems.containsKey("choir") ? mean(systems.get("choir")) : Double.NaN;
      systems.forEach((system, list) -> {
        double mean = mean(list);
        double min = list.stream().mapToDouble(Run::opsPerSec).min().orElse(0);
        double max = list.stream().mapToDouble(Run::opsPerSec).max().orElse(0);
        Map<String, Double> p99 = new TreeMap<>();
        list.forEach(r -> r.p99Us().forEach((op, v) -> p99.merge(op, v / list.size(), Double::sum)));
        StringBuilder lat = new StringBuilder();
        p99.forEach((op, v) -> lat.append(lat.length() == 0 ? "" : " ").append(op.toLowerCase(Locale.ROOT))
            .append(' ').append(String.format(Locale.ROOT, "%.1f", v / 1000)));
        long errors = list.stream().mapToLong(Run::errors).sum();
        String ratio = Double.isNaN(choir) || system.equals("choir") ? "" : String.format(Locale.ROOT, "%.2fx", choir / mean);
        sb.append(String.format(Locale.ROOT, "%-9s %-7s %5d %18s %10s %26s %8d%n", workload, system, list.size(),
            String.format(Locale.ROOT, "%.0f (%.0f-%.0f)", mean, min, max), ratio, lat, errors));
      });
    });
    sb.append("vs choir: Choir's ops/s divided by the system's (above 1: Choir is faster)");
    return sb.toString();
  }

  private static double mean(List<Run> list) {
    return list.stream().mapToDouble(Run::opsPerSec).average().orElse(Double.NaN);
  }

  private static void chart(Map<String, Map<String, List<Run>>> runs, Path dir) throws IOException {
    List<String> workloads = new ArrayList<>(runs.keySet());
    List<String> systems = new ArrayList<>();
    runs.values().forEach(s -> s.keySet().forEach(n -> {
      if (!systems.contains(n)) {
        systems.add(n);
      }
    }));
    CategoryChart ops = new CategoryChartBuilder().width(900).height(500).title("YCSB throughput (mean of runs)")
        .xAxisTitle("workload").yAxisTitle("ops/s").build();
    CategoryChart p99 = new CategoryChartBuilder().width(900).height(500)
        .title("YCSB p99 latency, the workload's slowest operation (mean of runs)").xAxisTitle("workload")
        .yAxisTitle("ms").build();
    for (String system : systems) {
      List<Double> o = new ArrayList<>();
      List<Double> l = new ArrayList<>();
      for (String w : workloads) {
        List<Run> list = runs.get(w).getOrDefault(system, List.of());
        o.add(list.isEmpty() ? 0.0 : mean(list));
        l.add(list.stream().mapToDouble(r -> r.p99Us().values().stream().mapToDouble(d -> d).max().orElse(0) / 1000)
            .average().orElse(0));
      }
      ops.addSeries(system, workloads, o);
      p99.addSeries(system, workloads, l);
    }
    BitmapEncoder.saveBitmap(ops, dir.resolve("throughput.png").toString(), BitmapEncoder.BitmapFormat.PNG);
    BitmapEncoder.saveBitmap(p99, dir.resolve("p99.png").toString(), BitmapEncoder.BitmapFormat.PNG);
  }
}
