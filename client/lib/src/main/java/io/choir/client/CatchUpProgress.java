package io.choir.client;

/**
 * CatchUpProgress is one look at a new learner catching up, handed to the progress callback of
 * {@code addMember} and the replacing {@code replaceMember} after every poll of the membership.
 *
 * @param learnerId the learner's id
 * @param ackedOp the highest op the learner has acknowledged, as the primary reported it (0 when
 *     unknown, e.g. an answer from another replica)
 * @param targetOp the op it must acknowledge to count as caught up: the primary's op at this poll (or
 *     the op of its AddLearner entry, if higher)
 * @param elapsedMs time since the wait started
 * @param caughtUp whether it has caught up (the last progress of a successful wait)
 */
public record CatchUpProgress(int learnerId, long ackedOp, long targetOp, long elapsedMs, boolean caughtUp) {}
