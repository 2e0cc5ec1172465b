package io.choir.jepsen;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.Event;
import io.choir.checker.EventType;
import io.choir.checker.History;
import io.choir.checker.Operation;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Recorder is the history of a run as it happens: the clients' invocations and completions (into the
 * checker's {@link History.Builder}), the set workload's final reads ({@link SetRead}) and the nemesis
 * events, each stamped with nanoseconds since the run started, and each streamed as one JSON line to
 * history.jsonl at once, so a run that dies still leaves its history behind.
 *
 * <p>Every method takes the timestamp and records under one lock: the order of the lines is the
 * real-time order the checker trusts (an operation's completion is recorded after its response arrived,
 * and its invocation before its request left).
 */
public final class Recorder implements AutoCloseable {
  private final History.Builder builder = History.builder();
  private final LongSupplier clock;
  private final long t0;
  private final long startEpochMillis;
  private final Writer out;
  private final Map<Long, Operation> pending = new HashMap<>();
  private final List<NemesisEvent> nemesis = new ArrayList<>();
  private final List<SetRead> setReads = new ArrayList<>();
  private final Map<Long, Integer> openSetReads = new HashMap<>();
  private History built;

  /** Recorder streaming to {@code file} (replaced), on the system's nanosecond clock. */
  public Recorder(Path file) throws IOException {
    this(file == null ? null : Files.newBufferedWriter(file, StandardCharsets.UTF_8), System::nanoTime);
  }

  /** Recorder streaming to {@code out} (may be null: memory only) on {@code clock}. */
  public Recorder(Writer out, LongSupplier clock) {
    this.out = out == null ? null : out instanceof BufferedWriter ? out : new BufferedWriter(out);
    this.clock = clock;
    this.t0 = clock.getAsLong();
    this.startEpochMillis = System.currentTimeMillis();
  }

  /** startEpochMillis is the wall-clock time of time 0 of the history. */
  public long startEpochMillis() {
    return startEpochMillis;
  }

  /** now is the history's clock: nanoseconds since the recorder was created. */
  public long now() {
    return clock.getAsLong() - t0;
  }

  /** invoke records {@code op.process()} invoking {@code op} through {@code node}; returns the time. */
  public synchronized long invoke(Operation op, String node) {
    long t = now();
    builder.invoke(op, t, node);
    pending.put(op.process(), op);
    write(opLine(EventType.INVOKE, op, t, node));
    return t;
  }

  /** ok records a write or CAS of {@code process} completing ok. */
  public synchronized long ok(long process) {
    long t = now();
    Operation op = pending.remove(process);
    builder.ok(process, t);
    write(opLine(EventType.OK, op, t, null));
    return t;
  }

  /** okRead records a read of {@code process} returning {@code value} (null = absent). */
  public synchronized long okRead(long process, Long value) {
    long t = now();
    Operation op = pending.remove(process);
    builder.ok(process, value, t);
    write(opLine(EventType.OK, op.withValue(value), t, null));
    return t;
  }

  /** fail records that the outstanding operation of {@code process} certainly did not take effect. */
  public synchronized long fail(long process, String error) {
    long t = now();
    Operation op = pending.remove(process);
    builder.fail(process, t);
    write(opLine(EventType.FAIL, op, t, null).put("error", error));
    return t;
  }

  /** info records that the outcome of {@code process}'s operation is unknown; the process is done. */
  public synchronized long info(long process, String error) {
    long t = now();
    Operation op = pending.remove(process);
    builder.info(process, t);
    write(opLine(EventType.INFO, op, t, null).put("error", error));
    return t;
  }

  /** nemesis records a nemesis event now. */
  public synchronized NemesisEvent nemesis(String phase, String fault, List<String> nodes, String detail) {
    NemesisEvent e = new NemesisEvent(now(), phase, fault, nodes, detail);
    nemesis.add(e);
    write(e.toJson());
    return e;
  }

  /**
   * setReadInvoke records {@code process} starting a final read of the set workload: a scan of every key
   * under {@code prefix} with {@code consistency}, entering through {@code node}.
   */
  public synchronized long setReadInvoke(long process, String prefix, String consistency, String node) {
    long t = now();
    if (openSetReads.containsKey(process)) {
      throw new IllegalArgumentException("p" + process + " already has a set read outstanding");
    }
    SetRead r = SetRead.invoked(process, prefix, consistency, node, t);
    openSetReads.put(process, setReads.size());
    setReads.add(r);
    write(r.invokeLine());
    return t;
  }

  /** setReadOk records the set read of {@code process} returning {@code elements} over {@code pages} pages. */
  public synchronized long setReadOk(long process, List<Long> elements, int pages) {
    return completeSetRead(process, (r, t) -> r.ok(t, elements, pages));
  }

  /** setReadFail records that the set read of {@code process} failed without executing: it learnt nothing. */
  public synchronized long setReadFail(long process, String error) {
    return completeSetRead(process, (r, t) -> r.failed(t, error));
  }

  /** setReadInfo records that the set read of {@code process} ended in an error of unknown outcome: it learnt nothing. */
  public synchronized long setReadInfo(long process, String error) {
    return completeSetRead(process, (r, t) -> r.unknown(t, error));
  }

  /** setReads are the set workload's final reads so far, in invocation order (open ones as INFO). */
  public synchronized List<SetRead> setReads() {
    return List.copyOf(setReads);
  }

  /** How a set read completes: the open read and the completion time give the completed read. */
  private interface SetReadCompletion {
    SetRead complete(SetRead open, long time);
  }

  /** Completes the open set read of {@code process} now, as {@code completion} says, and streams it. */
  private long completeSetRead(long process, SetReadCompletion completion) {
    long t = now();
    int at = openSetRead(process);
    SetRead r = completion.complete(setReads.get(at), t);
    setReads.set(at, r);
    write(r.completionLine());
    return t;
  }

  private int openSetRead(long process) {
    Integer at = openSetReads.remove(process);
    if (at == null) {
      throw new IllegalArgumentException("p" + process + ": set read completion without an invocation");
    }
    return at;
  }

  /** nemesisEvents are the nemesis events so far, in order. */
  public synchronized List<NemesisEvent> nemesisEvents() {
    return List.copyOf(nemesis);
  }

  /**
   * history freezes the client history (still outstanding invocations count as info) and flushes the
   * file; later calls return the same history.
   */
  public synchronized History history() {
    if (built == null) {
      built = builder.build();
      flush();
    }
    return built;
  }

  @Override
  public synchronized void close() {
    history();
    if (out != null) {
      try {
        out.close();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  /** opLine is the JSON line of an op event, in the checker's JSON-lines format (io.choir.checker). */
  static ObjectNode opLine(EventType type, Operation op, long time, String node) {
    ObjectNode o = Json.MAPPER.createObjectNode();
    o.put("process", op.process());
    o.put("type", type.jsonName());
    o.put("f", op.type().jsonName());
    o.put("key", op.key());
    switch (op.type()) {
      case READ -> {
        if (type == EventType.OK) {
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
    o.put("time", time);
    if (node != null) {
      o.put("node", node);
    }
    return o;
  }

  /** eventLine is {@link #opLine} of a checker event. */
  static ObjectNode eventLine(Event e) {
    return opLine(e.type(), e.op(), e.timeNanos(), e.node());
  }

  private static void putLong(ObjectNode o, String field, Long v) {
    if (v == null) {
      o.putNull(field);
    } else {
      o.put(field, v);
    }
  }

  private void write(ObjectNode line) {
    if (out == null) {
      return;
    }
    try {
      out.write(Json.line(line));
      out.write('\n');
      out.flush(); // a line at a time: a run that dies (kill -9, Ctrl-C) still leaves its history
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void flush() {
    if (out != null) {
      try {
        out.flush();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
