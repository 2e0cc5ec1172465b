package io.choir.sim;

import java.util.ArrayList;
import java.util.List;

/**
 * SimHistory records what the simulated clients did, in simulated time order: an invoke and, for each,
 * one completion (ok with the value read, fail: certainly did not happen, info: unknown). It is turned
 * into a checker history at the end of the run.
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

  /** One history event; value is the written value, the value read (null: absent) or CAS new value. */
  record Rec(Kind kind, int process, F f, String key, Long value, Long expected, long timeNs) {}

  final List<Rec> events = new ArrayList<>();

  void invoke(int process, F f, String key, Long value, Long expected, long timeNs) {
    events.add(new Rec(Kind.INVOKE, process, f, key, value, expected, timeNs));
  }

  void complete(Kind kind, int process, F f, String key, Long value, Long expected, long timeNs) {
    events.add(new Rec(kind, process, f, key, value, expected, timeNs));
  }

  int size() {
    return events.size();
  }
}
