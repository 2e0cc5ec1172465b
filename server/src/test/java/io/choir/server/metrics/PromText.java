package io.choir.server.metrics;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * PromText parses the Prometheus text exposition format (0.0.4) the way a scraper reads it: comment
 * lines (# HELP, # TYPE) give the families and their types, every other line is one sample: a series
 * name, optional labels in braces, a value. A line that does not parse fails the test.
 */
final class PromText {
  /** Sample value by series ("name" or "name{labels as written}"). */
  final Map<String, Double> samples = new LinkedHashMap<>();
  /** Family name to type (counter, gauge, histogram, ...). */
  final Map<String, String> types = new LinkedHashMap<>();
  /** Every series name seen (without labels): choir_client_write_seconds_bucket and the like. */
  final TreeSet<String> seriesNames = new TreeSet<>();

  String raw;

  static PromText parse(String text) {
    PromText p = new PromText();
    p.raw = text;
    for (String line : text.split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      if (line.startsWith("# TYPE ")) {
        String[] parts = line.split(" ");
        p.types.put(parts[2], parts[3]);
        continue;
      }
      if (line.startsWith("#")) {
        continue;
      }
      int brace = line.indexOf('{');
      int space = brace >= 0 ? line.indexOf(' ', line.indexOf('}', brace)) : line.indexOf(' ');
      if (space < 0) {
        throw new AssertionError("not a sample line: " + line);
      }
      String series = line.substring(0, space);
      String name = brace >= 0 && brace < space ? line.substring(0, brace) : series;
      if (!name.matches("[a-zA-Z_:][a-zA-Z0-9_:]*")) {
        throw new AssertionError("bad metric name in: " + line);
      }
      String value = line.substring(space + 1).trim().split(" ")[0];
      p.samples.put(series, value.equals("NaN") ? Double.NaN : value.equals("+Inf") ? Double.POSITIVE_INFINITY
          : Double.parseDouble(value));
      p.seriesNames.add(name);
    }
    return p;
  }

  /** The value of the one series named name whose labels contain every labels part ("k=\"v\""); fails if none. */
  double value(String name, String... labels) {
    Double found = null;
    for (Map.Entry<String, Double> e : samples.entrySet()) {
      String series = e.getKey();
      if (!(series.equals(name) || series.startsWith(name + "{"))) {
        continue;
      }
      boolean all = true;
      for (String l : labels) {
        all &= series.contains(l);
      }
      if (all) {
        if (found != null) {
          throw new AssertionError("more than one series " + name + " with " + String.join(",", labels));
        }
        found = e.getValue();
      }
    }
    if (found == null) {
      throw new AssertionError("no series " + name + " with " + String.join(",", labels));
    }
    return found;
  }

  boolean has(String name) {
    return seriesNames.contains(name);
  }
}
