package io.choir.client;

import java.time.Duration;
import java.util.function.Consumer;

/**
 * MembershipClient lists and changes the members of the cluster (DESIGN.md "Membership"), from
 * {@link ChoirClient#membership()}: the blocking form of {@link AsyncMembershipClient}, whose
 * description of outcomes holds here too. In short: {@link MemberChangeRefusedException} means the
 * primary refused the change and it was not executed; {@link ChoirTimeoutException} means the outcome
 * is unknown (read {@link #members()}); {@link LearnerNotCaughtUpException} means the learner was added
 * but not promoted. Like every blocking call, these must not be called from a callback of an async call.
 *
 * <pre>{@code
 * Membership m = client.membership().members();
 * m = client.membership().addMember(4, "10.0.0.4:7301", "10.0.0.4:7401", m.epoch(),
 *     Duration.ofMinutes(5), p -> System.out.println("acked " + p.ackedOp() + " of " + p.targetOp()));
 * m = client.membership().removeMember(1, m.epoch());
 * }</pre>
 */
public final class MembershipClient {
  private final AsyncMembershipClient async;
  private final BlockingWaits waits;
  private final long requestTimeoutMs;

  MembershipClient(AsyncMembershipClient async, BlockingWaits waits, long requestTimeoutMs) {
    this.async = async;
    this.waits = waits;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  /**
   * Reads the membership (see {@link AsyncMembershipClient#members()}).
   *
   * @return the membership
   */
  public Membership members() {
    return waits.await(async.members());
  }

  /**
   * Adds id as a learner.
   *
   * @param id the new member's replica id, 1..255
   * @param clientAddress host:port of its client endpoint
   * @param peerAddress host:port of its peer endpoint
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership with the learner
   * @throws MemberChangeRefusedException when the primary refused it (not executed)
   */
  public Membership addLearner(int id, String clientAddress, String peerAddress, long expectedEpoch) {
    return waits.await(async.addLearner(id, clientAddress, peerAddress, expectedEpoch));
  }

  /**
   * Makes learner id a voter, in a new epoch.
   *
   * @param id the learner's id
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership of the new epoch
   * @throws MemberChangeRefusedException when the primary refused it (not executed)
   */
  public Membership promote(int id, long expectedEpoch) {
    return waits.await(async.promote(id, expectedEpoch));
  }

  /**
   * Removes member id (a voter retires, in a new epoch).
   *
   * @param id the member's id
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership after the removal
   * @throws MemberChangeRefusedException when the primary refused it (not executed)
   */
  public Membership removeMember(int id, long expectedEpoch) {
    return waits.await(async.removeMember(id, expectedEpoch));
  }

  /**
   * Replaces voter oldId by the caught-up learner newId, in one new epoch.
   *
   * @param oldId the voter that leaves
   * @param newId the learner that takes its place
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership of the new epoch
   * @throws MemberChangeRefusedException when the primary refused it (not executed)
   */
  public Membership replaceMember(int oldId, int newId, long expectedEpoch) {
    return waits.await(async.replaceMember(oldId, newId, expectedEpoch));
  }

  /**
   * Adds id as a learner, waits until it has caught up, then promotes it (see
   * {@link AsyncMembershipClient#addMember}).
   *
   * @param id the new member's replica id, 1..255
   * @param clientAddress host:port of its client endpoint
   * @param peerAddress host:port of its peer endpoint
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @param catchUpTimeout the longest wait for the learner to catch up
   * @param progress called after every read of the membership, on a client thread; may be null
   * @return the membership of the new epoch, with id a voter
   * @throws LearnerNotCaughtUpException when the learner was added but did not catch up in time
   */
  public Membership addMember(int id, String clientAddress, String peerAddress, long expectedEpoch,
      Duration catchUpTimeout, Consumer<CatchUpProgress> progress) {
    return waits.await(async.addMember(id, clientAddress, peerAddress, expectedEpoch, catchUpTimeout, progress),
        sequenceBudgetMs(catchUpTimeout));
  }

  /**
   * Adds newId as a learner, waits until it has caught up, then replaces voter oldId by it (see
   * {@link AsyncMembershipClient#replaceMember(int, int, String, String, long, Duration, Consumer)}).
   *
   * @param oldId the voter that leaves
   * @param newId the new member's replica id, 1..255
   * @param clientAddress host:port of the new member's client endpoint
   * @param peerAddress host:port of its peer endpoint
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @param catchUpTimeout the longest wait for the learner to catch up
   * @param progress called after every read of the membership, on a client thread; may be null
   * @return the membership of the new epoch
   * @throws LearnerNotCaughtUpException when the learner was added but did not catch up in time
   */
  public Membership replaceMember(int oldId, int newId, String clientAddress, String peerAddress, long expectedEpoch,
      Duration catchUpTimeout, Consumer<CatchUpProgress> progress) {
    return waits.await(async.replaceMember(oldId, newId, clientAddress, peerAddress, expectedEpoch, catchUpTimeout,
        progress), sequenceBudgetMs(catchUpTimeout));
  }

  /** The add, the wait (and its last poll), the promotion or replacement: each within its own budget. */
  private long sequenceBudgetMs(Duration catchUpTimeout) {
    long waitMs = catchUpTimeout == null ? 0 : Math.max(0, catchUpTimeout.toMillis());
    return waitMs + 3 * requestTimeoutMs + CatchUp.POLL_INTERVAL_MS;
  }
}
