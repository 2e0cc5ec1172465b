package io.choir.checker;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * KeyResult is the verdict for one key. Keys are independent registers, so each is checked on its own
 * (P-compositionality, Horn and Kroening 2015) and a harness can tell which key went wrong.
 *
 * @param key the key
 * @param verdict VALID, INVALID or UNKNOWN
 * @param opCount invocations on the key in the history, failed and info ones included
 * @param exploredStates distinct (linearized set, state) configurations the search visited
 * @param elapsed time spent searching this key
 * @param anomaly for INVALID, the first operation that cannot be linearized
 * @param note why the verdict is UNKNOWN (deadline, state budget), otherwise empty
 */
public record KeyResult(
    String key,
    Verdict verdict,
    int opCount,
    long exploredStates,
    Duration elapsed,
    Optional<Anomaly> anomaly,
    String note) {

  /** KeyResult checks that only INVALID keys carry an anomaly. */
  public KeyResult {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(verdict, "verdict");
    Objects.requireNonNull(anomaly, "anomaly");
    note = note == null ? "" : note;
    if (anomaly.isPresent() != (verdict == Verdict.INVALID)) {
      throw new IllegalArgumentException("an anomaly goes with INVALID and only with it");
    }
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder();
    sb.append(key).append(": ").append(verdict).append(" (").append(opCount).append(" ops, ")
        .append(exploredStates).append(" states, ").append(elapsed.toMillis()).append(" ms");
    if (!note.isEmpty()) {
      sb.append(", ").append(note);
    }
    sb.append(')');
    anomaly.ifPresent(a -> sb.append('\n').append(a));
    return sb.toString();
  }
}
