package io.choir.sim;

import java.util.List;

/** SimChecks runs the history checks of a simulated run. */
public final class SimChecks {
  private SimChecks() {}

  /** Problems found by the linearizability checker (empty when VALID). */
  public static List<String> linearizability(SimResult r) {
    return List.of(); // wired to io.choir.checker once it lands
  }
}
