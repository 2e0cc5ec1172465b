package io.choir.client;

/**
 * LearnerNotCaughtUpException ends an {@code addMember} or a replacing {@code replaceMember} whose
 * learner was added (that step WAS executed: the learner is a member now and keeps catching up) but
 * had not caught up with the primary when the catch-up wait ran out, so the promotion or replacement
 * was NOT attempted. Promote it (or replace with it) later, once {@code members()} shows its acked op
 * near the commit; or remove it.
 */
public final class LearnerNotCaughtUpException extends ChoirException {
  private static final long serialVersionUID = 1L;
  private final int learnerId;
  private final long ackedOp;
  private final long targetOp;
  private final transient Membership membership;

  /**
   * LearnerNotCaughtUpException.
   *
   * @param message what happened: the learner was added, not promoted
   * @param learnerId the learner's id
   * @param ackedOp the highest op the learner had acknowledged at the last answer (0 when unknown)
   * @param targetOp the op it had to reach
   * @param membership the last membership read (or the add's answer)
   * @param cause the last error of a poll that failed, or null
   */
  public LearnerNotCaughtUpException(String message, int learnerId, long ackedOp, long targetOp,
      Membership membership, Throwable cause) {
    super(message, cause);
    this.learnerId = learnerId;
    this.ackedOp = ackedOp;
    this.targetOp = targetOp;
    this.membership = membership;
  }

  /**
   * The learner that was added.
   *
   * @return its id
   */
  public int learnerId() {
    return learnerId;
  }

  /**
   * How far the learner had come.
   *
   * @return the highest op it had acknowledged at the last answer, 0 when unknown
   */
  public long ackedOp() {
    return ackedOp;
  }

  /**
   * The op the learner had to acknowledge to count as caught up.
   *
   * @return the op
   */
  public long targetOp() {
    return targetOp;
  }

  /**
   * The last membership the wait read, with the learner in it.
   *
   * @return the membership
   */
  public Membership membership() {
    return membership;
  }
}
