package io.choir.checker;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;

/**
 * Anomaly explains an INVALID key: the first operation that cannot be linearized, in the sense that every
 * attempted linearization dies at or before this operation's completion while some linearization gets
 * through every earlier completion. It is the latest point reached by the search (Porcupine's longest
 * partial linearizations, Knossos' final configurations), which is where a developer should look.
 *
 * @param key the key whose history is not linearizable
 * @param op the operation that no linearization of the prefix can place before its completion
 * @param concurrent operations on the key whose intervals overlap {@code op}'s, including failed and
 *     info ones, because a reordering or a "failed" write that did happen usually hides among them
 * @param statesBefore the distinct model states in which the longest linearizable prefixes left the key
 *     just before {@code op} had to take effect (at most a handful)
 * @param linearizedPrefix one longest linearizable prefix, in linearization order
 */
public record Anomaly(
    String key,
    Invocation op,
    List<Invocation> concurrent,
    List<String> statesBefore,
    List<Invocation> linearizedPrefix) {

  private static final int SHOWN = 20;

  /** Anomaly copies the lists so the record stays immutable. */
  public Anomaly {
    concurrent = List.copyOf(concurrent);
    statesBefore = List.copyOf(statesBefore);
    linearizedPrefix = List.copyOf(linearizedPrefix);
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder();
    sb.append("key ").append(key).append(": no linearization for ").append(op.describe()).append('\n');
    sb.append("  state before it: ").append(String.join(" or ", statesBefore)).append('\n');
    sb.append("  concurrent with it: ");
    if (concurrent.isEmpty()) {
      sb.append("none\n");
    } else {
      sb.append(concurrent.size()).append('\n');
      for (int i = 0; i < Math.min(SHOWN, concurrent.size()); i++) {
        sb.append("    ").append(concurrent.get(i).describe()).append('\n');
      }
      if (concurrent.size() > SHOWN) {
        sb.append("    ... and ").append(concurrent.size() - SHOWN).append(" more\n");
      }
    }
    int n = linearizedPrefix.size();
    sb.append("  longest linearizable prefix: ").append(n).append(" ops");
    if (n > 0) {
      int from = Math.max(0, n - SHOWN);
      sb.append(from > 0 ? ", the last " + (n - from) + ":\n" : ":\n");
      for (int i = from; i < n; i++) {
        sb.append("    ").append(linearizedPrefix.get(i).describe()).append('\n');
      }
    } else {
      sb.append('\n');
    }
    return sb.toString();
  }

  /** toJson is the anomaly as a JSON object, for machine-readable test reports. */
  public String toJson() {
    try {
      return JsonLines.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(toJsonNode());
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  ObjectNode toJsonNode() {
    ObjectNode o = JsonLines.MAPPER.createObjectNode();
    o.put("key", key);
    o.set("op", json(op));
    o.put("description", op.describe());
    ArrayNode states = o.putArray("statesBefore");
    statesBefore.forEach(states::add);
    ArrayNode conc = o.putArray("concurrent");
    concurrent.forEach(c -> conc.add(json(c)));
    ArrayNode prefix = o.putArray("linearizedPrefix");
    linearizedPrefix.forEach(c -> prefix.add(json(c)));
    return o;
  }

  static ObjectNode json(Invocation inv) {
    ObjectNode o = JsonLines.MAPPER.createObjectNode();
    Operation op = inv.op();
    o.put("id", inv.id());
    o.put("process", op.process());
    o.put("f", op.type().jsonName());
    o.put("key", op.key());
    switch (op.type()) {
      case READ -> {
        if (inv.outcome() == Outcome.OK) {
          putLong(o, "value", op.value());
        }
      }
      case WRITE -> putLong(o, "value", op.value());
      case CAS -> {
        putLong(o, "expected", op.expected());
        putLong(o, "new", op.newValue());
      }
      default -> throw new AssertionError(op.type());
    }
    o.put("outcome", inv.outcome().name().toLowerCase(Locale.ROOT));
    o.put("invokeTime", inv.invokeNanos());
    if (inv.completeIndex() >= 0) {
      o.put("completeTime", inv.completeNanos());
    }
    o.put("invokeIndex", inv.invokeIndex());
    o.put("completeIndex", inv.completeIndex());
    if (inv.node() != null) {
      o.put("node", inv.node());
    }
    o.put("text", inv.describe());
    return o;
  }

  private static void putLong(ObjectNode o, String field, Long v) {
    if (v == null) {
      o.putNull(field);
    } else {
      o.put(field, v.longValue());
    }
  }
}
