package io.choir.checker;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * History is a validated, immutable sequence of {@link Event}s in real-time order, with each invocation
 * paired to its completion. Validation happens here, once, so the search can trust its input: a
 * completion without an invocation, a second invocation by a busy process, a process reused after an info
 * completion, or time going backwards is an {@link IllegalArgumentException}.
 *
 * <p>Build one with {@link #builder()} while a test runs, or read one with {@link #readJsonLines(Reader)}.
 */
public final class History {
  private final List<Event> events;
  private final List<Invocation> invocations;

  private History(List<Event> events, List<Invocation> invocations) {
    this.events = Collections.unmodifiableList(events);
    this.invocations = Collections.unmodifiableList(invocations);
  }

  /** builder starts an empty history. */
  public static Builder builder() {
    return new Builder();
  }

  /** of validates a list of events as a history. */
  public static History of(List<Event> events) {
    Builder b = new Builder();
    for (Event e : events) {
      b.add(e);
    }
    return b.build();
  }

  /** events are the events in real-time order, as recorded (completions carry their operation). */
  public List<Event> events() {
    return events;
  }

  /** invocations are the operations paired with their completions, in invocation order. */
  public List<Invocation> invocations() {
    return invocations;
  }

  /** size is the number of events. */
  public int size() {
    return events.size();
  }

  /** byKey splits the invocations by key, keys sorted so checks and reports are deterministic. */
  public Map<String, List<Invocation>> byKey() {
    Map<String, List<Invocation>> m = new TreeMap<>();
    for (Invocation inv : invocations) {
      m.computeIfAbsent(inv.op().key(), k -> new ArrayList<>()).add(inv);
    }
    return m;
  }

  /** keys are the keys the history touches, sorted. */
  public Set<String> keys() {
    return byKey().keySet();
  }

  /** readJsonLines parses a JSON-lines history; see {@link JsonLines} for the format. */
  public static History readJsonLines(Reader in) throws IOException {
    return JsonLines.read(in);
  }

  /** readJsonLines reads a JSON-lines history file (UTF-8). */
  public static History readJsonLines(Path file) throws IOException {
    try (Reader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      return JsonLines.read(in);
    }
  }

  /** fromJsonLines parses a JSON-lines history held in a string. */
  public static History fromJsonLines(String text) {
    try {
      return JsonLines.read(new StringReader(text));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** writeJsonLines writes one JSON object per event, one event per line. */
  public void writeJsonLines(Writer out) throws IOException {
    JsonLines.write(this, out);
  }

  /** writeJsonLines writes the history to a file (UTF-8), replacing it. */
  public void writeJsonLines(Path file) throws IOException {
    try (Writer out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
      JsonLines.write(this, out);
    }
  }

  /** toJsonLines is the JSON-lines form as a string. */
  public String toJsonLines() {
    StringWriter w = new StringWriter();
    try {
      JsonLines.write(this, w);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return w.toString();
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("History[").append(events.size()).append(" events]\n");
    for (Invocation inv : invocations) {
      sb.append("  ").append(inv.describe()).append('\n');
    }
    return sb.toString();
  }

  /**
   * Builder records a history as it happens. Its methods are synchronized so that the client threads of
   * a harness can record into one builder; take the timestamp inside the same critical section (or pass
   * non-decreasing times) because the order of calls is the real-time order the checker trusts.
   */
  public static final class Builder {
    private final List<Event> events = new ArrayList<>();
    private final List<Pending> invocations = new ArrayList<>();
    private final Map<Long, Pending> outstanding = new HashMap<>();
    private final Set<Long> crashed = new HashSet<>();
    private long lastTime = Long.MIN_VALUE;
    private boolean built;

    private Builder() {}

    /** invoke records {@code op.process()} starting {@code op}. */
    public Builder invoke(Operation op, long timeNanos) {
      return add(new Event(EventType.INVOKE, op, timeNanos, null));
    }

    /** invoke records an invocation through {@code node} (for reports). */
    public Builder invoke(Operation op, long timeNanos, String node) {
      return add(new Event(EventType.INVOKE, op, timeNanos, node));
    }

    /** invokeRead records a read invocation. */
    public Builder invokeRead(long process, String key, long timeNanos) {
      return invoke(Operation.read(process, key), timeNanos);
    }

    /** invokeWrite records a write invocation. */
    public Builder invokeWrite(long process, String key, long value, long timeNanos) {
      return invoke(Operation.write(process, key, value), timeNanos);
    }

    /** invokeCas records a compare-and-set invocation ({@code expected} null = absent). */
    public Builder invokeCas(long process, String key, Long expected, long newValue, long timeNanos) {
      return invoke(Operation.cas(process, key, expected, newValue), timeNanos);
    }

    /**
     * ok records a write or CAS completing successfully. A read must use {@link #ok(long, Long, long)}
     * so that its result is never left out by accident.
     */
    public synchronized Builder ok(long process, long timeNanos) {
      Operation op = pendingOp(process, EventType.OK);
      if (op.type() == OpType.READ) {
        throw new IllegalArgumentException(
            "p" + process + ": an ok read needs its value; use ok(process, value, time), null = absent");
      }
      return add(new Event(EventType.OK, op, timeNanos, null));
    }

    /** ok records a read returning {@code value} ({@code null} = absent). */
    public synchronized Builder ok(long process, Long value, long timeNanos) {
      Operation op = pendingOp(process, EventType.OK);
      if (op.type() == OpType.READ) {
        op = op.withValue(value);
      } else if (value != null && !value.equals(op.value())) {
        throw new IllegalArgumentException("p" + process + ": ok " + op.describeInput() + " with value " + value);
      }
      return add(new Event(EventType.OK, op, timeNanos, null));
    }

    /** fail records that the outstanding operation definitely did not take effect. */
    public synchronized Builder fail(long process, long timeNanos) {
      return add(new Event(EventType.FAIL, pendingOp(process, EventType.FAIL), timeNanos, null));
    }

    /**
     * info records that the outcome of the outstanding operation is unknown. The process must not invoke
     * again (use a fresh process id), as in Jepsen, because the operation stays open forever.
     */
    public synchronized Builder info(long process, long timeNanos) {
      return add(new Event(EventType.INFO, pendingOp(process, EventType.INFO), timeNanos, null));
    }

    /**
     * add records any event, with its node. For a completion, the operation's type and key must match
     * the invocation; an ok read's {@code op.value()} is its result; other fields are taken from the
     * invocation.
     */
    public synchronized Builder add(Event e) {
      if (built) {
        throw new IllegalStateException("history already built");
      }
      long process = e.process();
      String where = "event " + events.size() + " (p" + process + " " + e.type().jsonName() + "): ";
      if (e.timeNanos() < lastTime) {
        throw new IllegalArgumentException(where + "time " + e.timeNanos() + " is before the previous event's " + lastTime);
      }
      if (e.type() == EventType.INVOKE) {
        if (outstanding.containsKey(process)) {
          throw new IllegalArgumentException(where + "process already has "
              + outstanding.get(process).op.describeInput() + " outstanding");
        }
        if (crashed.contains(process)) {
          throw new IllegalArgumentException(where + "process completed with info before; use a fresh process id");
        }
        if (e.op().type() == OpType.READ && e.op().value() != null) {
          throw new IllegalArgumentException(where + "a read invocation carries no value");
        }
        Pending p = new Pending(invocations.size(), e.op(), events.size(), e.timeNanos(), e.node());
        invocations.add(p);
        outstanding.put(process, p);
      } else {
        Pending p = outstanding.remove(process);
        if (p == null) {
          throw new IllegalArgumentException(where + "completion without an outstanding invocation");
        }
        Operation inv = p.op;
        Operation got = e.op();
        if (got.type() != inv.type() || !got.key().equals(inv.key())) {
          outstanding.put(process, p);
          throw new IllegalArgumentException(where + "completes " + got.describeInput() + " but "
              + inv.describeInput() + " was invoked");
        }
        Operation done;
        if (inv.type() == OpType.READ) {
          done = e.type() == EventType.OK ? inv.withValue(got.value()) : inv;
        } else {
          if (!Objects.equals(got.expected(), inv.expected()) || !Objects.equals(got.newValue(), inv.newValue())
              || (got.value() != null && !got.value().equals(inv.value()))) {
            outstanding.put(process, p);
            throw new IllegalArgumentException(where + "completes " + got.describeInput() + " but "
                + inv.describeInput() + " was invoked");
          }
          done = inv;
        }
        p.op = done;
        p.outcome = switch (e.type()) {
          case OK -> Outcome.OK;
          case FAIL -> Outcome.FAIL;
          case INFO -> Outcome.INFO;
          default -> throw new AssertionError(e.type());
        };
        p.completeIndex = events.size();
        p.completeNanos = e.timeNanos();
        if (e.node() != null) {
          p.node = e.node();
        }
        if (e.type() == EventType.INFO) {
          crashed.add(process);
        }
        e = new Event(e.type(), done, e.timeNanos(), e.node());
      }
      lastTime = e.timeNanos();
      events.add(e);
      return this;
    }

    /** outstanding tells whether {@code process} has an invocation without completion. */
    public synchronized boolean isOutstanding(long process) {
      return outstanding.containsKey(process);
    }

    /**
     * build freezes the history. Invocations still outstanding count as info: open to the end, since a
     * harness that stopped waiting cannot know whether they took effect.
     */
    public synchronized History build() {
      built = true;
      List<Invocation> done = new ArrayList<>(invocations.size());
      for (Pending p : invocations) {
        done.add(new Invocation(p.id, p.op, p.outcome == null ? Outcome.INFO : p.outcome, p.invokeIndex,
            p.completeIndex, p.invokeNanos, p.completeNanos, p.node));
      }
      return new History(new ArrayList<>(events), done);
    }

    private Operation pendingOp(long process, EventType type) {
      Pending p = outstanding.get(process);
      if (p == null) {
        throw new IllegalArgumentException(
            "p" + process + " " + type.jsonName() + ": completion without an outstanding invocation");
      }
      return p.op;
    }

    private static final class Pending {
      final int id;
      Operation op;
      Outcome outcome;
      final int invokeIndex;
      int completeIndex = -1;
      final long invokeNanos;
      long completeNanos = -1;
      String node;

      Pending(int id, Operation op, int invokeIndex, long invokeNanos, String node) {
        this.id = id;
        this.op = op;
        this.invokeIndex = invokeIndex;
        this.invokeNanos = invokeNanos;
        this.node = node;
      }
    }
  }
}
