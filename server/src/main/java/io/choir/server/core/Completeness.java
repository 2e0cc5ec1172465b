package io.choir.server.core;

/**
 * Completeness is whether a backup's log is complete in the current view (VR Revisited 4.2: until it
 * is, its last normal view stays the old one and it does not acknowledge, so a partial log never
 * outranks a complete one in a later view change): {@link State#COMPLETE}; {@link State#UNKNOWN}, when
 * the op it must reach is not known yet (the next message from the primary tells it); or
 * {@link State#AT_OP}, when it is complete once its verified part reaches {@link #targetOp()}.
 */
final class Completeness {
  enum State {
    COMPLETE,
    UNKNOWN,
    AT_OP
  }

  private State state;
  private long targetOp;

  Completeness(State state) {
    this.state = state;
  }

  boolean isComplete() {
    return state == State.COMPLETE;
  }

  boolean isUnknown() {
    return state == State.UNKNOWN;
  }

  /** True when complete once the verified op reaches targetOp(). */
  boolean hasTarget() {
    return state == State.AT_OP;
  }

  /** The op to reach (only with hasTarget()). */
  long targetOp() {
    return targetOp;
  }

  void complete() {
    state = State.COMPLETE;
    targetOp = 0;
  }

  void unknown() {
    state = State.UNKNOWN;
    targetOp = 0;
  }

  /** Complete once the verified op reaches op (at least 1). */
  void at(long op) {
    state = State.AT_OP;
    targetOp = Math.max(1, op);
  }

  /** As the status line always printed it: 0 complete, -1 unknown, else the op to reach. */
  @Override
  public String toString() {
    return switch (state) {
      case COMPLETE -> "0";
      case UNKNOWN -> "-1";
      case AT_OP -> Long.toString(targetOp);
    };
  }
}
