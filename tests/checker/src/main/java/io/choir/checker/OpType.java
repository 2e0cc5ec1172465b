package io.choir.checker;

import java.util.Locale;

/**
 * OpType is the kind of an {@link Operation} on one key: the three register operations Choir's clients
 * offer and the test harnesses record.
 */
public enum OpType {
  /** READ returns the key's value, or absent. */
  READ,
  /** WRITE sets the key's value unconditionally. */
  WRITE,
  /** CAS sets the key's value to a new value only if it currently equals the expected one. */
  CAS;

  /** jsonName is the name used in the {@code "f"} field of a JSON-lines history. */
  public String jsonName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** fromJsonName parses {@code read}, {@code write} or {@code cas}, so histories stay readable by hand. */
  public static OpType fromJsonName(String name) {
    for (OpType t : values()) {
      if (t.jsonName().equals(name)) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown f \"" + name + "\": expected read, write or cas");
  }
}
