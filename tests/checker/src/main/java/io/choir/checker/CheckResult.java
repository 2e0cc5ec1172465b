package io.choir.checker;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * CheckResult is the outcome of checking a whole history: INVALID if any key is INVALID, otherwise
 * UNKNOWN if any key's search did not finish, otherwise VALID. A history is therefore never reported
 * VALID unless every key's search completed.
 *
 * @param verdict the overall verdict
 * @param keys per-key results, sorted by key
 * @param elapsed total time of the check
 */
public record CheckResult(Verdict verdict, List<KeyResult> keys, Duration elapsed) {

  /** CheckResult copies the key list and checks that the verdict agrees with it. */
  public CheckResult {
    keys = List.copyOf(keys);
    if (verdict != combine(keys)) {
      throw new IllegalArgumentException("verdict " + verdict + " does not follow from the keys");
    }
  }

  /** combine is the overall verdict of a set of per-key results. */
  static Verdict combine(List<KeyResult> keys) {
    Verdict v = Verdict.VALID;
    for (KeyResult k : keys) {
      if (k.verdict() == Verdict.INVALID) {
        return Verdict.INVALID;
      }
      if (k.verdict() == Verdict.UNKNOWN) {
        v = Verdict.UNKNOWN;
      }
    }
    return v;
  }

  /** isValid is true only when every key was proved linearizable. */
  public boolean isValid() {
    return verdict == Verdict.VALID;
  }

  /** key is the result for one key, if the history touched it. */
  public Optional<KeyResult> key(String key) {
    return keys.stream().filter(k -> k.key().equals(key)).findFirst();
  }

  /** anomalies are the explanations of all INVALID keys, in key order. */
  public List<Anomaly> anomalies() {
    return keys.stream().flatMap(k -> k.anomaly().stream()).toList();
  }

  /** exploredStates is the total number of configurations visited over all keys. */
  public long exploredStates() {
    return keys.stream().mapToLong(KeyResult::exploredStates).sum();
  }

  @Override
  public String toString() {
    long valid = keys.stream().filter(k -> k.verdict() == Verdict.VALID).count();
    long invalid = keys.stream().filter(k -> k.verdict() == Verdict.INVALID).count();
    long unknown = keys.size() - valid - invalid;
    StringBuilder sb = new StringBuilder();
    sb.append(verdict).append(": ").append(keys.size()).append(" keys (").append(valid).append(" valid, ")
        .append(invalid).append(" invalid, ").append(unknown).append(" unknown), ")
        .append(exploredStates()).append(" states in ").append(elapsed.toMillis()).append(" ms");
    for (KeyResult k : keys) {
      if (k.verdict() != Verdict.VALID) {
        sb.append('\n').append(k);
      }
    }
    return sb.toString();
  }

  /** toJson is the result as a pretty-printed JSON object, for harness reports. */
  public String toJson() {
    ObjectNode o = JsonLines.MAPPER.createObjectNode();
    o.put("verdict", verdict.name());
    o.put("elapsedMillis", elapsed.toMillis());
    ArrayNode arr = o.putArray("keys");
    for (KeyResult k : keys) {
      ObjectNode kn = arr.addObject();
      kn.put("key", k.key());
      kn.put("verdict", k.verdict().name());
      kn.put("ops", k.opCount());
      kn.put("exploredStates", k.exploredStates());
      kn.put("elapsedMillis", k.elapsed().toMillis());
      if (!k.note().isEmpty()) {
        kn.put("note", k.note());
      }
      k.anomaly().ifPresent(a -> kn.set("anomaly", a.toJsonNode()));
    }
    try {
      return JsonLines.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
