package io.choir.jepsen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.CheckResult;
import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.KeyResult;
import io.choir.checker.Verdict;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Results builds results.json: an overall {@code valid} (true, false or "unknown") and one entry per
 * checker, each with its own {@code valid} (and, for the report, a one-line {@code summary} or
 * {@code problem}):
 *
 * <ul>
 *   <li>register workload: {@code linearizable} (also per key), {@code garbage-reads}
 *       ({@link GarbageReads}), {@code convergence};
 *   <li>set workload: {@code set} ({@link SetChecker}), {@code convergence};
 *   <li>{@code run}, "unknown", when the run broke before its checkers ran.
 * </ul>
 *
 * UNKNOWN (a checker ran out of time or memory, or had nothing to decide on) is never a pass: it makes
 * the run "unknown", not true.
 */
public final class Results {
  /** UNKNOWN is the JSON value of an undecided verdict. */
  public static final String UNKNOWN = "unknown";

  private Results() {}

  /** valid maps a verdict to true, false or "unknown" in JSON. */
  public static JsonNode valid(Verdict v) {
    return switch (v) {
      case VALID -> Json.MAPPER.getNodeFactory().booleanNode(true);
      case INVALID -> Json.MAPPER.getNodeFactory().booleanNode(false);
      case UNKNOWN -> Json.MAPPER.getNodeFactory().textNode(UNKNOWN);
    };
  }

  /** combine is false if any is false, else "unknown" if any is unknown (or missing), else true. */
  public static JsonNode combine(List<JsonNode> valids) {
    boolean unknown = false;
    for (JsonNode v : valids) {
      if (v == null || !v.isBoolean()) {
        unknown = true;
      } else if (!v.booleanValue()) {
        return Json.MAPPER.getNodeFactory().booleanNode(false);
      }
    }
    return unknown ? Json.MAPPER.getNodeFactory().textNode(UNKNOWN) : Json.MAPPER.getNodeFactory().booleanNode(true);
  }

  /** unknown is a checker entry with an undecided verdict and why. */
  public static ObjectNode unknown(String problem) {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("valid", UNKNOWN);
    o.put("problem", problem);
    return o;
  }

  /** linearizable is the linearizability checker's entry: valid overall and per key, and the anomalies. */
  public static ObjectNode linearizable(CheckResult r) {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.set("valid", valid(r.verdict()));
    o.put("verdict", r.verdict().name());
    o.put("keyCount", r.keys().size());
    o.put("exploredStates", r.exploredStates());
    o.put("elapsedMillis", r.elapsed().toMillis());
    ObjectNode keys = o.putObject("keys");
    ArrayNode problems = o.putArray("problems");
    for (KeyResult k : r.keys()) {
      keys.set(k.key(), valid(k.verdict()));
      if (k.verdict() != Verdict.VALID) {
        ObjectNode p = problems.addObject();
        p.put("key", k.key());
        p.put("verdict", k.verdict().name());
        p.put("ops", k.opCount());
        if (!k.note().isEmpty()) {
          p.put("note", k.note());
        }
        k.anomaly().ifPresent(a -> p.put("anomaly", a.toString()));
      }
    }
    return o;
  }

  /** stats counts the invocations by function and outcome, e.g. {@code {"write": {"ok": 10, "info": 1}}}. */
  public static ObjectNode stats(History h) {
    Map<String, Map<String, Integer>> by = new TreeMap<>();
    int ok = 0;
    int fail = 0;
    int info = 0;
    for (Invocation inv : h.invocations()) {
      String outcome = inv.outcome().name().toLowerCase(Locale.ROOT);
      by.computeIfAbsent(inv.op().type().jsonName(), k -> new TreeMap<>()).merge(outcome, 1, Integer::sum);
      switch (inv.outcome()) {
        case OK -> ok++;
        case FAIL -> fail++;
        case INFO -> info++;
        default -> throw new AssertionError(inv.outcome());
      }
    }
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("invocations", h.invocations().size());
    o.put("ok", ok);
    o.put("fail", fail);
    o.put("info", info);
    o.put("keys", h.keys().size());
    o.set("byFunction", Json.MAPPER.valueToTree(by));
    return o;
  }

  /**
   * build assembles results.json from the run's description and the checkers' entries (each must have
   * a {@code valid} field).
   */
  public static ObjectNode build(ObjectNode run, Map<String, ObjectNode> checkers, ObjectNode stats,
      List<NemesisEvent> nemesis) {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.set("valid", combine(checkers.values().stream().map(c -> c.get("valid")).toList()));
    o.set("run", run);
    ObjectNode cs = o.putObject("checkers");
    checkers.forEach(cs::set);
    o.set("stats", stats);
    ArrayNode ev = o.putArray("nemesis");
    nemesis.forEach(e -> ev.add(e.toJson()));
    return o;
  }

  /** isValid is true only for {@code "valid": true}. */
  public static boolean isValid(JsonNode results) {
    JsonNode v = results.get("valid");
    return v != null && v.isBoolean() && v.booleanValue();
  }

  /** show renders a valid value for humans: true, false or unknown. */
  public static String show(JsonNode v) {
    return v == null ? UNKNOWN : v.asText();
  }
}
