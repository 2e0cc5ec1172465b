package io.choir.bench;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * SoakTrend says whether one per-minute series grows: the least-squares line through its last two
 * thirds (the first third is the warm-up of JIT, caches and the key space filling up), its rise over
 * that window (slope times the window's length) and whether the rise passes the limit, the larger of an
 * absolute floor and a share of the window's mean (a sawtooth of compactions or collections around a
 * level is not growth; a level that keeps rising is).
 *
 * @param name what the series is (for the report)
 * @param unit its unit
 * @param points values in the window
 * @param fromMinute first minute of the window
 * @param toMinute last minute of the window
 * @param mean mean over the window
 * @param slopePerMinute least-squares slope
 * @param rise slopePerMinute times (toMinute - fromMinute)
 * @param limit the largest rise that is not growth
 */
public record SoakTrend(String name, String unit, int points, int fromMinute, int toMinute, double mean,
    double slopePerMinute, double rise, double limit) {

  /** The share of the series judged: the last two thirds (rounded up), at least two points. */
  static int windowStart(int n) {
    int kept = (int) Math.ceil(n * 2.0 / 3.0);
    return Math.max(0, n - Math.max(2, kept));
  }

  /**
   * The trend of values (one per minute, minute i + 1 for values[i]; NaN or negative values, unknown
   * readings, are left out of the fit).
   *
   * @param floor the absolute floor of the limit (in the values' unit)
   * @param share the share of the mean that the rise may also reach
   * @return the trend, with points 0 or 1 (no fit, never growth) when the window holds fewer than two readings
   */
  public static SoakTrend of(String name, String unit, double[] values, double floor, double share) {
    int from = windowStart(values.length);
    double sx = 0;
    double sy = 0;
    int n = 0;
    for (int i = from; i < values.length; i++) {
      if (known(values[i])) {
        sx += i + 1;
        sy += values[i];
        n++;
      }
    }
    if (n < 2) {
      return new SoakTrend(name, unit, n, from + 1, values.length, n == 0 ? Double.NaN : sy, 0, 0,
          Math.max(floor, 0));
    }
    double mx = sx / n;
    double my = sy / n;
    double sxy = 0;
    double sxx = 0;
    for (int i = from; i < values.length; i++) {
      if (known(values[i])) {
        sxy += (i + 1 - mx) * (values[i] - my);
        sxx += (i + 1 - mx) * (i + 1 - mx);
      }
    }
    double slope = sxx == 0 ? 0 : sxy / sxx;
    int to = values.length;
    double rise = slope * (to - (from + 1));
    double limit = Math.max(floor, share * Math.abs(my));
    return new SoakTrend(name, unit, n, from + 1, to, my, slope, rise, limit);
  }

  private static boolean known(double v) {
    return !Double.isNaN(v) && v >= 0;
  }

  /** Whether the series grows: it was fitted and its rise passes the limit. */
  public boolean grows() {
    return points >= 2 && rise > limit;
  }

  /** Whether there were enough readings to judge. */
  public boolean judged() {
    return points >= 2;
  }

  /** One line: name, window, mean, slope, rise against the limit, and the verdict. */
  public String line() {
    if (!judged()) {
      return String.format(Locale.ROOT, "%-28s not judged: %d reading(s) in minutes %d..%d", name, points,
          fromMinute, toMinute);
    }
    return String.format(Locale.ROOT,
        "%-28s minutes %d..%d: mean %s %s, slope %s %s/min, rise %s against limit %s: %s", name, fromMinute,
        toMinute, num(mean), unit, num(slopePerMinute), unit, num(rise), num(limit),
        grows() ? "GROWS" : "flat");
  }

  static String num(double v) {
    double a = Math.abs(v);
    return a >= 100 ? String.format(Locale.ROOT, "%,.0f", v)
        : a >= 1 ? String.format(Locale.ROOT, "%.2f", v) : String.format(Locale.ROOT, "%.3f", v);
  }

  Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", name);
    m.put("unit", unit);
    m.put("points", points);
    m.put("from_minute", fromMinute);
    m.put("to_minute", toMinute);
    m.put("mean", finite(mean));
    m.put("slope_per_minute", finite(slopePerMinute));
    m.put("rise", finite(rise));
    m.put("limit", finite(limit));
    m.put("judged", judged());
    m.put("grows", grows());
    return m;
  }

  private static Double finite(double v) {
    return Double.isFinite(v) ? v : null;
  }
}
