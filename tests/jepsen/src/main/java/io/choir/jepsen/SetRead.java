package io.choir.jepsen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.EventType;
import io.choir.checker.Outcome;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * SetRead is one final read of the set workload: a scan of the whole element prefix, page after page,
 * as one operation of one process. It is not a register operation, so it is kept out of the checker's
 * {@link io.choir.checker.History}; in history.jsonl it is an invoke line and a completion line with
 * {@code "f":"scan"}, the ok line carrying the elements read, in the order read, duplicates kept:
 *
 * <pre>
 * {"process":12,"type":"invoke","f":"scan","key":"set/","consistency":"linearizable","time":31000000000,"node":"n2"}
 * {"process":12,"type":"ok","f":"scan","key":"set/","value":[0,1,2,4],"pages":1,"time":31004000000}
 * </pre>
 *
 * @param process the process that read
 * @param prefix the key prefix scanned
 * @param consistency {@code linearizable} (through the primary) or {@code sequential} (one replica's state)
 * @param node the node the read entered through (for a sequential read: the only node asked)
 * @param invokeNanos when it was invoked, on the history's clock
 * @param outcome OK (elements hold the result), FAIL (a page failed with an error that promises it was
 *     not executed; nothing was learnt) or INFO (a page failed with an error of unknown outcome, or the
 *     read never completed; nothing was learnt either)
 * @param completeNanos when it completed (with ok, fail or info), or -1 when it never did
 * @param elements the elements read, in order, duplicates kept (empty unless OK)
 * @param pages how many scan pages the read took (0 unless OK)
 * @param error why it failed, or empty
 */
public record SetRead(
    long process,
    String prefix,
    String consistency,
    String node,
    long invokeNanos,
    Outcome outcome,
    long completeNanos,
    List<Long> elements,
    int pages,
    String error) {
  /** F is the {@code "f"} of a set read's history lines. */
  public static final String F = "scan";

  /** SetRead copies the elements. */
  public SetRead {
    Objects.requireNonNull(prefix, "prefix");
    Objects.requireNonNull(consistency, "consistency");
    Objects.requireNonNull(outcome, "outcome");
    elements = List.copyOf(elements);
    error = error == null ? "" : error;
  }

  /** invoked is a read just invoked (outcome INFO until it completes). */
  public static SetRead invoked(long process, String prefix, String consistency, String node, long invokeNanos) {
    return new SetRead(process, prefix, consistency, node, invokeNanos, Outcome.INFO, -1, List.of(), 0, "");
  }

  /** ok is this read completed at {@code time} with {@code elements} over {@code pages} pages. */
  public SetRead ok(long time, List<Long> read, int pageCount) {
    return new SetRead(process, prefix, consistency, node, invokeNanos, Outcome.OK, time, read, pageCount, "");
  }

  /** failed is this read failed at {@code time}. */
  public SetRead failed(long time, String why) {
    return new SetRead(process, prefix, consistency, node, invokeNanos, Outcome.FAIL, time, List.of(), 0, why);
  }

  /** unknown is this read ended at {@code time} by an error of unknown outcome: it learnt nothing. */
  public SetRead unknown(long time, String why) {
    return new SetRead(process, prefix, consistency, node, invokeNanos, Outcome.INFO, time, List.of(), 0, why);
  }

  /** isLinearizable tells whether the read went through the primary's linearizable path. */
  public boolean isLinearizable() {
    return consistency.equals("linearizable");
  }

  /** invokeLine is the history line of the invocation. */
  public ObjectNode invokeLine() {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("process", process);
    o.put("type", EventType.INVOKE.jsonName());
    o.put("f", F);
    o.put("key", prefix);
    o.put("consistency", consistency);
    o.put("time", invokeNanos);
    if (node != null) {
      o.put("node", node);
    }
    return o;
  }

  /** completionLine is the history line of the completion (ok with the elements, or fail or info with the error). */
  public ObjectNode completionLine() {
    if (completeNanos < 0) {
      throw new IllegalStateException("p" + process + ": the read has not completed");
    }
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("process", process);
    o.put("type", outcome.name().toLowerCase(Locale.ROOT));
    o.put("f", F);
    o.put("key", prefix);
    if (outcome == Outcome.OK) {
      ArrayNode v = o.putArray("value");
      elements.forEach(v::add);
      o.put("pages", pages);
    } else {
      o.put("error", error);
    }
    o.put("time", completeNanos);
    return o;
  }

  /** isSetReadLine tells whether a parsed history line belongs to a set read. */
  public static boolean isSetReadLine(JsonNode n) {
    return F.equals(n.path("f").asText());
  }

  /**
   * Lines pairs the set-read lines of a history file back into reads: an invoke opens a read of its
   * process, the next completion of that process closes it.
   */
  static final class Lines {
    private final List<SetRead> reads = new ArrayList<>();
    private final Map<Long, Integer> open = new HashMap<>();

    void add(JsonNode n) {
      long process = n.get("process").asLong();
      long time = n.get("time").asLong();
      String type = n.path("type").asText();
      if (type.equals(EventType.INVOKE.jsonName())) {
        open.put(process, reads.size());
        reads.add(invoked(process, n.path("key").asText(), n.path("consistency").asText("linearizable"),
            n.hasNonNull("node") ? n.get("node").asText() : null, time));
        return;
      }
      Integer at = open.remove(process);
      if (at == null) {
        throw new IllegalArgumentException("p" + process + ": scan completion without an invocation");
      }
      SetRead r = reads.get(at);
      if (type.equals(EventType.OK.jsonName())) {
        List<Long> read = new ArrayList<>();
        n.path("value").forEach(x -> read.add(x.asLong()));
        reads.set(at, r.ok(time, read, n.path("pages").asInt()));
      } else if (type.equals(EventType.INFO.jsonName())) {
        reads.set(at, r.unknown(time, n.path("error").asText(type)));
      } else {
        reads.set(at, r.failed(time, n.path("error").asText(type)));
      }
    }

    List<SetRead> reads() {
      return List.copyOf(reads);
    }
  }
}
