package io.choir.checker;

import java.util.Optional;

/**
 * Model is the sequential specification an object is checked against: linearizability means the
 * concurrent history is equivalent to some sequential run of this model that respects real-time order
 * (Herlihy and Wing 1990). Keeping it an interface lets a set, a counter or a multi-key model be added
 * without touching the search.
 *
 * <p>States are compared with {@code equals} and {@code hashCode}, because the search memoizes
 * (linearized set, state) pairs (Lowe 2017); they must be immutable and never {@code null}.
 *
 * @param <S> the state type
 */
public interface Model<S> {

  /** initialState is the state before any operation, e.g. "absent" for a register. */
  S initialState();

  /**
   * step applies a completed operation. It returns the next state, or empty when the operation could not
   * have returned what it returned in {@code state}. The operation is as completed: an ok read carries its
   * result in {@link Operation#value()}; an ok CAS succeeded. For an info operation (not read-only) the
   * checker asks only for the step "it took effect", because "it never took effect" is covered by not
   * linearizing it at all.
   */
  Optional<S> step(S state, Operation op);

  /**
   * isReadOnly tells whether the operation never changes the state. Read-only operations with an unknown
   * outcome constrain nothing and are dropped before the search.
   */
  default boolean isReadOnly(Operation op) {
    return false;
  }

  /** describeState renders a state for reports. */
  default String describeState(S state) {
    return String.valueOf(state);
  }
}
