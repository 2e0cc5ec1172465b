package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.CheckResult;
import io.choir.checker.Checker;
import io.choir.checker.History;
import io.choir.checker.Operation;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The report folder, results.json and the plots, from a synthetic history (no Docker). */
class ReportTest {
  @TempDir
  Path tmp;

  /** A history of 3 processes writing and reading one key for 10 s, with a fault from 3 to 6 s. */
  static Recorder synthetic(boolean stale) {
    AtomicLong clock = new AtomicLong();
    Recorder r = new Recorder(new StringWriter(), clock::get);
    Random random = new Random(3);
    Map<String, Long> current = new HashMap<>();
    long process = 0;
    for (int i = 0; i < 300; i++) {
      clock.addAndGet(30_000_000L + random.nextInt(5_000_000));
      if (i == 100) {
        r.nemesis(NemesisEvent.START, "kill-primary", List.of("n1"), "kill -9 of n1");
      }
      if (i == 200) {
        r.nemesis(NemesisEvent.STOP, "kill-primary", List.of("n1"), "stopped");
      }
      String key = "r00-000" + (i / 100);
      if (i % 3 == 0) {
        long v = random.nextInt(5);
        r.invoke(Operation.write(process, key, v), "n" + (1 + i % 3));
        clock.addAndGet(1_000_000L + random.nextInt(20_000_000));
        current.put(key, v); // an info write took effect too, which is allowed
        if (i % 50 == 0) {
          r.info(process, "timeout");
          process++;
        } else {
          r.ok(process);
        }
      } else {
        r.invoke(Operation.read(process, key), "n" + (1 + i % 3));
        clock.addAndGet(500_000L + random.nextInt(5_000_000));
        if (i % 40 == 1) {
          r.fail(process, "unavailable");
        } else {
          Long v = current.get(key);
          r.okRead(process, stale && i == 151 ? Long.valueOf(v == null ? 0 : (v + 1) % 5) : v);
        }
      }
    }
    r.nemesis(NemesisEvent.HEAL, "heal-all", List.of("n1", "n2", "n3"), "network healed");
    return r;
  }

  private static ObjectNode results(History h, Recorder r, boolean converged) {
    CheckResult lin = Checker.check(h, Duration.ofSeconds(10));
    Map<String, ObjectNode> checkers = new LinkedHashMap<>();
    checkers.put("linearizable", Results.linearizable(lin));
    checkers.put("garbage-reads", GarbageReads.check(h).toJson());
    ObjectNode conv = Json.MAPPER.createObjectNode();
    conv.put("valid", converged);
    checkers.put("convergence", conv);
    ObjectNode run = Json.MAPPER.createObjectNode();
    run.put("seed", 3);
    run.put("nodes", 3);
    run.put("nemesis", "kill-primary");
    return Results.build(run, checkers, Results.stats(h), r.nemesisEvents());
  }

  @Test
  void writesEveryFileAndLinksThem() throws Exception {
    Recorder r = synthetic(false);
    History h = r.history();
    ObjectNode results = results(h, r, true);
    Path dir = Report.newRunDir(tmp.resolve("jepsen"));
    Files.createDirectories(dir.resolve("nodes"));
    Files.writeString(dir.resolve("nodes/n1.log"), "log\n");
    Files.writeString(dir.resolve("history.jsonl"), "");
    Report.write(dir, h, r.nemesisEvents(), results, "{}");
    Report.linkLatest(dir);

    for (String f : List.of("index.html", "results.json", "latency-raw.png", "latency-quantiles.png", "rate.png",
        "timeline.html", "linearizability.json")) {
      assertTrue(Files.size(dir.resolve(f)) > 0, f);
    }
    String index = Files.readString(dir.resolve("index.html"));
    for (String png : List.of("latency-raw.png", "latency-quantiles.png", "rate.png")) {
      assertNotNull(ImageIO.read(dir.resolve(png).toFile()), png);
      assertTrue(index.contains("img src=\"" + png + "\""), png + " shown");
    }
    for (String link : List.of("timeline.html", "history.jsonl", "results.json", "linearizability.json",
        "latency-raw.png", "latency-quantiles.png", "rate.png", "nodes/n1.log")) {
      assertTrue(index.contains("href=\"" + link + "\""), link);
    }
    assertTrue(index.contains("garbage-reads"));
    assertTrue(index.contains("kill-primary"));
    String timeline = Files.readString(dir.resolve("timeline.html"));
    assertTrue(timeline.contains("class=\"op info\""));
    assertTrue(timeline.contains("class=\"nem\""));
    assertEquals(dir.getFileName(), Files.readSymbolicLink(tmp.resolve("jepsen/latest")));

    JsonNode read = Json.MAPPER.readTree(dir.resolve("results.json").toFile());
    assertTrue(read.get("valid").asBoolean());
    assertTrue(read.at("/checkers/linearizable/keys/r00-0000").asBoolean());
    assertEquals(300, read.at("/stats/invocations").asInt());

    // a second run moves `latest`
    Path second = Report.newRunDir(tmp.resolve("jepsen"));
    Report.linkLatest(second);
    assertEquals(second.getFileName(), Files.readSymbolicLink(tmp.resolve("jepsen/latest")));
  }

  @Test
  void anInvalidKeyMakesTheRunInvalidAndIsListed() throws Exception {
    Recorder r = synthetic(true);
    History h = r.history();
    ObjectNode results = results(h, r, true);
    assertFalse(Results.isValid(results));
    assertEquals("false", Results.show(results.get("valid")));
    assertFalse(results.at("/checkers/linearizable/keys/r00-0001").asBoolean());
    assertTrue(results.at("/checkers/linearizable/problems/0/anomaly").asText().length() > 0);
    Path dir = Report.newRunDir(tmp);
    Report.write(dir, h, r.nemesisEvents(), results, null);
    assertTrue(Files.readString(dir.resolve("index.html")).contains("r00-0001"));
  }

  @Test
  void aSetRunShowsTheSetCheckerAndItsAnomalies() throws Exception {
    SetCheckerTest.H set = new SetCheckerTest.H().ok(0, 1, 2).info(3).read(0L, 2L, 3L);
    History h = set.r.history();
    Map<String, ObjectNode> checkers = new LinkedHashMap<>();
    SetChecker.Result r = SetChecker.check(h, set.r.setReads(), SetWorkload.PREFIX);
    checkers.put("set", r.toJson());
    ObjectNode conv = Json.MAPPER.createObjectNode();
    conv.put("valid", true);
    checkers.put("convergence", conv);
    ObjectNode run = Json.MAPPER.createObjectNode();
    run.put("workload", "set");
    ObjectNode results = Results.build(run, checkers, Results.stats(h), List.of());
    assertEquals("false", Results.show(results.get("valid")));
    Path dir = Report.newRunDir(tmp);
    Report.write(dir, h, List.of(), results, null);
    String index = Files.readString(dir.resolve("index.html"));
    assertTrue(index.contains("Choir set"));
    assertTrue(index.contains(Report.esc(r.summary())), "the summary is the checker's detail");
    assertTrue(index.contains("&quot;lost&quot; : [ 1 ]"), "the invalid checker's entry is shown");
    assertFalse(index.contains("href=\"linearizability.json\""), "no such file for a set run");
    assertNotNull(ImageIO.read(dir.resolve("latency-quantiles.png").toFile()));
  }

  @Test
  void unknownIsNotAPass() {
    var f = Json.MAPPER.getNodeFactory();
    assertEquals("true", Results.show(Results.combine(List.of(f.booleanNode(true), f.booleanNode(true)))));
    assertEquals("unknown", Results.show(Results.combine(List.of(f.booleanNode(true), f.textNode("unknown")))));
    assertEquals("false", Results.show(Results.combine(List.of(f.textNode("unknown"), f.booleanNode(false)))));
    assertEquals("unknown", Results.show(Results.combine(Arrays.asList(f.booleanNode(true), null))));
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("valid", "unknown");
    assertFalse(Results.isValid(o));
    // the checker's own UNKNOWN (deadline) maps to "unknown", never true
    Recorder r = synthetic(false);
    CheckResult timedOut = Checker.registers().withClock(new AtomicLong()::incrementAndGet).withClockInterval(1)
        .run(r.history(), Duration.ofNanos(1));
    assertEquals("unknown", Results.show(Results.linearizable(timedOut).get("valid")));
  }

  @Test
  void periodsPairStartsWithStopsAndHeals() {
    List<NemesisEvent> ev = List.of(
        new NemesisEvent(10, NemesisEvent.START, "a", List.of("n1"), ""),
        new NemesisEvent(20, NemesisEvent.STOP, "a", List.of("n1"), ""),
        new NemesisEvent(30, NemesisEvent.START, "b", List.of(), ""),
        new NemesisEvent(35, NemesisEvent.ERROR, "c", List.of(), "could not start"),
        new NemesisEvent(40, NemesisEvent.HEAL, "heal-all", List.of(), ""),
        new NemesisEvent(50, NemesisEvent.START, "d", List.of("n2"), ""));
    List<Periods.Period> p = Periods.of(ev, 99);
    assertEquals(3, p.size());
    assertEquals(new Periods.Period("a", List.of("n1"), 10, 20), p.get(0));
    assertEquals(new Periods.Period("b", List.of(), 30, 40), p.get(1));
    assertEquals(new Periods.Period("d", List.of("n2"), 50, 99), p.get(2));
    assertEquals("d n2", p.get(2).label());
  }

  @Test
  void escapesHtml() {
    assertEquals("&lt;a href=&quot;x&quot;&gt;&amp;&#39;", Report.esc("<a href=\"x\">&'"));
  }
}
