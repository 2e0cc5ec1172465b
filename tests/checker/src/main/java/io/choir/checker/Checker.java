package io.choir.checker;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * Checker decides whether a history of register operations is linearizable, key by key, within a time
 * budget. It runs the Wing and Gong (1993) search with Lowe's (2017) memoization as Porcupine and Knossos
 * do, treating info operations as open until the end of the history.
 *
 * <p>It is deterministic and single-threaded: apart from the clock (injectable, read only every
 * {@link #DEFAULT_CLOCK_INTERVAL} search steps by default) the result depends on the history alone. When
 * the budget runs out the affected keys are UNKNOWN, never VALID.
 *
 * <p>The budget is shared fairly: keys are searched in key order, each getting an equal share of the
 * time left; keys that used up their share are then resumed (not restarted) with whatever time the
 * others left over. So one pathological key cannot starve the rest, yet no time is wasted.
 *
 * @param <S> the model's state type
 */
public final class Checker<S> {
  /** DEFAULT_CLOCK_INTERVAL is how many search steps pass between two clock reads. */
  public static final int DEFAULT_CLOCK_INTERVAL = 1024;
  /** DEFAULT_MAX_STATES bounds the memo table per key (about 100 bytes each) to keep the heap safe. */
  public static final long DEFAULT_MAX_STATES = 3_000_000L;

  private final Function<String, ? extends Model<S>> models;
  private final LongSupplier clock;
  private final int clockInterval;
  private final long maxStates;

  private Checker(Function<String, ? extends Model<S>> models, LongSupplier clock, int clockInterval, long maxStates) {
    this.models = Objects.requireNonNull(models, "models");
    this.clock = Objects.requireNonNull(clock, "clock");
    if (clockInterval < 1) {
      throw new IllegalArgumentException("clock interval must be positive: " + clockInterval);
    }
    if (maxStates < 1) {
      throw new IllegalArgumentException("max states must be positive: " + maxStates);
    }
    this.clockInterval = clockInterval;
    this.maxStates = maxStates;
  }

  /** check checks a history against registers that start absent, using the system clock. */
  public static CheckResult check(History history, Duration timeout) {
    return registers().run(history, timeout);
  }

  /** registers is a checker for keys that are registers starting absent. */
  public static Checker<RegisterModel.State> registers() {
    return of(RegisterModel.ABSENT_INITIALLY);
  }

  /** of is a checker using the same model for every key. */
  public static <S> Checker<S> of(Model<S> model) {
    Objects.requireNonNull(model, "model");
    return of(key -> model);
  }

  /**
   * of is a checker with a model per key, e.g. {@code key -> RegisterModel.startingAt(0L)} when the
   * harness preloads every key.
   */
  public static <S> Checker<S> of(Function<String, ? extends Model<S>> modelForKey) {
    return new Checker<>(modelForKey, System::nanoTime, DEFAULT_CLOCK_INTERVAL, DEFAULT_MAX_STATES);
  }

  /** withClock replaces {@link System#nanoTime()}, so tests can make time jump. */
  public Checker<S> withClock(LongSupplier nanoClock) {
    return new Checker<>(models, nanoClock, clockInterval, maxStates);
  }

  /** withClockInterval sets how many search steps pass between two clock reads. */
  public Checker<S> withClockInterval(int steps) {
    return new Checker<>(models, clock, steps, maxStates);
  }

  /** withMaxStates bounds the memo table of each key; past it the key is UNKNOWN. */
  public Checker<S> withMaxStates(long states) {
    return new Checker<>(models, clock, clockInterval, states);
  }

  /** run checks every key of {@code history}, giving up (UNKNOWN) on keys still open after {@code timeout}. */
  public CheckResult run(History history, Duration timeout) {
    Objects.requireNonNull(history, "history");
    long budget = saturatedNanos(timeout);
    long start = clock.getAsLong();
    long deadline = start + budget;
    Map<String, List<Invocation>> byKey = history.byKey();
    List<Slot<S>> slots = new ArrayList<>(byKey.size());
    for (Map.Entry<String, List<Invocation>> e : byKey.entrySet()) {
      Model<S> model = Objects.requireNonNull(models.apply(e.getKey()), "no model for key " + e.getKey());
      slots.add(new Slot<>(e.getKey(), e.getValue().size(), new KeySearch<>(e.getKey(), model, e.getValue())));
    }
    // first pass: fair shares; second pass: resume the unfinished ones with what is left
    for (int pass = 0; pass < 2; pass++) {
      List<Slot<S>> todo = slots.stream().filter(s -> s.status == null || s.status == KeySearch.Status.OUT_OF_TIME).toList();
      for (int i = 0; i < todo.size(); i++) {
        Slot<S> slot = todo.get(i);
        long now = clock.getAsLong();
        long left = Math.max(0, deadline - now);
        long keyDeadline = now + left / (todo.size() - i);
        slot.status = slot.search.run(keyDeadline, clock, clockInterval, maxStates);
        slot.elapsed += clock.getAsLong() - now;
      }
    }
    List<KeyResult> results = new ArrayList<>(slots.size());
    for (Slot<S> s : slots) {
      results.add(s.result());
    }
    Duration elapsed = Duration.ofNanos(Math.max(0, clock.getAsLong() - start));
    return new CheckResult(CheckResult.combine(results), results, elapsed);
  }

  private static long saturatedNanos(Duration d) {
    if (d.isNegative()) {
      return 0;
    }
    try {
      return Math.min(d.toNanos(), Long.MAX_VALUE / 4);
    } catch (ArithmeticException e) {
      return Long.MAX_VALUE / 4;
    }
  }

  private static final class Slot<S> {
    final String key;
    final int opCount;
    final KeySearch<S> search;
    KeySearch.Status status;
    long elapsed;

    Slot(String key, int opCount, KeySearch<S> search) {
      this.key = key;
      this.opCount = opCount;
      this.search = search;
    }

    KeyResult result() {
      Verdict v;
      String note = "";
      Optional<Anomaly> anomaly = Optional.empty();
      switch (status) {
        case VALID -> v = Verdict.VALID;
        case INVALID -> {
          v = Verdict.INVALID;
          anomaly = Optional.of(search.anomaly());
        }
        case OUT_OF_TIME -> {
          v = Verdict.UNKNOWN;
          note = "deadline reached after " + search.iterations() + " steps";
        }
        case OUT_OF_STATES -> {
          v = Verdict.UNKNOWN;
          note = "state budget exhausted after " + search.iterations() + " steps";
        }
        default -> throw new AssertionError(status);
      }
      return new KeyResult(key, v, opCount, search.exploredStates(), Duration.ofNanos(Math.max(0, elapsed)), anomaly, note);
    }
  }
}
