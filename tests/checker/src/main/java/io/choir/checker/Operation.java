package io.choir.checker;

import java.util.Objects;

/**
 * Operation is one register operation on one key by one process. It is the unit the checker orders: an
 * invocation carries the operation's input, and an ok read's completion carries the value it returned in
 * {@link #value()}, so that a {@link Model} can judge the operation from this record alone.
 *
 * <ul>
 *   <li>{@code READ}: {@code value} is the value read ({@code null} = absent); {@code null} at invocation.
 *   <li>{@code WRITE}: {@code value} is the value written (never {@code null}).
 *   <li>{@code CAS}: {@code expected} ({@code null} = the key must be absent) and {@code newValue}
 *       (never {@code null}); {@code value} is unused.
 * </ul>
 *
 * @param process the process (client thread) that invoked it; a process has one operation outstanding
 * @param type read, write or cas
 * @param key the key; histories are partitioned by it
 * @param value the value written, or the value a completed read returned ({@code null} = absent)
 * @param expected the value a CAS expects ({@code null} = absent)
 * @param newValue the value a CAS installs
 */
public record Operation(long process, OpType type, String key, Long value, Long expected, Long newValue) {

  /** Operation checks that the fields make sense for the type, so bad histories fail where they are built. */
  public Operation {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(key, "key");
    switch (type) {
      case READ -> {
        if (expected != null || newValue != null) {
          throw new IllegalArgumentException("a read has no expected/new value: " + key);
        }
      }
      case WRITE -> {
        if (value == null) {
          throw new IllegalArgumentException("a write needs a value: " + key);
        }
        if (expected != null || newValue != null) {
          throw new IllegalArgumentException("a write has no expected/new value: " + key);
        }
      }
      case CAS -> {
        if (newValue == null) {
          throw new IllegalArgumentException("a cas needs a new value: " + key);
        }
        if (value != null) {
          throw new IllegalArgumentException("a cas carries expected/new, not value: " + key);
        }
      }
      default -> throw new AssertionError(type);
    }
  }

  /** read is a read invocation (its result is attached at completion). */
  public static Operation read(long process, String key) {
    return new Operation(process, OpType.READ, key, null, null, null);
  }

  /** readResult is a completed read that returned {@code value} ({@code null} = absent). */
  public static Operation readResult(long process, String key, Long value) {
    return new Operation(process, OpType.READ, key, value, null, null);
  }

  /** write is an unconditional write of {@code value}. */
  public static Operation write(long process, String key, long value) {
    return new Operation(process, OpType.WRITE, key, value, null, null);
  }

  /** cas is a compare-and-set from {@code expected} ({@code null} = absent) to {@code newValue}. */
  public static Operation cas(long process, String key, Long expected, long newValue) {
    return new Operation(process, OpType.CAS, key, null, expected, newValue);
  }

  /** withValue is this operation with another {@link #value()}, used to attach a read's result. */
  public Operation withValue(Long v) {
    return new Operation(process, type, key, v, expected, newValue);
  }

  /** describeInput is the operation as invoked, e.g. {@code write k1 3} or {@code cas k1 2->3}. */
  public String describeInput() {
    return switch (type) {
      case READ -> "read " + key;
      case WRITE -> "write " + key + " " + value;
      case CAS -> "cas " + key + " " + show(expected) + "->" + newValue;
    };
  }

  static String show(Long v) {
    return v == null ? "absent" : v.toString();
  }
}
