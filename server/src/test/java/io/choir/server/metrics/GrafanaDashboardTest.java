package io.choir.server.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GrafanaDashboardTest: deploy/grafana/choir-dashboard.json parses, takes its Prometheus datasource from
 * a variable, and every metric its panels query exists in the exposition of a running replica (a
 * name-matching regex, as the drops panel uses, must match at least one series): a renamed metric
 * breaks this test, not the dashboard.
 */
class GrafanaDashboardTest {
  private static final Path DASHBOARD = Path.of("..", "deploy", "grafana", "choir-dashboard.json");
  private static final Pattern METRIC = Pattern.compile("\\bchoir_[a-z0-9_]*[a-z0-9]\\b(?![(])");
  private static final Pattern NAME_REGEX = Pattern.compile("__name__=~\"([^\"]+)\"");

  @TempDir Path dir;

  @Test
  void shouldQueryOnlyMetricsAReplicaExposes() throws Exception {
    JsonNode dashboard = new ObjectMapper().readTree(Files.readString(DASHBOARD));
    JsonNode variables = dashboard.path("templating").path("list");
    assertTrue(variables.isArray() && variables.size() > 0, "has template variables");
    assertEquals("datasource", variables.get(0).path("type").asText());
    assertEquals("prometheus", variables.get(0).path("query").asText());

    Set<String> metrics = new TreeSet<>();
    List<Pattern> nameRegexes = new ArrayList<>();
    Set<String> titles = new TreeSet<>();
    for (JsonNode panel : dashboard.path("panels")) {
      titles.add(panel.path("title").asText());
      assertEquals("${datasource}", panel.path("datasource").path("uid").asText(), panel.path("title").asText());
      assertTrue(panel.path("targets").size() > 0, "a panel without queries: " + panel.path("title").asText());
      for (JsonNode target : panel.path("targets")) {
        String expr = target.path("expr").asText();
        assertEquals("${datasource}", target.path("datasource").path("uid").asText(), expr);
        Matcher names = NAME_REGEX.matcher(expr);
        while (names.find()) {
          nameRegexes.add(Pattern.compile(names.group(1)));
        }
        Matcher m = METRIC.matcher(NAME_REGEX.matcher(expr).replaceAll(""));
        while (m.find()) {
          metrics.add(m.group());
        }
      }
    }
    for (String t : List.of("Writes/s", "Reads/s", "Client write latency p99", "Log fsync p99", "Lag (ops)",
        "View per replica", "Role per replica", "Drops by reason (/s)")) {
      assertTrue(titles.contains(t), "panel " + t);
    }
    assertTrue(metrics.size() > 20, "metrics found in the queries: " + metrics);

    try (MetricsCluster cluster = new MetricsCluster(dir, 1)) {
      MetricsCluster.await("a primary", 10_000, () -> cluster.primary() == 1);
      cluster.put(1, "k", "v");
      PromText exposed = cluster.scrape(1);
      List<String> missing = new ArrayList<>();
      for (String name : metrics) {
        if (!exposed.has(name)) {
          missing.add(name);
        }
      }
      assertTrue(missing.isEmpty(), "the dashboard queries metrics no replica exposes: " + missing);
      for (Pattern p : nameRegexes) {
        assertFalse(exposed.seriesNames.stream().noneMatch(n -> p.matcher(n).matches()), "nothing matches " + p);
      }
    }
  }
}
