package io.choir.checker;

import java.util.Objects;

/**
 * Event is one line of a history: a process invoking an operation, or that operation completing. Events
 * are kept in real-time order; their order, not their timestamps, defines which operations precede which
 * (so equal timestamps from a coarse clock are harmless), and the timestamps are kept for reports.
 *
 * @param type invoke, ok, fail or info
 * @param op the operation; for an ok read it carries the value read
 * @param timeNanos when the harness observed the event (any epoch; non-decreasing within a history)
 * @param node optional name of the replica or connection involved, for reports; may be {@code null}
 */
public record Event(EventType type, Operation op, long timeNanos, String node) {

  /** Event rejects missing fields early. */
  public Event {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(op, "op");
  }

  /** process is the process of the operation. */
  public long process() {
    return op.process();
  }

  /** key is the key of the operation. */
  public String key() {
    return op.key();
  }
}
