package io.choir.jepsen;

import java.util.List;
import java.util.Random;

/**
 * Nemesis is one kind of fault. {@link #start} injects it into a running cluster (choosing its targets
 * with the given, seeded random) and returns a handle that {@link Active#stop() stops} it; the
 * {@link NemesisRunner} calls both on a seeded schedule and records each as a {@link NemesisEvent}.
 *
 * <p>The faults are listed in {@link Nemeses}; every fault must be undone by {@link Nemeses#healAll}
 * as well, which the run calls at the end whatever happened.
 */
public interface Nemesis {
  /** name is the fault's name on the command line, e.g. {@code partition-one}. */
  String name();

  /** start injects the fault; targets that depend on the cluster's state (the primary) are looked up now. */
  Active start(Cluster cluster, Random random) throws Exception;

  /** Active is an injected fault. */
  interface Active {
    /** nodes are the nodes the fault acts on. */
    List<String> nodes();

    /** detail says what was done, for the history and the report. */
    String detail();

    /** stop undoes the fault (heals the links, restarts or resumes the nodes). */
    void stop() throws Exception;

    /**
     * stopDetail says, after {@link #stop}, what the fault did and what stop found and did (how many
     * datagrams the rules dropped, the exit code of a replica that stopped by itself, ...), for the
     * history's stop event.
     */
    default String stopDetail() {
      return "stopped";
    }

    /** of is a fault on {@code nodes}, described by {@code detail}, that {@code undo} stops. */
    static Active of(List<String> nodes, String detail, Undo undo) {
      return new Active() {
        @Override
        public List<String> nodes() {
          return nodes;
        }

        @Override
        public String detail() {
          return detail;
        }

        @Override
        public void stop() throws Exception {
          undo.run();
        }
      };
    }
  }

  /** Undo undoes a fault. */
  @FunctionalInterface
  interface Undo {
    void run() throws Exception;
  }
}
