package io.choir.jepsen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.History;
import io.choir.checker.Invocation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Report writes a run's folder, target/jepsen/&lt;timestamp&gt;/:
 *
 * <pre>
 * index.html        summary, verdicts, nemesis events, plots, links
 * results.json      valid: true/false/"unknown", per checker (and per key for linearizability)
 * history.jsonl     every invocation, completion, set read and nemesis event (written while the run goes)
 * linearizability.json  the checker's full result (anomalies with the concurrent operations; register)
 * latency-raw.png   latency of every operation over time, nemesis periods shaded
 * latency-quantiles.png  p50/p95/p99/max latency per time window and operation, nemesis periods shaded
 * rate.png          completions per second, nemesis periods shaded
 * timeline.html     one column per process, one box per operation
 * nodes/nK.log      each replica's docker logs
 * </pre>
 *
 * and points the {@code latest} link of the parent folder at it.
 */
public final class Report {
  /** MAX_TIMELINE_OPS bounds timeline.html (a browser struggles beyond). */
  static final int MAX_TIMELINE_OPS = 50_000;

  /** PLOTS are the PNGs {@link #write} draws, shown and linked in index.html. */
  static final List<String> PLOTS = List.of("latency-raw.png", "latency-quantiles.png", "rate.png");

  private Report() {}

  /** newRunDir makes {@code base}/&lt;timestamp&gt; (with a suffix when taken). */
  public static Path newRunDir(Path base) throws IOException {
    Files.createDirectories(base);
    String stamp = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss").withZone(ZoneId.systemDefault()).format(Instant.now());
    Path dir = base.resolve(stamp);
    for (int i = 2; Files.exists(dir); i++) {
      dir = base.resolve(stamp + "-" + i);
    }
    Files.createDirectories(dir);
    return dir;
  }

  /** linkLatest points {@code dir.getParent()/latest} at {@code dir} (relative link, replaced atomically). */
  public static void linkLatest(Path dir) throws IOException {
    Path parent = dir.toAbsolutePath().getParent();
    Path tmp = parent.resolve(".latest-" + ProcessHandle.current().pid());
    Files.deleteIfExists(tmp);
    Files.createSymbolicLink(tmp, dir.getFileName());
    Files.move(tmp, parent.resolve("latest"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  /**
   * write writes everything but history.jsonl (streamed by the recorder) and the node logs (saved by the
   * cluster) into {@code dir}.
   */
  public static void write(Path dir, History history, List<NemesisEvent> nemesis, ObjectNode results,
      String linearizabilityJson) throws IOException {
    long end = endNanos(history, nemesis);
    List<Periods.Period> periods = Periods.of(nemesis, end);
    Files.writeString(dir.resolve("results.json"), Json.MAPPER.writeValueAsString(results) + "\n");
    if (linearizabilityJson != null) {
      Files.writeString(dir.resolve("linearizability.json"), linearizabilityJson + "\n");
    }
    Charts.latencyRaw(history, periods, dir.resolve("latency-raw.png"));
    Charts.latencyQuantiles(history, periods, dir.resolve("latency-quantiles.png"));
    Charts.rate(history, periods, dir.resolve("rate.png"));
    Files.writeString(dir.resolve("timeline.html"), timeline(history, periods, end, runTitle(results)));
    Files.writeString(dir.resolve("index.html"), index(dir, results, nemesis));
  }

  static long endNanos(History history, List<NemesisEvent> nemesis) {
    long end = 0;
    for (Invocation inv : history.invocations()) {
      end = Math.max(end, Math.max(inv.invokeNanos(), inv.completeNanos()));
    }
    for (NemesisEvent e : nemesis) {
      end = Math.max(end, e.timeNanos());
    }
    return end;
  }

  private static String runTitle(JsonNode results) {
    JsonNode run = results.path("run");
    return "Choir " + run.path("workload").asText("register") + ", " + run.path("nodes").asText("?") + " nodes, nemesis "
        + run.path("nemesis").asText("none") + ", seed " + run.path("seed").asText("?");
  }

  // ---------------------------------------------------------------- index.html

  static String index(Path dir, JsonNode results, List<NemesisEvent> nemesis) throws IOException {
    StringBuilder h = new StringBuilder();
    JsonNode valid = results.get("valid");
    String verdict = Results.show(valid);
    h.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>").append(esc(runTitle(results)))
        .append("</title>\n<style>").append(CSS).append("</style></head><body>\n");
    h.append("<h1>").append(esc(runTitle(results))).append("</h1>\n");
    h.append("<p class=\"verdict ").append(cls(valid)).append("\">valid: ").append(esc(verdict)).append("</p>\n");

    h.append("<h2>Run</h2>\n<table>\n");
    Iterator<Map.Entry<String, JsonNode>> it = results.path("run").fields();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      h.append("<tr><th>").append(esc(e.getKey())).append("</th><td>")
          .append(esc(e.getValue().isTextual() ? e.getValue().asText() : e.getValue().toString())).append("</td></tr>\n");
    }
    h.append("</table>\n");

    h.append("<h2>Checkers</h2>\n<table><tr><th>checker</th><th>valid</th><th>detail</th></tr>\n");
    Iterator<Map.Entry<String, JsonNode>> cs = results.path("checkers").fields();
    while (cs.hasNext()) {
      Map.Entry<String, JsonNode> e = cs.next();
      JsonNode c = e.getValue();
      String detail;
      if (c.has("summary")) {
        detail = c.path("summary").asText();
      } else if (c.has("keyCount")) {
        detail = c.path("keyCount").asText() + " keys, " + c.path("exploredStates").asText() + " states, "
            + c.path("elapsedMillis").asText() + " ms";
      } else if (c.has("problem")) {
        detail = c.path("problem").asText();
      } else if (c.has("waitedMillis")) {
        detail = "converged after " + c.path("waitedMillis").asText() + " ms";
      } else {
        detail = "";
      }
      h.append("<tr><td>").append(esc(e.getKey())).append("</td><td class=\"").append(cls(c.get("valid"))).append("\">")
          .append(esc(Results.show(c.get("valid")))).append("</td><td>").append(esc(detail)).append("</td></tr>\n");
    }
    h.append("</table>\n");
    JsonNode problems = results.path("checkers").path("linearizable").path("problems");
    if (problems.size() > 0) {
      h.append("<h3>Keys not proved linearizable</h3>\n");
      for (JsonNode p : problems) {
        h.append("<details><summary>").append(esc(p.path("key").asText())).append(": ")
            .append(esc(p.path("verdict").asText())).append(" (").append(p.path("ops").asInt()).append(" ops) ")
            .append(esc(p.path("note").asText(""))).append("</summary><pre>")
            .append(esc(p.path("anomaly").asText(""))).append("</pre></details>\n");
      }
    }

    Iterator<Map.Entry<String, JsonNode>> others = results.path("checkers").fields();
    while (others.hasNext()) {
      Map.Entry<String, JsonNode> e = others.next();
      JsonNode v = e.getValue().get("valid");
      if (!e.getKey().equals("linearizable") && (v == null || !v.isBoolean() || !v.booleanValue())) {
        h.append("<details><summary>").append(esc(e.getKey())).append(": ").append(esc(Results.show(v)))
            .append("</summary><pre>").append(esc(Json.MAPPER.writeValueAsString(e.getValue()))).append("</pre></details>\n");
      }
    }

    JsonNode stats = results.path("stats");
    h.append("<h2>Operations</h2>\n<p>").append(stats.path("invocations").asInt()).append(" invocations on ")
        .append(stats.path("keys").asInt()).append(" keys: ").append(stats.path("ok").asInt()).append(" ok, ")
        .append(stats.path("fail").asInt()).append(" fail, ").append(stats.path("info").asInt()).append(" info</p>\n");
    h.append("<table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th></tr>\n");
    Iterator<Map.Entry<String, JsonNode>> fs = stats.path("byFunction").fields();
    while (fs.hasNext()) {
      Map.Entry<String, JsonNode> e = fs.next();
      h.append("<tr><td>").append(esc(e.getKey())).append("</td><td>").append(e.getValue().path("ok").asInt())
          .append("</td><td>").append(e.getValue().path("fail").asInt()).append("</td><td>")
          .append(e.getValue().path("info").asInt()).append("</td></tr>\n");
    }
    h.append("</table>\n");

    h.append("<h2>Nemesis</h2>\n<table><tr><th>time (s)</th><th>event</th><th>fault</th><th>nodes</th><th>detail</th></tr>\n");
    for (NemesisEvent e : nemesis) {
      h.append("<tr><td>").append(String.format(Locale.ROOT, "%.3f", e.timeNanos() / 1e9)).append("</td><td>")
          .append(esc(e.phase())).append("</td><td>").append(esc(e.fault())).append("</td><td>")
          .append(esc(String.join(",", e.nodes()))).append("</td><td>").append(esc(e.detail())).append("</td></tr>\n");
    }
    h.append("</table>\n");

    h.append("<h2>Plots</h2>\n");
    for (String png : PLOTS) {
      h.append("<p><img src=\"").append(png).append("\" alt=\"").append(png, 0, png.length() - 4).append("\"></p>\n");
    }
    h.append("<h2>Files</h2>\n<ul>\n");
    List<String> files = new ArrayList<>(List.of("timeline.html", "history.jsonl", "results.json"));
    if (Files.exists(dir.resolve("linearizability.json"))) {
      files.add("linearizability.json");
    }
    files.addAll(PLOTS);
    for (String f : files) {
      h.append("<li><a href=\"").append(f).append("\">").append(f).append("</a></li>\n");
    }
    Path nodes = dir.resolve("nodes");
    if (Files.isDirectory(nodes)) {
      try (Stream<Path> logs = Files.list(nodes)) {
        for (Path p : logs.sorted().toList()) {
          String rel = "nodes/" + p.getFileName();
          h.append("<li><a href=\"").append(esc(rel)).append("\">").append(esc(rel)).append("</a></li>\n");
        }
      }
    }
    h.append("</ul>\n</body></html>\n");
    return h.toString();
  }

  // ---------------------------------------------------------------- timeline.html

  static String timeline(History history, List<Periods.Period> periods, long endNanos, String title) {
    List<Invocation> invs = history.invocations();
    boolean truncated = invs.size() > MAX_TIMELINE_OPS;
    if (truncated) {
      invs = invs.subList(0, MAX_TIMELINE_OPS);
    }
    Map<Long, Integer> column = new TreeMap<>();
    for (Invocation inv : invs) {
      column.putIfAbsent(inv.op().process(), 0);
    }
    int c = 0;
    for (Map.Entry<Long, Integer> e : column.entrySet()) {
      e.setValue(c++);
    }
    double totalMs = Math.max(1, endNanos / 1e6);
    double pxPerMs = Math.min(1.0, 30_000 / totalMs);
    int colWidth = 16;
    int left = 60;
    int width = left + column.size() * colWidth + 20;
    int height = (int) (totalMs * pxPerMs) + 60;
    StringBuilder h = new StringBuilder();
    h.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Timeline: ").append(esc(title))
        .append("</title>\n<style>").append(TIMELINE_CSS).append("</style></head><body>\n");
    h.append("<h1>Timeline</h1><p>").append(esc(title)).append(". One column per process, one box per operation from")
        .append(" invocation to completion (hover for details): <span class=\"op ok\">ok</span> <span class=\"op fail\">fail</span>")
        .append(" <span class=\"op info\">info</span>; shaded: nemesis. ")
        .append(String.format(Locale.ROOT, "%.2f px per ms.", pxPerMs));
    if (truncated) {
      h.append(" Only the first ").append(MAX_TIMELINE_OPS).append(" operations are drawn.");
    }
    h.append(" <a href=\"index.html\">back to the report</a></p>\n");
    h.append("<div class=\"tl\" style=\"width:").append(width).append("px;height:").append(height).append("px\">\n");
    for (int s = 0; s <= totalMs / 1000; s++) {
      int y = (int) (s * 1000 * pxPerMs) + TOP;
      h.append("<div class=\"tick\" style=\"top:").append(y).append("px;width:").append(width).append("px\">")
          .append(s).append(" s</div>\n");
    }
    for (Periods.Period p : periods) {
      int y = (int) (p.startNanos() / 1e6 * pxPerMs) + TOP;
      int hh = Math.max(2, (int) ((p.endNanos() - p.startNanos()) / 1e6 * pxPerMs));
      h.append("<div class=\"nem\" style=\"top:").append(y).append("px;height:").append(hh).append("px;width:")
          .append(width).append("px\" title=\"").append(esc(p.label())).append("\">").append(esc(p.label())).append("</div>\n");
    }
    for (Map.Entry<Long, Integer> e : column.entrySet()) {
      h.append("<div class=\"col\" style=\"left:").append(left + e.getValue() * colWidth).append("px\">p")
          .append(e.getKey()).append("</div>\n");
    }
    for (Invocation inv : invs) {
      int x = left + column.get(inv.op().process()) * colWidth;
      long endOp = inv.completeNanos() >= 0 ? inv.completeNanos() : endNanos;
      int y = (int) (inv.invokeNanos() / 1e6 * pxPerMs) + TOP;
      int hh = Math.max(2, (int) ((endOp - inv.invokeNanos()) / 1e6 * pxPerMs));
      String outcome = inv.outcome().name().toLowerCase(Locale.ROOT);
      h.append("<div class=\"op ").append(outcome).append("\" style=\"left:").append(x).append("px;top:").append(y)
          .append("px;height:").append(hh).append("px\" title=\"").append(esc(inv.describe()))
          .append(String.format(Locale.ROOT, " latency %.1f ms", (endOp - inv.invokeNanos()) / 1e6))
          .append("\"></div>\n");
    }
    h.append("</div>\n</body></html>\n");
    return h.toString();
  }

  // ---------------------------------------------------------------- helpers

  static String esc(String s) {
    if (s == null) {
      return "";
    }
    StringBuilder sb = new StringBuilder(s.length());
    for (char ch : s.toCharArray()) {
      switch (ch) {
        case '<' -> sb.append("&lt;");
        case '>' -> sb.append("&gt;");
        case '&' -> sb.append("&amp;");
        case '"' -> sb.append("&quot;");
        case '\'' -> sb.append("&#39;");
        default -> sb.append(ch);
      }
    }
    return sb.toString();
  }

  private static String cls(JsonNode valid) {
    if (valid != null && valid.isBoolean()) {
      return valid.booleanValue() ? "good" : "bad";
    }
    return "unknown";
  }

  private static final int TOP = 40;

  private static final String CSS = "body{font-family:sans-serif;margin:2em;max-width:1300px}"
      + "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;"
      + "vertical-align:top;font-size:90%}.verdict{font-size:150%;font-weight:bold;padding:.3em .6em;display:inline-block}"
      + ".good{background:#c8f0c8}.bad{background:#f8c0c0}.unknown{background:#f8e8a0}img{max-width:100%}"
      + "pre{white-space:pre-wrap;font-size:85%}";

  private static final String TIMELINE_CSS = "body{font-family:sans-serif;margin:1em}"
      + ".tl{position:relative;border-top:1px solid #999}"
      + ".tick{position:absolute;left:0;border-top:1px dotted #ddd;font-size:10px;color:#888}"
      + ".nem{position:absolute;left:0;background:rgba(255,140,0,.15);border-top:1px solid rgba(200,100,0,.6);"
      + "font-size:10px;color:#a05000;text-align:right;padding-right:4px;box-sizing:border-box}"
      + ".col{position:absolute;top:0;font-size:9px;color:#555;writing-mode:vertical-rl}"
      + ".op{position:absolute;width:12px;border-radius:2px;display:inline-block}"
      + "span.op{position:static;padding:0 6px;width:auto;color:#000}"
      + ".ok{background:#6c6}.fail{background:#f9b}.info{background:#f93}";
}
