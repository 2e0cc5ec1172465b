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
   * Wall time the checker may take for one run's history. Most take milliseconds; the hardest (the
   * full-window scenario's, many calls of unknown outcome on few keys) took up to about 20 s on a
   * machine shared with other builds, so 20 s made a run fail for the machine's load, not the history.
   */
  private static final Duration CHECK_TIME = Duration.ofSeconds(90);

  /**
   * Problems found by the linearizability checker: empty when VALID; an UNKNOWN verdict (out of time)
   * is a problem too, never a pass.
   */
  public static List<String> linearizability(SimResult r) {
    CheckResult result = Checker.check(toHistory(r.history()), CHECK_TIME);
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
