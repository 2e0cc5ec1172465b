package io.choir.jepsen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * NemesisEvent is one line of the nemesis in a history: a fault starting, stopping, the final heal, or
 * a fault that could not be injected. In history.jsonl it is a line with {@code "process":"nemesis"} and
 * {@code "type":"nemesis"}, which readers of the op lines skip (see {@link HistoryFile}).
 *
 * @param timeNanos when it happened, on the history's clock (nanoseconds since the run started)
 * @param phase {@code start}, {@code stop}, {@code heal} or {@code error}
 * @param fault the fault's name (e.g. {@code partition-one}); {@code heal-all} for the final heal
 * @param nodes the nodes the fault acts on (for a partition: the isolated side)
 * @param detail a human-readable account (which links are cut, which process was killed, the error)
 */
public record NemesisEvent(long timeNanos, String phase, String fault, List<String> nodes, String detail) {
  /** Phases. */
  public static final String START = "start";
  public static final String STOP = "stop";
  public static final String HEAL = "heal";
  public static final String ERROR = "error";

  /** NemesisEvent copies the node list. */
  public NemesisEvent {
    Objects.requireNonNull(phase, "phase");
    Objects.requireNonNull(fault, "fault");
    nodes = List.copyOf(nodes);
    detail = detail == null ? "" : detail;
  }

  /** toJson is the history line of this event. */
  public ObjectNode toJson() {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("process", "nemesis");
    o.put("type", "nemesis");
    o.put("f", phase);
    o.put("fault", fault);
    o.putPOJO("nodes", nodes);
    o.put("value", detail);
    o.put("time", timeNanos);
    return o;
  }

  /** fromJson parses a nemesis line. */
  public static NemesisEvent fromJson(JsonNode n) {
    List<String> nodes = new ArrayList<>();
    if (n.has("nodes")) {
      n.get("nodes").forEach(x -> nodes.add(x.asText()));
    }
    return new NemesisEvent(n.get("time").asLong(), n.get("f").asText(), n.get("fault").asText(), nodes,
        n.path("value").asText(""));
  }

  /** isNemesisLine tells whether a parsed history line is a nemesis event. */
  public static boolean isNemesisLine(JsonNode n) {
    return "nemesis".equals(n.path("type").asText()) || "nemesis".equals(n.path("process").asText());
  }
}
