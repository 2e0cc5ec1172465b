package io.choir.client;

/**
 * CatchUpProgress is one look at a new learner catching up, handed to the progress callback of
 * {@code addMember} and the replacing {@code replaceMember} after every poll of the membership.
 *
 * @param learnerId the learner's id
 * @param ackedOp the highest op the learner has acknowledged, as the primary reported it (0 when
 *     unknown, e.g. an answer from another replica)
 * @param targetOp the op it has to catch up with: the primary's applied op at this poll (or the op of
 *     its AddLearner entry, if higher); it counts as caught up a few ops below it (at most 16, and at
 *     most a 32nd of it), as ops are still in flight under load
 * @param elapsedMs time since the wait started
 * @param caughtUp whether it has caught up (the last progress of a successful wait)
 */
public record CatchUpProgress(int learnerId, long ackedOp, long targetOp, long elapsedMs, boolean caughtUp) {}
