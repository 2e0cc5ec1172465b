package io.choir.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Compare reads two result.json files (Choir's and a peer's) and prints a table and the ratios:
 * throughput Choir/peer (higher is better for Choir) and p99 Choir/peer (lower is better for Choir).
 * With a third argument it also writes the comparison as JSON there.
 *
 * <p>{@code java -cp ... io.choir.bench.Compare choir/result.json etcd/result.json [compare.json]}
 */
public final class Compare {
  static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private Compare() {}

  /** The comparison of two results: both figures and the ratios. */
  static Map<String, Object> compare(JsonNode a, JsonNode b) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("config", a.get("config"));
    m.put(a.get("target").asText(), figures(a));
    m.put(b.get("target").asText(), figures(b));
    double ta = a.get("throughput_ops_per_sec").asDouble();
    double tb = b.get("throughput_ops_per_sec").asDouble();
    double pa = a.get("latency_ms").get("p99").asDouble();
    double pb = b.get("latency_ms").get("p99").asDouble();
    m.put("throughput_ratio", tb == 0 ? null : round(ta / tb));
    m.put("p99_ratio", pb == 0 ? null : round(pa / pb));
    m.put("p50_ratio", b.get("latency_ms").get("p50").asDouble() == 0 ? null
        : round(a.get("latency_ms").get("p50").asDouble() / b.get("latency_ms").get("p50").asDouble()));
    return m;
  }

  static Map<String, Object> figures(JsonNode r) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("throughput_ops_per_sec", r.get("throughput_ops_per_sec").asDouble());
    JsonNode l = r.get("latency_ms");
    for (String p : new String[] {"p50", "p90", "p99", "p999", "max"}) {
      m.put(p + "_ms", l.get(p).asDouble());
    }
    m.put("errors", r.get("errors").get("total").asLong());
    return m;
  }

  static double round(double v) {
    return Math.round(v * 100.0) / 100.0;
  }

  /** The human table. */
  static String table(JsonNode a, JsonNode b) {
    StringBuilder s = new StringBuilder();
    JsonNode c = a.get("config");
    s.append(String.format(Locale.ROOT, "%d clients, %d-byte values, write ratio %s, %s s measured%n",
        c.get("clients").asInt(), c.get("value_size").asInt(), c.get("write_ratio").asText(),
        c.get("duration_s").asText()));
    s.append(String.format(Locale.ROOT, "%-8s %12s %9s %9s %9s %9s %9s %7s%n",
        "target", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"));
    for (JsonNode r : new JsonNode[] {a, b}) {
      JsonNode l = r.get("latency_ms");
      s.append(String.format(Locale.ROOT, "%-8s %12.0f %9.3f %9.3f %9.3f %9.3f %9.3f %7d%n",
          r.get("target").asText(), r.get("throughput_ops_per_sec").asDouble(), l.get("p50").asDouble(),
          l.get("p90").asDouble(), l.get("p99").asDouble(), l.get("p999").asDouble(), l.get("max").asDouble(),
          r.get("errors").get("total").asLong()));
    }
    Map<String, Object> m = compare(a, b);
    s.append(String.format(Locale.ROOT, "throughput %s/%s = %s   (target >= 3)%n", a.get("target").asText(),
        b.get("target").asText(), m.get("throughput_ratio")));
    s.append(String.format(Locale.ROOT, "p99        %s/%s = %s   (target < 1)%n", a.get("target").asText(),
        b.get("target").asText(), m.get("p99_ratio")));
    return s.toString();
  }

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      System.err.println("usage: Compare CHOIR_RESULT.json PEER_RESULT.json [OUT.json]");
      System.exit(2);
    }
    JsonNode a = JSON.readTree(Path.of(args[0]).toFile());
    JsonNode b = JSON.readTree(Path.of(args[1]).toFile());
    System.out.print(table(a, b));
    if (args.length > 2) {
      Files.writeString(Path.of(args[2]), JSON.writeValueAsString(compare(a, b)) + "\n", StandardCharsets.UTF_8);
    }
  }
}
