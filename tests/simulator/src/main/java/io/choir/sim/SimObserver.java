package io.choir.sim;

import io.choir.proto.Request;
import io.choir.proto.Response;

/**
 * SimObserver watches a run as it goes, for a scenario that injects its own fault at the right moment
 * and measures what follows (the full-window view change of hole 2e). Every method is called on the
 * simulation's one thread; the defaults do nothing.
 */
interface SimObserver {
  SimObserver NONE = new SimObserver() { };

  /** After every event of the run. */
  default void afterEvent(Simulation sim) { }

  /** node's core paused (true) or resumed (false) client intake: its flow-control window is full. */
  default void intakePaused(Simulation sim, SimReplica node, boolean paused) { }

  /** node is about to send response to a client request of this op. */
  default void replying(Simulation sim, SimReplica node, Request.OpCase op, Response response) { }
}
