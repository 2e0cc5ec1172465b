package io.choir.sim;

import java.util.List;
import java.util.Map;

/** SimResult is one run's outcome: its history, the invariant violations found, and a state summary. */
public record SimResult(SimConfig config, SimHistory history, List<String> violations, String nodes,
    Map<String, Long> stats) {}
