package io.choir.checker;

/**
 * Invocation is an operation paired with its completion, the form the checker searches over. Intervals
 * are measured in event positions ({@code invokeIndex}, {@code completeIndex}) because the history's order
 * is authoritative; the nanosecond times are for humans.
 *
 * @param id index of the invocation among all invocations of the history, in invocation order
 * @param op the operation; for an ok read it carries the value read
 * @param outcome ok, fail or info (an invocation that never completed counts as info)
 * @param invokeIndex position of the invoke event in the history
 * @param completeIndex position of the completion event, or -1 if the history ended first
 * @param invokeNanos time of the invoke event
 * @param completeNanos time of the completion event, or -1 if there was none
 * @param node the completion's node if given, else the invocation's, else {@code null}
 */
public record Invocation(
    int id,
    Operation op,
    Outcome outcome,
    int invokeIndex,
    int completeIndex,
    long invokeNanos,
    long completeNanos,
    String node) {

  /**
   * isOpen tells whether the operation may still take effect at the end of the history: info ops and
   * ops that never completed stay open, as in Knossos.
   */
  public boolean isOpen() {
    return outcome == Outcome.INFO;
  }

  /** end is the position the operation must be linearized before; open operations never end. */
  int end() {
    return isOpen() ? Integer.MAX_VALUE : completeIndex;
  }

  /** overlaps tells whether the two intervals intersect, i.e. neither finished before the other began. */
  public boolean overlaps(Invocation other) {
    return invokeIndex < other.end() && other.invokeIndex < end();
  }

  /**
   * describe is a one-line, human-readable account such as
   * {@code read k1 -> 3 by p4 (invoked t=1200, ok t=1500)}.
   */
  public String describe() {
    StringBuilder sb = new StringBuilder();
    if (op.type() == OpType.READ) {
      sb.append(op.describeInput());
      if (outcome == Outcome.OK) {
        sb.append(" -> ").append(Operation.show(op.value()));
      }
    } else {
      sb.append(op.describeInput());
    }
    sb.append(" by p").append(op.process()).append(" (invoked t=").append(invokeNanos);
    switch (outcome) {
      case OK -> sb.append(", ok t=").append(completeNanos);
      case FAIL -> sb.append(", failed t=").append(completeNanos).append(": dropped, it did not happen");
      case INFO -> {
        if (completeIndex >= 0) {
          sb.append(", info t=").append(completeNanos);
        } else {
          sb.append(", never completed");
        }
        sb.append(": open, may take effect any time after invocation or never");
      }
      default -> throw new AssertionError(outcome);
    }
    if (node != null) {
      sb.append(", node ").append(node);
    }
    return sb.append(')').toString();
  }

  @Override
  public String toString() {
    return describe();
  }
}
