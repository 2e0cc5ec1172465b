package io.choir.sim;

import io.choir.checker.ClientOutcomes;
import java.util.ArrayList;
import java.util.List;

/**
 * SimHistory records what the simulated clients did, in simulated time order: an invoke and, for each,
 * one completion (ok with the value read, fail: certainly did not happen, info: unknown). It is turned
 * into a checker history at the end of the run.
 *
 * <p>A call that ends in an exception of the client library is recorded as the exception promises
 * ({@link #kindOf}, through the checker's {@link ClientOutcomes}, the one mapping the harness uses too):
 * fail only for an exception documented as "not executed", info for everything else. So a false
 * promise of the client (a "not executed" for a write that did execute) is a fail whose value the
 * history later reads, which the linearizability checker reports.
 */
final class SimHistory {
  enum F {
    READ,
    WRITE,
    CAS
  }

  enum Kind {
    INVOKE,
    OK,
    FAIL,
    INFO
  }

  /**
   * One history event; value is the written value, the value read (null: absent) or CAS new value;
   * error is the promise and the exception of a failed call (ClientOutcomes.describe), or null.
   */
  record Rec(Kind kind, int process, F f, String key, Long value, Long expected, long timeNs, String error) {}

  final List<Rec> events = new ArrayList<>();

  /** How a call that ended with error must be recorded: FAIL when it promises "not executed", else INFO. */
  static Kind kindOf(Throwable error) {
    return ClientOutcomes.notExecuted(error) ? Kind.FAIL : Kind.INFO;
  }

  void invoke(int process, F f, String key, Long value, Long expected, long timeNs) {
    events.add(new Rec(Kind.INVOKE, process, f, key, value, expected, timeNs, null));
  }

  /** A completion with a result (OK), or FAIL/INFO decided by the caller. */
  void complete(Kind kind, int process, F f, String key, Long value, Long expected, long timeNs) {
    events.add(new Rec(kind, process, f, key, value, expected, timeNs, null));
  }

  /** A completion by an exception of the client: recorded as {@link #kindOf} says; returns the kind. */
  Kind fail(Throwable error, int process, F f, String key, Long value, Long expected, long timeNs) {
    Kind kind = kindOf(error);
    events.add(new Rec(kind, process, f, key, value, expected, timeNs, ClientOutcomes.describe(error)));
    return kind;
  }

  int size() {
    return events.size();
  }
}
