package io.choir.checker;

import java.util.Locale;

/**
 * EventType is what an {@link Event} records: an invocation or one of the three ways it can complete,
 * following the Jepsen convention so a failure-injection harness can log what its clients actually saw.
 */
public enum EventType {
  /** INVOKE is a process starting an operation. */
  INVOKE,
  /** OK is a completion that definitely took effect (a read carries the value it returned). */
  OK,
  /** FAIL is a completion that definitely did not take effect; the checker drops the operation. */
  FAIL,
  /**
   * INFO is a completion whose effect is unknown (a timeout, a lost connection): the operation may take
   * effect at any moment after its invocation, so it stays open until the end of the history.
   */
  INFO;

  /** jsonName is the name used in the {@code "type"} field of a JSON-lines history. */
  public String jsonName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** fromJsonName parses {@code invoke}, {@code ok}, {@code fail} or {@code info}. */
  public static EventType fromJsonName(String name) {
    for (EventType t : values()) {
      if (t.jsonName().equals(name)) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown type \"" + name + "\": expected invoke, ok, fail or info");
  }
}
