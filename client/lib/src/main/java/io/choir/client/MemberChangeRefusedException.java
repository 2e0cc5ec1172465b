package io.choir.client;

/**
 * MemberChangeRefusedException means the primary refused a membership change, so it was NOT executed:
 * another change is in progress, the change would leave no majority of the new voters caught up and
 * alive, the id is unknown or already a member, no voter would remain, an address clashes with a
 * member's, or the epoch is not the expected one. {@link #reason()} is the primary's explanation.
 * Retrying unchanged fails the same way until the cluster changes (a learner catches up, the change in
 * progress ends); read {@code members()} first.
 */
public final class MemberChangeRefusedException extends ChoirException {
  private static final long serialVersionUID = 1L;
  private final String reason;

  /**
   * MemberChangeRefusedException with the primary's explanation.
   *
   * @param message what was refused, saying that it was not executed
   * @param reason the primary's explanation ("" when it gave none)
   */
  public MemberChangeRefusedException(String message, String reason) {
    super(message);
    this.reason = reason == null ? "" : reason;
  }

  /**
   * Why the primary refused the change, in its words.
   *
   * @return the explanation, "" when it gave none
   */
  public String reason() {
    return reason;
  }
}
