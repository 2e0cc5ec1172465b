package io.choir.jepsen;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.Operation;
import io.choir.checker.OpType;
import io.choir.checker.Outcome;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * GarbageReads finds reads of the register workload that returned a value nothing could have put there:
 * no write of that value and no CAS to that value on the same key, with any outcome (a failed one too,
 * so that the check never blames the store for the client's verdict), was invoked before the read
 * completed. Absent is always possible (the initial state). The workload reads a stored value that is
 * not a number as -1, which no one writes, so corrupt bytes are garbage too.
 *
 * <p>This is weaker than linearizability (which rejects stale reads as well) but independent of the
 * search: it gives a verdict even when the linearizability checker runs out of time, and names the
 * exact reads.
 *
 * @param valid true when no read is garbage
 * @param readsChecked the ok reads that returned a value
 * @param garbage the garbage reads, in history order
 */
public record GarbageReads(boolean valid, int readsChecked, List<Invocation> garbage) {
  /** MAX_LISTED caps the reads listed in results.json (the count is exact). */
  static final int MAX_LISTED = 50;

  /** GarbageReads copies the list. */
  public GarbageReads {
    garbage = List.copyOf(garbage);
  }

  /** check checks every ok read of {@code history}. */
  public static GarbageReads check(History history) {
    // per key and value: the first position where a write or CAS could have installed it
    Map<String, Map<Long, Integer>> firstInvoke = new HashMap<>();
    for (Invocation inv : history.invocations()) {
      Operation op = inv.op();
      Long installs = op.type() == OpType.WRITE ? op.value() : op.type() == OpType.CAS ? op.newValue() : null;
      if (installs != null) {
        firstInvoke.computeIfAbsent(op.key(), k -> new HashMap<>()).merge(installs, inv.invokeIndex(), Math::min);
      }
    }
    List<Invocation> garbage = new ArrayList<>();
    int checked = 0;
    for (Invocation inv : history.invocations()) {
      Operation op = inv.op();
      if (op.type() != OpType.READ || inv.outcome() != Outcome.OK || op.value() == null) {
        continue;
      }
      checked++;
      Integer first = firstInvoke.getOrDefault(op.key(), Map.of()).get(op.value());
      if (first == null || first > inv.completeIndex()) {
        garbage.add(inv);
      }
    }
    return new GarbageReads(garbage.isEmpty(), checked, garbage);
  }

  /** summary is a one-line account for the report. */
  public String summary() {
    return garbage.size() + " garbage of " + readsChecked + " reads that returned a value";
  }

  /** toJson is the checker's entry in results.json. */
  public ObjectNode toJson() {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("valid", valid);
    o.put("summary", summary());
    o.put("readsChecked", readsChecked);
    o.put("garbageCount", garbage.size());
    ArrayNode arr = o.putArray("garbage");
    for (Invocation inv : garbage.subList(0, Math.min(MAX_LISTED, garbage.size()))) {
      ObjectNode n = arr.addObject();
      n.put("key", inv.op().key());
      n.put("value", inv.op().value());
      n.put("process", inv.op().process());
      n.put("read", inv.describe());
    }
    return o;
  }
}
