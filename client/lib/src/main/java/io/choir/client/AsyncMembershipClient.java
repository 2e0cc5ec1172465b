package io.choir.client;

import io.choir.proto.Request;
import io.choir.proto.Response;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * AsyncMembershipClient lists and changes the members of the cluster (DESIGN.md "Membership"), from
 * {@link AsyncChoirClient#membership()}: the non-blocking twin of {@link MembershipClient}, on the same
 * connections, ids and limits.
 *
 * <p>Each change is a write to the primary: it runs in the client's session, is retried like any
 * write with the same request id (so it is executed at most once), and is answered, once its
 * configuration entry has committed, with the membership after it. One change at a time: the primary
 * refuses a change while another is in progress, one that would leave no majority of the new voters
 * caught up and alive, an unknown id or one already a member, a change that leaves no voter, an
 * address clash and, when {@code expectedEpoch} is not 0, any epoch but that one. A refusal completes
 * with {@link MemberChangeRefusedException}: not executed. A change that may have reached the primary
 * and got no answer completes with {@link ChoirTimeoutException}: the outcome is unknown; read
 * {@link #members()} to find out. So does a refusal of a retry whose earlier attempt may have executed
 * (the primary checks a retry against the membership the first attempt may already have changed). The other failures are those of every call (see
 * {@link AsyncChoirClient}).
 */
public final class AsyncMembershipClient {
  private final Dispatcher dispatcher;

  AsyncMembershipClient(Dispatcher dispatcher) {
    this.dispatcher = dispatcher;
  }

  /**
   * Reads the membership: epoch, members with their roles and (from the primary) acked ops, and
   * whether a change is in progress. Sent where the client's writes go (the primary, as far as the
   * client knows); any replica answers from its own membership, so acked ops are 0 in an answer from
   * another replica.
   *
   * @return the membership
   */
  public CompletableFuture<Membership> members() {
    return map(dispatcher.submit(Requests.listMembers(), false, null), Responses::members);
  }

  /**
   * Adds id as a learner: it gets the log and acknowledges it, but does not vote until promoted.
   *
   * @param id the new member's replica id, 1..255
   * @param clientAddress host:port of its client endpoint
   * @param peerAddress host:port of its peer endpoint
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership with the learner
   * @throws IllegalArgumentException when an argument is out of range or an address is not host:port
   */
  public CompletableFuture<Membership> addLearner(int id, String clientAddress, String peerAddress,
      long expectedEpoch) {
    return change(Requests.addLearner(id, clientAddress, peerAddress, expectedEpoch), "adding learner " + id);
  }

  /**
   * Makes learner id a voter, in a new epoch. The primary refuses while the learner has not caught up.
   *
   * @param id the learner's id
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership of the new epoch
   */
  public CompletableFuture<Membership> promote(int id, long expectedEpoch) {
    return change(Requests.promote(id, expectedEpoch), "promoting learner " + id);
  }

  /**
   * Removes member id. A voter's removal is a new epoch, and the voter retires; a learner just leaves.
   *
   * @param id the member's id
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership after the removal
   */
  public CompletableFuture<Membership> removeMember(int id, long expectedEpoch) {
    return change(Requests.removeMember(id, expectedEpoch), "removing member " + id);
  }

  /**
   * Replaces voter oldId by learner newId, in one new epoch (newId must be a caught-up learner: see
   * {@link #replaceMember(int, int, String, String, long, Duration, Consumer)} for the whole sequence).
   *
   * @param oldId the voter that leaves
   * @param newId the learner that takes its place
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @return the membership of the new epoch
   */
  public CompletableFuture<Membership> replaceMember(int oldId, int newId, long expectedEpoch) {
    return change(Requests.replaceMember(oldId, newId, expectedEpoch), "replacing voter " + oldId + " by " + newId);
  }

  /**
   * Adds a voter the safe way: adds id as a learner, waits until it has caught up with the primary
   * (reading the membership every 200 ms until its acked op reaches the primary's op, within
   * catchUpTimeout), then promotes it. When the wait runs out the future completes with
   * {@link LearnerNotCaughtUpException}: the learner was added, the promotion was not attempted. A
   * failure of the promotion says that the learner was added.
   *
   * @param id the new member's replica id, 1..255
   * @param clientAddress host:port of its client endpoint
   * @param peerAddress host:port of its peer endpoint
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @param catchUpTimeout the longest wait for the learner to catch up
   * @param progress called after every read of the membership, on a client thread (keep it short);
   *     may be null
   * @return the membership of the new epoch, with id a voter
   */
  public CompletableFuture<Membership> addMember(int id, String clientAddress, String peerAddress, long expectedEpoch,
      Duration catchUpTimeout, Consumer<CatchUpProgress> progress) {
    Request add = Requests.addLearner(id, clientAddress, peerAddress, expectedEpoch);
    long timeoutMs = timeoutMs(catchUpTimeout);
    return change(add, "adding learner " + id)
        .thenCompose(added -> catchUp(added, id, timeoutMs, progress,
            "it was not promoted: promote it once it has caught up, or remove it"))
        .thenCompose(caughtUp -> caughtUp.member(id).map(Member::role).orElse(MemberRole.UNKNOWN) == MemberRole.VOTER
            ? CompletableFuture.completedFuture(caughtUp)
            : afterAdd(id, change(Requests.promote(id, expectedEpoch == 0 ? 0 : caughtUp.epoch()),
                "promoting learner " + id)));
  }

  /**
   * Replaces voter oldId by a new member the safe way: adds newId as a learner, waits until it has
   * caught up (as {@link #addMember}), then replaces oldId by it in one new epoch. When the wait runs
   * out the future completes with {@link LearnerNotCaughtUpException}: the learner was added, oldId
   * was not replaced.
   *
   * @param oldId the voter that leaves
   * @param newId the new member's replica id, 1..255
   * @param clientAddress host:port of the new member's client endpoint
   * @param peerAddress host:port of its peer endpoint
   * @param expectedEpoch refuse unless the epoch is this one; 0 for any
   * @param catchUpTimeout the longest wait for the learner to catch up
   * @param progress called after every read of the membership (keep it short); may be null
   * @return the membership of the new epoch
   */
  public CompletableFuture<Membership> replaceMember(int oldId, int newId, String clientAddress, String peerAddress,
      long expectedEpoch, Duration catchUpTimeout, Consumer<CatchUpProgress> progress) {
    Requests.replaceMember(oldId, newId, expectedEpoch); // the arguments' checks, before anything is sent
    Request add = Requests.addLearner(newId, clientAddress, peerAddress, expectedEpoch);
    long timeoutMs = timeoutMs(catchUpTimeout);
    return change(add, "adding learner " + newId)
        .thenCompose(added -> catchUp(added, newId, timeoutMs, progress,
            "voter " + oldId + " was not replaced: replace it once the learner has caught up, or remove the learner"))
        .thenCompose(caughtUp -> afterAdd(newId, change(
            Requests.replaceMember(oldId, newId, expectedEpoch == 0 ? 0 : caughtUp.epoch()),
            "replacing voter " + oldId + " by " + newId)));
  }

  private CompletableFuture<Membership> catchUp(Membership added, int id, long timeoutMs,
      Consumer<CatchUpProgress> progress, String notDone) {
    return CatchUp.await(dispatcher.scheduler(), this::members, added, id, timeoutMs, progress, notDone);
  }

  /** The step after an add: its failure says that the learner was added (the add WAS executed). */
  private static CompletableFuture<Membership> afterAdd(int id, CompletableFuture<Membership> step) {
    CompletableFuture<Membership> out = new CompletableFuture<>();
    step.whenComplete((m, error) -> {
      if (error == null) {
        out.complete(m);
        return;
      }
      Throwable e = Futures.unwrap(error);
      String prefix = "learner " + id + " was added, but ";
      if (e instanceof MemberChangeRefusedException r) {
        out.completeExceptionally(new MemberChangeRefusedException(prefix + r.getMessage(), r.reason()));
      } else if (e instanceof ChoirTimeoutException t) {
        out.completeExceptionally(new ChoirTimeoutException(prefix + t.getMessage(), t));
      } else if (e instanceof UnavailableException u) {
        out.completeExceptionally(new UnavailableException(prefix + u.getMessage(), u));
      } else if (e instanceof BusyException b) {
        out.completeExceptionally(new BusyException(prefix + b.getMessage()));
      } else {
        out.completeExceptionally(e);
      }
    });
    return out;
  }

  private CompletableFuture<Membership> change(Request request, String what) {
    return map(dispatcher.submit(request, false, null), r -> Responses.memberChange(r, what));
  }

  private static long timeoutMs(Duration catchUpTimeout) {
    if (catchUpTimeout == null || catchUpTimeout.isNegative()) {
      throw new IllegalArgumentException("catchUpTimeout must be >= 0: " + catchUpTimeout);
    }
    return catchUpTimeout.toMillis();
  }

  private static <T> CompletableFuture<T> map(CompletableFuture<Response> response, Function<Response, T> fn) {
    return AsyncChoirClient.map(response, fn);
  }
}
