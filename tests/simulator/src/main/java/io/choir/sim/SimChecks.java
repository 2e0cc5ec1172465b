package io.choir.sim;

import io.choir.checker.CheckResult;
import io.choir.checker.Checker;
import io.choir.checker.History;
import io.choir.checker.Operation;
import io.choir.checker.Verdict;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** SimChecks runs the history checks of a simulated run. */
public final class SimChecks {
  private SimChecks() {}

  /** Converts a simulated history into the checker's. */
  static History toHistory(SimHistory sim) {
    History.Builder b = History.builder();
    for (SimHistory.Rec r : sim.events) {
      switch (r.kind()) {
        case INVOKE -> b.invoke(switch (r.f()) {
          case READ -> Operation.read(r.process(), r.key());
          case WRITE -> Operation.write(r.process(), r.key(), r.value());
          case CAS -> Operation.cas(r.process(), r.key(), r.expected(), r.value());
        }, r.timeNs());
        case OK -> {
          if (r.f() == SimHistory.F.READ) {
            b.ok(r.process(), r.value(), r.timeNs());
          } else {
            b.ok(r.process(), r.timeNs());
          }
        }
        case FAIL -> b.fail(r.process(), r.timeNs());
        case INFO -> b.info(r.process(), r.timeNs());
      }
    }
    return b.build();
  }

  /**
   * Problems found by the linearizability checker: empty when VALID; an UNKNOWN verdict (out of time)
   * is a problem too, never a pass.
   */
  public static List<String> linearizability(SimResult r) {
    CheckResult result = Checker.check(toHistory(r.history()), Duration.ofSeconds(20));
    if (result.verdict() == Verdict.VALID) {
      return List.of();
    }
    List<String> problems = new ArrayList<>();
    problems.add("linearizability " + result.verdict());
    result.anomalies().forEach(a -> problems.add(a.toString()));
    result.keys().stream().filter(k -> k.verdict() == Verdict.UNKNOWN)
        .forEach(k -> problems.add("key " + k.key() + " UNKNOWN: " + k.note()));
    return problems;
  }
}
