package io.choir.checker;

import java.util.Objects;
import java.util.Optional;

/**
 * RegisterModel is the sequential specification of one key of Choir: a register holding a long or
 * nothing. A read must return the current value, a write sets it, and a CAS succeeds exactly when the
 * current value equals the expected one (a failed CAS completes with {@code fail} and is dropped by the
 * checker, so every CAS reaching the model must have succeeded).
 */
public final class RegisterModel implements Model<RegisterModel.State> {

  /** ABSENT_INITIALLY is the model of a key that starts absent, the usual case. */
  public static final RegisterModel ABSENT_INITIALLY = new RegisterModel(null);

  /**
   * State is the register's value; {@code value == null} means the key is absent. It is a record
   * rather than a bare {@code Long} because model states must be non-null.
   *
   * @param value the current value, or {@code null} if absent
   */
  public record State(Long value) {
    /** ABSENT is the state of a key that was never written. */
    public static final State ABSENT = new State(null);

    /** of is the state holding {@code value} ({@code null} = absent). */
    public static State of(Long value) {
      return value == null ? ABSENT : new State(value);
    }

    @Override
    public String toString() {
      return Operation.show(value);
    }
  }

  private final State initial;

  /** RegisterModel with a given initial value ({@code null} = absent). */
  public RegisterModel(Long initialValue) {
    this.initial = State.of(initialValue);
  }

  /** startingAt is a register whose key already holds {@code value} when the history starts. */
  public static RegisterModel startingAt(Long value) {
    return new RegisterModel(value);
  }

  @Override
  public State initialState() {
    return initial;
  }

  @Override
  public Optional<State> step(State state, Operation op) {
    return switch (op.type()) {
      case READ -> Objects.equals(state.value(), op.value()) ? Optional.of(state) : Optional.empty();
      case WRITE -> Optional.of(State.of(op.value()));
      case CAS -> Objects.equals(state.value(), op.expected())
          ? Optional.of(State.of(op.newValue()))
          : Optional.empty();
    };
  }

  @Override
  public boolean isReadOnly(Operation op) {
    return op.type() == OpType.READ;
  }

  @Override
  public String describeState(State state) {
    return state.toString();
  }
}
